"""Quality rows for issue #20: ensembles of 2 and 4 backbones (``graft ensemble``).

Imported by ``bench/bench_quality.py``, which builds the split (ImageFolder with train/ val/ test/)
once per dataset and seed and calls every ``ROWS`` entry as ``fn(data_dir, seed, work_dir)``.

Each member is an ``auto`` fit (same recipe, epochs and image size as the ``auto`` row) of one of
the four shipped backbones; member fits are cached under ``work_dir`` per backbone and seed, so the
4-backbone row reuses the 2-backbone row's members, and the time reported for a row is the sum of
its members' fit times plus the ensemble step (weights chosen on val/), whether or not a member
came from the cache. ``test_acc_equal`` is the same ensemble with equal weights.

The ``head-only`` rows use members whose head alone was trained (``recipe="head"``,
``HEAD_EPOCHS``): a full fine-tune of Lite2 is several times Lite0's cost on a CPU, a head-only fit a
few seconds an epoch, so these rows show what an ensemble buys at a small price.

Standalone, it builds a small split of the animals sample and runs ``auto`` (Lite0 alone) and
Lite0 head-only next to the head-only ensembles (``--rows ensemble``: also the ``auto``-member ensembles),
same split and seed (``--rows`` picks the ensemble rows)::

    nice -n 10 .venv/bin/python bench/quality_rows_ensemble.py --train 400 --val 200 --test 400 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

TWO = ("efficientnet_lite0", "tv:mobilenet_v2")
FOUR = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "tv:mobilenet_v2")
FIT = {
    "recipe": "auto",
    "epochs": int(os.environ.get("GRAFT_QUALITY_EPOCHS", "3")),
    "image_size": 96,
}


def fit_options() -> dict:
    """The ``auto`` fit options: bench_quality.py's protocol when it runs the rows, else ``FIT``."""
    raw = os.environ.get("GRAFT_QUALITY_PROTOCOL")
    if not raw:
        return dict(FIT)
    p = json.loads(raw)
    keys = ("image_size", "epochs", "flip", "batch_size", "workers")
    return {"recipe": "auto", **{k: p[k] for k in keys if k in p}}


def member_folder(data_dir: Path, seed: int, work_dir: Path, model: str, tag: str = "") -> Path:
    """Where a member fit is cached: shared by every row run on the same split (``data_dir``)."""
    root = Path(work_dir).parents[1] if os.environ.get("GRAFT_QUALITY_PROTOCOL") else Path(work_dir)
    name = f"{model.replace(':', '_')}{tag}-seed{seed}"
    return root / "ensemble-members" / Path(data_dir).name / name


HEAD_EPOCHS = 5  # head-only members: the backbone stays frozen, an epoch costs a few seconds


def fit_member(data_dir: Path, seed: int, work_dir: Path, model: str, recipe: str = "auto") -> dict:
    """``recipe`` fit of ``model`` (cached in ``work_dir``): bundle path, seconds, test accuracy.

    ``auto`` uses ``FIT``; ``head`` trains the head only for ``HEAD_EPOCHS`` (same image size).
    """
    from graft.train import fit

    tag = "" if recipe == "auto" else f"-{recipe}"
    folder = member_folder(data_dir, seed, work_dir, model, tag)
    record = folder / "member.json"
    if record.exists():
        return json.loads(record.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    kwargs = {**fit_options(), "recipe": recipe}
    if recipe == "head":
        kwargs["epochs"] = HEAD_EPOCHS
    r = fit(str(data_dir), model=model, seed=seed, out=str(folder / "run"), report=False,
            progress=False, **kwargs)  # fmt: skip
    return save_member(folder, model, recipe, r, time.perf_counter() - started)


def save_member(folder: Path, model: str, recipe: str, result, seconds: float) -> dict:
    """Record a finished fit (a ``graft.fit`` result) as the cached member in ``folder``."""
    out = {"model": model, "recipe": recipe, "bundle": str(result.bundle), "seconds": seconds,
           "test_acc": result.metrics.get("test_acc")}  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "member.json").write_text(json.dumps(out))
    return out


def ensemble_row(models: Sequence[str], recipe: str = "auto") -> Callable[[Path, int, Path], dict]:
    """A row: fit (or reuse) each member, ensemble them with weights chosen on val/, test."""

    def row(data_dir: Path, seed: int, work_dir: Path) -> dict:
        import graft

        fits = [fit_member(data_dir, seed, work_dir, m, recipe) for m in models]
        name = f"ensemble{len(models)}-{recipe}-seed{seed}"
        started = time.perf_counter()
        r = graft.ensemble([f["bundle"] for f in fits], data=str(data_dir), seed=seed,
                           out=Path(work_dir) / name)  # fmt: skip
        ens_seconds = time.perf_counter() - started
        equal = graft.ensemble([f["bundle"] for f in fits], out=Path(work_dir) / f"{name}-equal")
        test = graft.evaluate(r.path, str(data_dir), report=False).accuracy
        test_equal = graft.evaluate(equal.path, str(data_dir), report=False).accuracy
        by_bundle = {f["bundle"]: f["model"] for f in fits}
        return {
            "test_acc": test,
            "seconds": sum(f["seconds"] for f in fits) + ens_seconds,
            "ensemble_seconds": ens_seconds,
            "test_acc_equal": test_equal,
            "members": {
                f["model"]: {"test_acc": f["test_acc"], "seconds": f["seconds"]} for f in fits
            },
            "weights": {by_bundle[m]: w for m, w in zip(r.members, r.weights, strict=True)},
            "val_acc": r.selection["val_acc"],
            "val_acc_equal": r.selection["equal_weights"]["val_acc"],
        }

    return row


ROWS: dict[str, Callable[[Path, int, Path], dict]] = {
    "ensemble-2 (lite0 + mobilenet_v2)": ensemble_row(TWO),
    "ensemble-4 (lite0/1/2 + mobilenet_v2)": ensemble_row(FOUR),
    "ensemble-2 head-only": ensemble_row(TWO, "head"),
    "ensemble-4 head-only": ensemble_row(FOUR, "head"),
}


def head_only_lite0(data_dir: Path, seed: int, work_dir: Path) -> dict:
    """Lite0 with its head trained alone: the single-model reference of the head-only ensembles."""
    f = fit_member(data_dir, seed, work_dir, TWO[0], "head")
    return {"test_acc": f["test_acc"], "seconds": f["seconds"]}


def small_split(work: Path, n_train: int, n_val: int, n_test: int, seed: int) -> Path:
    """train/ val/ test/ from the animals sample: the first images of each class, per split."""
    from graft.data import sample_dataset

    full = sample_dataset("animals", work / "animals-full", seed=seed)
    dest = work / f"animals-{n_train}-{n_val}-{n_test}-s{seed}"
    if dest.exists():
        return dest
    classes = sorted(d.name for d in (full / "train").iterdir() if d.is_dir())
    for c in classes:
        train = sorted((full / "train" / c).iterdir())
        test = sorted((full / "test" / c).iterdir())
        nt, nv = n_train // len(classes), n_val // len(classes)
        parts = {
            "train": train[:nt],
            "val": train[nt : nt + nv],
            "test": test[: n_test // len(classes)],
        }
        for split, files in parts.items():
            (dest / split / c).mkdir(parents=True)
            for f in files:
                os.symlink(f.resolve(), dest / split / c / f.name)
    return dest


def main() -> None:
    p = argparse.ArgumentParser(description="ensembles next to auto, one split and seed")
    p.add_argument("--train", type=int, default=400)
    p.add_argument("--val", type=int, default=200)
    p.add_argument("--test", type=int, default=400)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default="/tmp/bench_ensemble")
    p.add_argument("--rows", default="head-only",
                   help="comma-separated parts of ROWS names to run ('ensemble': all of them)")  # fmt: skip
    p.add_argument("--out", default="bench/results_ensemble.json")
    args = p.parse_args()
    FIT["epochs"] = args.epochs
    work = Path(args.work)
    data = small_split(work, args.train, args.val, args.test, args.seed)
    load = [os.getloadavg()]
    auto = fit_member(data, args.seed, work, TWO[0])  # the `auto` row: Lite0 alone
    rows = {"auto (lite0)": {"test_acc": auto["test_acc"], "seconds": auto["seconds"]}}
    rows["head-only (lite0)"] = head_only_lite0(data, args.seed, work)
    chosen = {k: v for k, v in ROWS.items() if any(part in k for part in args.rows.split(","))}
    for name, fn in chosen.items():
        rows[name] = fn(data, args.seed, work)
        load.append(os.getloadavg())
        Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    base = rows["auto (lite0)"]
    print(f"{'row':40s} {'test_acc':>8s} {'vs auto':>8s} {'time/auto':>9s}")
    for name, r in rows.items():
        print(f"{name:40s} {r['test_acc']:8.4f} {100 * (r['test_acc'] - base['test_acc']):+7.2f}p "
              f"{r['seconds'] / base['seconds']:8.2f}x")  # fmt: skip
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print("load averages (1/5/15 min) after each step:", load, "|", uptime)
    result = {"args": vars(args), "fit": FIT, "rows": rows, "load": load, "uptime": uptime}
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
