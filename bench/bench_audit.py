"""Bench: what ``graft audit`` finds on data with known defects, and what it costs next to an extract.

Datasets (real images, written to --root; all at --image-size with efficientnet_lite0's weights):

1. **duplicates**: the animal-mnist package's raw 10,000 images (the ``animals`` sample before its
   284 exact duplicates were removed; same seeded 80/20 split), plus near duplicates planted for
   --planted originals: JPEG quality 70, resized -10% / +10%, shifted 1 px / 2 px (one each, in
   turn), each in the original's class and, for half of them, in the other split (a leak).
   Reported: recall of the exact groups and of the leaks (exact and planted), recall and precision
   of the planted near-duplicate pairs (a predicted pair: two members of one near group with
   different bytes; true pairs: an original or one of its exact copies with its variant).
2. **labels**: the deduplicated ``animals`` sample and the ``digits`` sample with 5% and 10% of the
   training labels flipped at random (seeded; files are symlinked into another class folder).
   Reported: precision and recall of the top-k flagged images (k = the number flipped), and the test
   accuracy of a logistic-regression probe on the features (same settings) trained on the true
   labels, on the noisy labels, and on the suggested clean split: the share of the lost accuracy
   that the clean split recovers.
4. **fit** (``--fit digits:10,animals:10:2000``): for each ``NAME:PERCENT[:TRAIN]``, three
   ``graft fit`` runs with the same settings (recipe auto, --image-size, --fit-epochs, seed) on the
   true labels, on the flipped labels and on the audit's suggested clean split, each tested on the
   untouched test split; ``TRAIN`` (optional) is a seeded subset of the training images used by all
   three (the clean run keeps the subset's images that the audit did not drop).
3. **timing**: the raw 10,000 animals: ``graft extract`` into a fresh store, then the audit reusing
   it, then an audit from scratch (its own fresh store); the ratios to the extract.

Stores are shared by content hash: images already extracted with the same settings are reused
(the timing part always starts from empty stores).

Run:  .venv/bin/python bench/bench_audit.py --root bench-out/audit --image-size 96
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image

VARIANTS = ("jpeg70", "resize0.9", "resize1.1", "shift1", "shift2")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default="bench-out/audit")
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--planted", type=int, default=500, help="originals given a near duplicate")
    p.add_argument("--parts", default="duplicates,labels,timing")
    p.add_argument("--fit", default="digits:10", help="fit part: NAME:PERCENT[:TRAIN],...")
    p.add_argument("--fit-epochs", type=int, default=4)
    p.add_argument(
        "--fit-kinds",
        default="true,noisy,clean",
        help="fit part: which of the three fits to run (to run them as parallel processes)",
    )
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--raw-store",
        default=None,
        help="a feature store of the raw animals made with the same model and size, to start the "
        "duplicates and labels stores from (default: the timing part's, when it ran)",
    )
    return p.parse_args()


# ------------------------------------------------------------------------------ datasets


def raw_animals(root: Path) -> tuple[Path, list[list[str]]]:
    """The raw 10,000 animals as train/ test/ folders; and the exact-duplicate groups (paths)."""
    from graft.data import samples

    folder = samples._animal_data_folder()
    images = samples._load_numpy_pickle(folder / "animal_data_version_3.gz").astype(np.uint8)
    labels = samples._load_numpy_pickle(folder / "animal_label_version_3.gz").astype(np.int64)
    is_test = samples._split(labels, 0)
    paths = [
        root
        / ("test" if t else "train")
        / samples.ANIMAL_CLASSES[y]
        / f"{samples.ANIMAL_CLASSES[y]}_{i:05d}.png"
        for i, (y, t) in enumerate(zip(labels, is_test, strict=True))
    ]
    if not (root / "train").is_dir():
        samples._write_images(root, images, labels, samples.ANIMAL_CLASSES, is_test)
    flat = images.reshape(len(images), -1)
    _, inverse, counts = np.unique(flat, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    groups = [
        sorted(str(paths[i]) for i in np.flatnonzero(inverse == g))
        for g in np.flatnonzero(counts > 1)
    ]
    return root, groups


def variant(image: Image.Image, kind: str) -> bytes:
    """The PNG/JPEG bytes of a near duplicate of ``image`` (grey, uint8)."""
    buf = io.BytesIO()
    if kind == "jpeg70":
        image.save(buf, format="JPEG", quality=70)
        return buf.getvalue()
    if kind.startswith("resize"):
        scale = float(kind[len("resize") :])
        size = (round(image.width * scale), round(image.height * scale))
        image = image.resize(size, Image.Resampling.BICUBIC)
    else:
        shift = int(kind[len("shift") :])
        a = np.asarray(image)
        a = np.pad(a, shift, mode="edge")[: image.height, : image.width]  # content moves down-right
        image = Image.fromarray(a)
    image.save(buf, format="PNG")
    return buf.getvalue()


def plant_near_duplicates(src: Path, dest: Path, n: int, seed: int) -> list[tuple[str, str]]:
    """``dest``: symlinks to every image of ``src`` plus ``n`` variants; ``(original, variant)``."""
    files = sorted(str(p) for p in src.rglob("*.png"))
    if not dest.is_dir():
        for f in files:
            target = dest / Path(f).relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.abspath(f), target)
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(files), n, replace=False).tolist())
    pairs = []
    for k, i in enumerate(chosen):
        original = Path(files[i]).relative_to(src)
        split = original.parts[0]
        if rng.random() < 0.5:
            split = "test" if split == "train" else "train"
        kind = VARIANTS[k % len(VARIANTS)]
        suffix = ".jpg" if kind == "jpeg70" else ".png"
        out = dest / split / original.parts[1] / f"near_{k:04d}_{kind}{suffix}"
        if not out.exists():
            with Image.open(files[i]) as im:
                out.write_bytes(variant(im.convert("L"), kind))
        pairs.append((str(dest / original), str(out)))
    return pairs


def flipped_copy(src: Path, dest: Path, fraction: float, seed: int) -> set[str]:
    """``dest``: symlinks to ``src`` with ``fraction`` of train/ moved to another class; their paths."""
    files = sorted(p for p in (src / "train").rglob("*.png"))
    classes = sorted({p.parent.name for p in files})
    rng = np.random.default_rng(seed)
    flip = set(rng.choice(len(files), round(fraction * len(files)), replace=False).tolist())
    moved = set()
    for i, f in enumerate(files):
        cls = f.parent.name
        if i in flip:
            others = [c for c in classes if c != cls]
            cls = others[int(rng.integers(len(others)))]
        target = dest / "train" / cls / f.name
        if i in flip:
            moved.add(str(target))
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.abspath(f), target)
    for f in sorted((src / "test").rglob("*.png")):
        target = dest / "test" / f.relative_to(src / "test")
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.abspath(f), target)
    return moved


# ------------------------------------------------------------------------------- metrics


def seeded_store(root: Path, name: str, seed: Path | None) -> Path:
    """``root/store-NAME``, first copied from ``seed`` (features are found by content hash).

    Each dataset gets its own store: an extract keeps only the rows of the dataset it ran on.
    """
    store = root / f"store-{name}"
    if not store.exists() and seed is not None and (seed / "manifest.json").is_file():
        shutil.copytree(seed, store)
    return store


def run_audit(data: Path, args, store: Path, out: Path, **options):
    import graft

    start = time.perf_counter()
    result = graft.audit(
        data, model=args.model, image_size=args.image_size, features=str(store), out=str(out),
        workers=args.workers, progress=False, seed=args.seed, **options,
    )  # fmt: skip
    return result, time.perf_counter() - start


def real(path: str) -> str:
    return os.path.realpath(path) if os.path.islink(path) else os.path.abspath(path)


def duplicate_scores(result, exact_truth, planted) -> dict:
    """Recall of exact groups and leaks; recall and precision of the planted near pairs."""
    found_exact = {frozenset(result.files[i] for i in g.members) for g in result.exact_groups}
    truth_exact = {frozenset(g) for g in exact_truth}
    split_of = dict(zip(result.files, result.splits, strict=True))
    leak_truth = {g for g in truth_exact if len({split_of[p] for p in g}) > 1}
    found_leak_sets = [frozenset(result.files[i] for i in g.members) for g in result.leaks]
    twins = {p: g for g in truth_exact for p in g}
    true_pairs = set()
    for original, copy in planted:
        for o in twins.get(original, {original}):
            true_pairs.add(frozenset((o, copy)))
    planted_leaks = [frozenset(p) for p in planted if split_of[p[0]] != split_of[p[1]]]
    digest = {}  # different bytes: the exact copies inside a near group are not near pairs
    for g in result.exact_groups:
        for i in g.members:
            digest[result.files[i]] = g.members[0]
    predicted = set()
    for g in result.near_groups:
        members = [result.files[i] for i in g.members]
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                x, y = members[a], members[b]
                if digest.get(x, x) != digest.get(y, y):
                    predicted.add(frozenset((x, y)))
    hit = predicted & true_pairs
    pair_hits = [p for p in planted if frozenset(p) in predicted]
    kinds = {}
    for _, copy in planted:
        kind = Path(copy).stem.split("_", 2)[2]
        ok = any(frozenset(p) in predicted for p in planted if p[1] == copy)
        n, k = kinds.get(kind, (0, 0))
        kinds[kind] = (n + 1, k + ok)
    return {
        "exact_groups": len(truth_exact),
        "exact_group_recall": len(truth_exact & found_exact) / max(len(truth_exact), 1),
        "exact_leaks": len(leak_truth),
        "exact_leak_recall": sum(any(t <= f for f in found_leak_sets) for t in leak_truth)
        / max(len(leak_truth), 1),
        "planted_leaks": len(planted_leaks),
        "planted_leak_recall": sum(any(t <= f for f in found_leak_sets) for t in planted_leaks)
        / max(len(planted_leaks), 1),
        "near_pairs_planted": len(planted),
        "near_recall": len(pair_hits) / max(len(planted), 1),
        "near_pairs_predicted": len(predicted),
        "near_precision": len(hit) / max(len(predicted), 1),
        "near_recall_by_kind": {k: round(h / n, 4) for k, (n, h) in sorted(kinds.items())},
    }


def label_scores(result, flipped: set[str]) -> dict:
    """Top-k precision/recall of the flagged images (k = number flipped)."""
    k = len(flipped)
    ranked = [result.files[x.index] for x in result.label_issues][:k]
    hits = sum(f in flipped for f in ranked)
    return {
        "flipped": k,
        "flagged": len(result.label_issues),
        "topk_precision": hits / max(len(ranked), 1) if ranked else 0.0,
        "topk_recall": hits / max(k, 1),
        "flagged_precision": sum(result.files[x.index] in flipped for x in result.label_issues)
        / max(len(result.label_issues), 1),
    }


def probe_accuracy(store: Path, files_labels: list[tuple[str, int]], test: list[tuple[str, int]]):
    """Test accuracy of a logistic-regression probe trained on ``files_labels``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    from graft.features import Features

    feats = Features.load(store)
    row = {real(f): i for i, f in enumerate(feats.files)}
    x = feats.features
    xtr = x[[row[real(f)] for f, _ in files_labels]]
    xte = x[[row[real(f)] for f, _ in test]]
    with threadpool_limits(1):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=500))
        clf.fit(xtr, [y for _, y in files_labels])
        return float((clf.predict(xte) == np.array([y for _, y in test])).mean())


# ---------------------------------------------------------------------------------- parts


def part_duplicates(args, root: Path, raw_store: Path | None) -> dict:
    raw, exact = raw_animals(root / "animals-raw")
    data = root / "animals-near"
    planted = plant_near_duplicates(raw, data, args.planted, args.seed)
    exact = [[str(data / Path(p).relative_to(raw)) for p in g] for g in exact]
    store = seeded_store(root, "animals-near", raw_store)
    result, seconds = run_audit(data, args, store, root / "out-duplicates")
    return {"images": len(result.files), "seconds": round(seconds, 1),
            **duplicate_scores(result, exact, planted)}  # fmt: skip


def part_labels(args, root: Path, raw_store: Path | None, name: str) -> list[dict]:
    from graft.data import sample_dataset

    src = sample_dataset(name, root / name)
    rows, previous = [], None
    for fraction in (0.05, 0.10):
        data = root / f"{name}-flip{int(fraction * 100)}"
        flipped = flipped_copy(src, data, fraction, args.seed)
        store = seeded_store(root, data.name, raw_store if name == "animals" else previous)
        previous = store
        result, seconds = run_audit(data, args, store, root / f"out-{data.name}")
        classes = result.classes
        truth = {real(f): classes.index(Path(f).parent.name)
                 for f in map(str, (src / "train").rglob("*.png"))}  # fmt: skip
        train = [(f, int(y)) for f, y, s in zip(result.files, result.labels, result.splits, strict=True) if s == "train"]  # fmt: skip
        test = [(f, int(y)) for f, y, s in zip(result.files, result.labels, result.splits, strict=True) if s == "test"]  # fmt: skip
        clean = [(f, classes.index(c)) for f, c, s in result.clean_samples()]
        true_acc = probe_accuracy(store, [(f, truth[real(f)]) for f, _ in train], test)
        noisy_acc = probe_accuracy(store, train, test)
        clean_acc = probe_accuracy(store, clean, test)
        lost = true_acc - noisy_acc
        rows.append({
            "dataset": name, "flipped_fraction": fraction, "images": len(result.files),
            "seconds": round(seconds, 1), **label_scores(result, flipped),
            "acc_true": round(true_acc, 4), "acc_noisy": round(noisy_acc, 4),
            "acc_clean": round(clean_acc, 4), "clean_train_images": len(clean),
            "recovered": round((clean_acc - noisy_acc) / lost, 3) if lost > 0 else None,
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    return rows


def linked_folder(dest: Path, rows: list[tuple[str, str, str]]) -> Path:
    """``dest/SPLIT/CLASS/NAME``: symlinks to ``(path, class, split)`` rows (a fresh folder)."""
    shutil.rmtree(dest, ignore_errors=True)
    for path, cls, split in rows:
        target = dest / split / cls / Path(path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(real(path), target)
    return dest


def fit_accuracy(args, data: Path, out: Path) -> tuple[float, float]:
    """Test accuracy and seconds of ``graft.fit`` (recipe auto) on the ImageFolder ``data``."""
    import graft

    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    result = graft.fit(
        str(data), recipe="auto", image_size=args.image_size, epochs=args.fit_epochs,
        seed=args.seed, out=str(out), workers=args.workers, accelerator="cpu", progress=False,
        report=False,
    )  # fmt: skip
    return float(result.metrics["test_acc"]), time.perf_counter() - start


def part_fit(args, root: Path, raw_store: Path | None, spec: str) -> dict:
    """Three fits (true, flipped, clean labels) of one ``NAME:PERCENT[:TRAIN]`` setting."""
    from graft.data import sample_dataset

    name, percent, *size = spec.split(":")
    src = sample_dataset(name, root / name)
    data = root / f"{name}-flip{percent}"
    flipped = flipped_copy(src, data, int(percent) / 100, args.seed)
    store = seeded_store(root, data.name, raw_store if name == "animals" else None)
    result, _ = run_audit(data, args, store, root / f"out-{data.name}")
    truth = {real(str(f)): f.parent.name for f in (src / "train").rglob("*.png")}
    noisy = [(f, result.classes[y], s) for f, y, s in
             zip(result.files, result.labels, result.splits, strict=True)]  # fmt: skip
    train = [r for r in noisy if r[2] == "train"]
    if size:
        rng = np.random.default_rng(args.seed)
        train = [train[i] for i in sorted(rng.permutation(len(train))[: int(size[0])])]
    test = [r for r in noisy if r[2] == "test"]
    kept = {f for f, _, _ in result.clean_samples()}
    sets = {
        "true": [(f, truth[real(f)], s) for f, _, s in train],
        "noisy": train,
        "clean": [r for r in train if r[0] in kept],
    }
    row = {"dataset": name, "flipped_percent": int(percent), "train_images": len(train),
           "flipped_in_train": sum(f in flipped for f, _, _ in train),
           "flipped_in_clean": sum(f in flipped for f, _, _ in sets["clean"]),
           "clean_train_images": len(sets["clean"]), "epochs": args.fit_epochs}  # fmt: skip
    for kind, rows in sets.items():
        if kind not in args.fit_kinds.split(","):
            continue
        folder = linked_folder(root / f"fit-{data.name}-{kind}", rows + test)
        acc, seconds = fit_accuracy(args, folder, root / f"run-{data.name}-{kind}")
        row[f"acc_{kind}"], row[f"seconds_{kind}"] = round(acc, 4), round(seconds, 1)
        print(json.dumps({kind: row[f"acc_{kind}"], "seconds": row[f"seconds_{kind}"]}), flush=True)
    if all(f"acc_{k}" in row for k in sets):
        lost = row["acc_true"] - row["acc_noisy"]
        row["recovered"] = (
            round((row["acc_clean"] - row["acc_noisy"]) / lost, 3) if lost > 0 else None
        )
    row["load"] = os.getloadavg()
    print(json.dumps(row), flush=True)
    return row


def part_timing(args, root: Path) -> dict:
    import graft

    raw, _ = raw_animals(root / "animals-raw")
    stores = [root / "timing-store-a", root / "timing-store-b"]
    for s in stores + [root / "out-timing-after", root / "out-timing-scratch"]:
        shutil.rmtree(s, ignore_errors=True)
    start = time.perf_counter()
    graft.extract(raw, model=args.model, image_size=args.image_size, out=stores[0],
                  workers=args.workers, progress=False)  # fmt: skip
    extract_s = time.perf_counter() - start
    after, after_s = run_audit(raw, args, stores[0], root / "out-timing-after")
    _, scratch_s = run_audit(raw, args, stores[1], root / "out-timing-scratch")
    return {
        "images": len(after.files), "extract_s": round(extract_s, 1),
        "audit_after_extract_s": round(after_s, 1), "audit_from_scratch_s": round(scratch_s, 1),
        "after_ratio": round(after_s / extract_s, 3), "scratch_ratio": round(scratch_s / extract_s, 3),
        "audit_steps_after_s": {k: round(v, 2) for k, v in after.seconds.items()},
    }  # fmt: skip


def main() -> None:
    args = parse_args()
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    parts = args.parts.split(",")
    report = {"args": vars(args), "load_before": os.getloadavg()}
    raw_store = Path(args.raw_store) if args.raw_store else None
    if "timing" in parts:  # first: its extract of the raw animals seeds the other stores
        report["timing"] = part_timing(args, root)
        print(json.dumps(report["timing"]), flush=True)
        raw_store = raw_store or root / "timing-store-a"
    if "duplicates" in parts:
        report["duplicates"] = part_duplicates(args, root, raw_store)
        print(json.dumps(report["duplicates"]), flush=True)
    if "labels" in parts:
        report["labels"] = part_labels(args, root, raw_store, "animals")
        report["labels"] += part_labels(args, root, raw_store, "digits")
    if "fit" in parts:
        report["fit"] = [part_fit(args, root, raw_store, spec) for spec in args.fit.split(",")]
    report["load_after"] = os.getloadavg()
    (root / "results.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
