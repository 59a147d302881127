"""Benchmark: test accuracy and wall time of graft's accuracy levers, same split and seed per row.

For each dataset (``animals``, ``digits`` samples) and seed, the split is built once: ``--train``
training images, ``--val`` validation images (both drawn from the sample's train part with the
seed) and ``--test`` test images (from its test part), as an ImageFolder with ``train/ val/ test/``
(symlinks). Every module ``bench/quality_rows_*.py`` present is imported; each exposes::

    ROWS: dict[str, Callable[[Path, int, Path], dict]]   # name -> fn(data_dir, seed, work_dir)

returning at least ``{"test_acc": float, "seconds": float}``. Rows read the protocol (image size,
epochs, flips) with :func:`protocol`. The report gives, per dataset and row, the median test
accuracy over seeds, its spread (min-max), the median paired difference to the ``auto`` row of the
same seed, and the median wall time as a ratio to ``auto`` (ratios measured in this run; the cores
may be shared, so absolute seconds are only indicative).

Full protocol (issue #20): ``--datasets animals,digits --image-size 96 --train 2000 --seeds 3``.
Quick run: ``python bench/bench_quality.py --train 300 --test 300 --seeds 1 --epochs 5``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
Row = Callable[[Path, int, Path], dict]


def protocol() -> dict:
    """The run's protocol for rows: image_size, epochs (None = automatic), flip, batch_size, model."""
    raw = os.environ.get("GRAFT_QUALITY_PROTOCOL", "{}")
    return {"image_size": 96, "epochs": None, "flip": True, "batch_size": 32, "workers": 0,
            "model": "efficientnet_lite0", **json.loads(raw)}  # fmt: skip


def build_split(name: str, seed: int, n_train: int, n_val: int, n_test: int, work: Path) -> Path:
    """``work/splits/NAME-sSEED`` with train/ val/ test/ symlinked from the sample dataset."""
    from graft.data import sample_dataset

    dest = work / "splits" / f"{name}-s{seed}-n{n_train}-v{n_val}-t{n_test}"
    if (dest / ".done").exists():
        return dest
    full = sample_dataset(name, work / "samples" / name)
    rng = random.Random(seed)
    train = [(c.name, f) for c in sorted((full / "train").iterdir()) if c.is_dir()
             for f in sorted(c.iterdir())]  # fmt: skip
    test = [(c.name, f) for c in sorted((full / "test").iterdir()) if c.is_dir()
            for f in sorted(c.iterdir())]  # fmt: skip
    rng.shuffle(train)
    rng.shuffle(test)
    n_train = min(n_train, len(train) - n_val)  # digits: 1,437 train images in all
    parts = {
        "train": train[:n_train],
        "val": train[n_train : n_train + n_val],
        "test": test[:n_test],
    }
    for split, items in parts.items():
        for cls, f in items:
            (dest / split / cls).mkdir(parents=True, exist_ok=True)
            (dest / split / cls / f.name).symlink_to(f.resolve())
    (dest / ".done").write_text(json.dumps({k: len(v) for k, v in parts.items()}))
    return dest


def load_rows(only: str | None) -> dict[str, Row]:
    """Every ROWS of bench/quality_rows_*.py, filtered by the comma-separated names in ``only``."""
    rows: dict[str, Row] = {}
    sys.path.insert(0, str(HERE))
    for path in sorted(HERE.glob("quality_rows_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        rows.update(module.ROWS)
    if only:
        wanted = only.split(",")
        unknown = [w for w in wanted if w not in rows]
        if unknown:
            raise SystemExit(f"unknown rows {unknown}; available: {', '.join(rows)}")
        rows = {k: v for k, v in rows.items() if k in wanted}
    return rows


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--datasets", default="animals,digits")
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--train", type=int, default=2000)
    p.add_argument("--val", type=int, default=200)
    p.add_argument("--test", type=int, default=1000)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--seed-list", default=None, help="comma-separated seeds (overrides --seeds)")
    p.add_argument("--epochs", type=int, default=None, help="total epochs (default: auto's own)")
    p.add_argument("--rows", default=None, help="comma-separated row names (default: all)")
    p.add_argument("--work", default="/tmp/bench_quality")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--workers", type=int, default=0, help="data loader processes per fit")
    p.add_argument(
        "--report-only", action="store_true", help="print the tables of WORK/quality.jsonl"
    )
    args = p.parse_args()
    if args.report_only:
        lines = (Path(args.work) / "quality.jsonl").read_text().splitlines()
        print(report([json.loads(line) for line in lines if line.strip()]))
        return
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    work = Path(args.work)
    rows = load_rows(args.rows)
    results: list[dict] = []
    log = work / "quality.jsonl"  # one line per finished row: a cut-short run keeps its rows
    seeds = [int(s) for s in args.seed_list.split(",")] if args.seed_list else range(args.seeds)
    for seed in seeds:  # seed-major: a cut-short run stays balanced across datasets
        for name in args.datasets.split(","):
            data = build_split(name, seed, args.train, args.val, args.test, work)
            os.environ["GRAFT_QUALITY_PROTOCOL"] = json.dumps(
                {"image_size": args.image_size, "epochs": args.epochs, "flip": name != "digits",
                 "workers": args.workers}
            )  # fmt: skip
            for row, fn in rows.items():
                tag = row.replace("/", "_").replace(" ", "_")  # a row name is not a path
                out = work / "runs" / f"{name}-s{seed}-{tag}-{int(time.time())}"
                out.mkdir(parents=True)
                res = {"dataset": name, "seed": seed, "row": row, **fn(data, seed, out)}
                results.append(res)
                print(json.dumps(res), flush=True)
                with open(log, "a") as f:
                    f.write(json.dumps(res) + "\n")
    (work / "quality.json").write_text(json.dumps(results, indent=1))
    print(report(results))


def _own_time(r: dict) -> dict:
    """The ``auto`` row costs its training run alone: its re-evaluation only pairs it with the others."""
    if r["row"] == "auto" and "shared_seconds" in r:
        return {**r, "seconds": r["shared_seconds"]}
    return r


def report(results: list[dict]) -> str:
    """A markdown table per dataset: median test acc, spread, paired delta and time ratio to auto."""
    results = [_own_time(r) for r in results]
    lines = []
    for name in dict.fromkeys(r["dataset"] for r in results):
        mine = [r for r in results if r["dataset"] == name]
        auto = {r["seed"]: r for r in mine if r["row"] == "auto"}
        lines += [f"\n{name} ({len(auto) or '?'} seeds)\n",
                  "| row | test acc (median) | spread | vs auto (median, points) | seconds | time / auto |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for row in dict.fromkeys(r["row"] for r in mine):
            rs = [r for r in mine if r["row"] == row]
            accs = [r["test_acc"] for r in rs]
            secs = statistics.median(r["seconds"] for r in rs)
            deltas = [
                100 * (r["test_acc"] - auto[r["seed"]]["test_acc"]) for r in rs if r["seed"] in auto
            ]
            ratios = [r["seconds"] / auto[r["seed"]]["seconds"] for r in rs if r["seed"] in auto]
            delta = f"{statistics.median(deltas):+.1f}" if deltas else "-"
            ratio = f"{statistics.median(ratios):.2f}" if ratios else "-"
            lines.append(f"| {row} | {statistics.median(accs):.4f} | {min(accs):.4f}-{max(accs):.4f} "
                         f"| {delta} | {secs:.0f} | {ratio} |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
