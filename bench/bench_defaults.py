"""Bench: the data-driven defaults of ``graft fit`` (issue #17), measured in one run each.

``size``: the automatic image size (no ``--image-size``: graft.data.image_size) against 224 px and
96 px, test accuracy and wall time of the whole ``fit`` call, on the animals sample (28x28
silhouettes), the digits sample (8x8 digits written at 32x32) and a larger-image set made offline from
scikit-image's photos (random crops of 8 photos, rescaled to 180-260 px; the class is the photo).
Subsets of each (``--train`` / ``--test`` images) and ``--epochs`` in total (recipe auto) keep it
CPU-sized; every setting trains from the same shipped ImageNet weights and seed.

``eta``: the ``--dry-run`` estimate against the measured wall time of the same ``fit`` call (progress
on, as ``graft fit`` runs it; report off unless ``--report``), animals at 96 px, ``--runs`` times;
the ratio estimate / measured of each run, their median and spread.

``norm``: ``pretrained`` vs ``dataset`` normalization (linear probe on frozen features and a short
``head`` fine-tune, 112 px) on the three sets and on photos made darker / flatter (pixel maps
``0.25 p`` and ``0.5 + 0.2 (p - 0.5)``), next to each set's mean shift (in pretrained std) and std
ratio: the evidence for graft stats' thresholds.

Run:
    .venv/bin/python bench/bench_defaults.py size --train 320 --test 400 --epochs 2
    .venv/bin/python bench/bench_defaults.py eta --runs 3 --epochs 3
    .venv/bin/python bench/bench_defaults.py norm --train 320 --test 400 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path

import numpy as np

IMAGENET = "0.485,0.456,0.406:0.229,0.224,0.225"
PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "rocket", "coins", "horse", "moon")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["size", "eta", "norm"])
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--train", type=int, default=320, help="training images per set")
    p.add_argument("--test", type=int, default=400, help="test images per set")
    p.add_argument(
        "--epochs", type=int, default=2, help="total epochs (recipe auto); 0: auto's own"
    )
    p.add_argument("--seed", type=int, default=0, help="size: the seed of every fit")
    p.add_argument("--sizes", default="auto,224,96")
    p.add_argument("--sets", default="animals,digits,photos")
    p.add_argument("--runs", type=int, default=3, help="eta: repetitions")
    p.add_argument("--report", action="store_true", help="eta: write the HTML report too")
    p.add_argument(
        "--explicit",
        default=IMAGENET,
        help="norm: the MEAN:STD row (default ImageNet's, a common explicit choice)",
    )
    p.add_argument("--work", default="/tmp/bench_defaults")
    p.add_argument("--out", default="bench/results_defaults.json")
    return p.parse_args()


def subset(source: Path, dest: Path, n_train: int, n_test: int) -> Path:
    """``dest`` with the first ``n_train`` / ``n_test`` images of ``source``, spread over classes."""
    if dest.exists():
        return dest
    for split, n in (("train", n_train), ("test", n_test)):
        classes = sorted(d.name for d in (source / split).iterdir() if d.is_dir())
        per = max(1, n // len(classes))
        for c in classes:
            (dest / split / c).mkdir(parents=True)
            for f in sorted((source / split / c).iterdir())[:per]:
                os.symlink(f.resolve(), dest / split / c / f.name)
    return dest


def sample(name: str, work: Path, n_train: int, n_test: int) -> Path:
    from graft.data import sample_dataset

    full = sample_dataset(name, work / f"{name}-full")
    return subset(full, work / f"{name}-{n_train}-{n_test}", n_train, n_test)


def photos(work: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """Crops of scikit-image's photos, 180-260 px: class = the photo the crop comes from."""
    from PIL import Image
    from skimage import data

    dest = work / f"photos-{n_train}-{n_test}"
    if dest.exists():
        return dest
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        for name in PHOTOS:
            img = getattr(data, name)()
            if img.dtype != np.uint8:  # horse is a binary mask
                img = (img.astype(np.float32) * (255 / max(float(img.max()), 1))).astype(np.uint8)
            img = np.stack([img] * 3, -1) if img.ndim == 2 else img[..., :3]
            h, w = img.shape[:2]
            folder = dest / split / name
            folder.mkdir(parents=True)
            for i in range(n // len(PHOTOS)):
                side = int(min(h, w) * rng.uniform(0.25, 0.6))
                y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
                crop = Image.fromarray(img[y : y + side, x : x + side])
                out = int(rng.integers(180, 261))
                crop.resize((out, out), Image.BILINEAR).save(folder / f"{i}.jpg", quality=90)
    return dest


def fit_once(data: Path, size: str, args: argparse.Namespace, out: Path, **extra) -> dict:
    from graft.train import fit

    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    r = fit(str(data), model=args.model, recipe="auto", epochs=args.epochs or None, seed=args.seed,
            image_size=None if size == "auto" else int(size), out=str(out), report=False,
            progress=False, **extra)  # fmt: skip
    seconds = time.perf_counter() - started
    return {"test_acc": r.metrics.get("test_acc"), "seconds": round(seconds, 1),
            "image_size": r.config.image_size, "epochs": r.metrics.get("epochs"),
        "seed": args.seed}  # fmt: skip


def bench_size(args: argparse.Namespace, work: Path) -> list[dict]:
    rows = []
    makers = {
        "animals": lambda: sample("animals", work, args.train, args.test),
        "digits": lambda: sample("digits", work, args.train, args.test),
        "photos": lambda: photos(work, args.train, args.test),
    }
    for name in args.sets.split(","):
        data = makers[name]()
        for size in args.sizes.split(","):
            row = {
                "set": name,
                "size": size,
                **fit_once(data, size, args, work / f"run-{name}-{size}-{args.seed}"),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def bench_eta(args: argparse.Namespace, work: Path) -> list[dict]:
    from graft.train import fit

    data = sample("animals", work, args.train, args.test)
    rows = []
    for i in range(args.runs):
        out = work / f"eta-{i}"
        shutil.rmtree(out, ignore_errors=True)
        dry = fit(str(data), model=args.model, recipe="auto", epochs=args.epochs, image_size=96,
                  seed=i, out=str(out), report=args.report, dry_run=True)  # fmt: skip
        print(dry.plan_text, flush=True)
        started = time.perf_counter()
        fit(
            str(data),
            model=args.model,
            recipe="auto",
            epochs=args.epochs,
            image_size=96,
            seed=i,
            out=str(out),
            report=args.report,
        )  # fmt: skip  (progress on, as graft fit)
        measured = time.perf_counter() - started
        estimate = dry.metrics["estimated_seconds"]
        row = {"run": i, "estimated_s": estimate, "measured_s": round(measured, 1),
               "ratio": round(estimate / measured, 3), "load": os.getloadavg()[0]}  # fmt: skip
        print(json.dumps(row), flush=True)
        rows.append(row)
    ratios = [r["ratio"] for r in rows]
    print(json.dumps({"median_ratio": statistics.median(ratios), "ratios": ratios,
                      "spread": round(max(ratios) - min(ratios), 3)}))  # fmt: skip
    return rows


def remapped(source: Path, dest: Path, fn) -> Path:
    """A copy of ``source`` with every pixel value ``p`` (0-1) mapped through ``fn``."""
    from PIL import Image

    if dest.exists():
        return dest
    for f in sorted(source.rglob("*.jpg")):
        target = dest / f.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.open(f).point(lambda v: int(round(255 * fn(v / 255)))).save(target, quality=90)
    return dest


def bench_norm(args: argparse.Namespace, work: Path) -> list[dict]:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_norm import fit_accuracy, probe_accuracy

    from graft.data import normalization_stats, scan_dataset
    from graft.data.stats import pretrained_cfg_for, recommend_normalization

    pre = pretrained_cfg_for(args.model)
    base = photos(work, args.train, args.test)
    makers = {
        "animals": lambda: sample("animals", work, args.train, args.test),
        "digits": lambda: sample("digits", work, args.train, args.test),
        "photos": lambda: base,
        "photos-dark": lambda: remapped(base, work / "photos-dark", lambda p: 0.25 * p),
        "photos-flat": lambda: remapped(
            base, work / "photos-flat", lambda p: 0.5 + 0.2 * (p - 0.5)
        ),
    }
    opts = argparse.Namespace(model=args.model, image_size=112, seed=0, recipe="head",
                              epochs=args.epochs, batch_size=32)  # fmt: skip
    modes = ("pretrained", "dataset", args.explicit)
    rows = []
    for name in args.sets.split(","):
        root = makers[name]()
        stats = normalization_stats(scan_dataset(root, verify=False), progress=False)
        shift = max(
            abs(m - pm) / ps
            for m, pm, ps in zip(stats["mean"], pre["mean"], pre["std"], strict=True)
        )
        ratio = min(s / ps for s, ps in zip(stats["std"], pre["std"], strict=True))
        advice = recommend_normalization(stats["mean"], stats["std"], 0.0, pre["mean"], pre["std"])
        row = {"set": name, "mean_shift": round(shift, 2), "std_ratio": round(ratio, 2),
               "advice": advice[0]}  # fmt: skip
        for mode in modes:
            key = "explicit" if mode == args.explicit else mode
            row[f"probe_{key}"] = probe_accuracy(root, mode, stats, opts)["test_accuracy"]
            opts.out = str(work / f"norm-{name}")
            row[f"fit_{key}"] = fit_accuracy(root, mode, opts)["test_accuracy"]
        row["explicit"] = args.explicit
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main() -> None:
    args = parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    print(f"load before: {os.getloadavg()}", flush=True)
    rows = {"size": bench_size, "eta": bench_eta, "norm": bench_norm}[args.what](args, work)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    results[args.what] = {"args": vars(args), "rows": rows, "load_after": os.getloadavg(),
                          "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}  # fmt: skip
    out.write_text(json.dumps(results, indent=1))
    print(f"load after: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
