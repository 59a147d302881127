"""Bench: how far probability averaging of the shipped backbones can go, from bench_quality's fits.

Issue #20 asks ``--preset best`` for ``balanced`` + 1 point. This measures the ceiling of the
ensemble lever on the very fits ``bench/bench_quality.py`` made (its ``ensemble-members`` records:
the ``auto`` fits of Lite0, Lite1, Lite2 and MobileNetV2 per dataset and seed, 96 px):

- ``equal``: the members' probabilities averaged with equal weights (what ``best`` does);
- ``test-optimal``: the weights (a grid of step 1/``--steps`` on the simplex) that maximise
  accuracy **on the test set itself**, an upper bound no weighting chosen before seeing the test
  labels can exceed;
- ``oracle``: a test image counts as right when any member gets it right (a bound for any rule
  that picks one member's answer per image).

Run (after bench_quality.py, same --work):
    .venv/bin/python bench/quality_bound.py --datasets animals,digits
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
from pathlib import Path

import numpy as np
from quality_rows_ensemble import member_folder

from graft.ensembling.weights import accuracy

MEMBERS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "tv:mobilenet_v2")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="animals,digits")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--work", default="/tmp/bench_quality")
    p.add_argument("--split", default="n2000-v200-t1000", help="bench_quality's split name")
    p.add_argument("--steps", type=int, default=20, help="weight grid: multiples of 1/steps")
    return p.parse_args()


def test_probs(bundle: str, files: list[str]) -> tuple[np.ndarray, list[str]]:
    """Class probabilities of ``bundle`` on ``files`` (graft's inference path) and its classes."""
    from graft.bundle import load_bundle
    from graft.inference.runner import run_inference

    loaded = load_bundle(bundle)
    found = run_inference(loaded, files, batch_size=100)
    if len(found.index) != len(files):
        raise SystemExit(f"{bundle}: {len(files) - len(found.index)} test images could not be read")
    return found.probs, list(loaded.classes)


def best_weights(probs: np.ndarray, labels: np.ndarray, steps: int) -> tuple[float, list[float]]:
    """(accuracy, weights) of the grid weighting with the highest accuracy on ``labels``."""
    best: tuple[float, list[float]] = (-1.0, [])
    for w in itertools.product(range(steps + 1), repeat=len(probs)):
        if sum(w) != steps:
            continue
        acc = accuracy(np.tensordot(np.array(w) / steps, probs, 1), labels)
        if acc > best[0]:
            best = (acc, [x / steps for x in w])
    return best


def bound_row(work: Path, dataset: str, seed: int, split: str, steps: int) -> dict:
    name = f"{dataset}-s{seed}-{split}"
    test = work / "splits" / name / "test"
    files = sorted(str(f) for f in test.glob("*/*"))
    probs, classes = [], None
    for member in MEMBERS:
        folder = member_folder(work / "splits" / name, seed, work, member)
        record = json.loads((folder / "member.json").read_text())
        p, classes = test_probs(record["bundle"], files)
        probs.append(p)
    labels = np.array([classes.index(Path(f).parent.name) for f in files])
    stacked = np.stack(probs)
    right = stacked.argmax(2) == labels
    optimal, weights = best_weights(stacked, labels, steps)
    return {
        "dataset": dataset, "seed": seed, "n_test": len(files),
        **{m: round(float(r.mean()), 4) for m, r in zip(MEMBERS, right, strict=True)},
        "equal_4": round(accuracy(stacked.mean(0), labels), 4),
        "equal_best_3": round(accuracy(stacked[[0, 1, 3]].mean(0), labels), 4),
        "test_optimal": round(optimal, 4), "test_optimal_weights": weights,
        "oracle": round(float(right.any(0).mean()), 4), "all_wrong": int((~right).all(0).sum()),
    }  # fmt: skip


def main() -> None:
    args = parse_args()
    rows = []
    for dataset in args.datasets.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            row = bound_row(Path(args.work), dataset, seed, args.split, args.steps)
            print(json.dumps(row), flush=True)
            rows.append(row)
        mine = [r for r in rows if r["dataset"] == dataset]
        gain = [r["test_optimal"] - r["efficientnet_lite0"] for r in mine]
        print(json.dumps({"dataset": dataset, "test_optimal_gain_mean": round(statistics.mean(gain), 4),
                          "test_optimal_gain_median": round(statistics.median(gain), 4)}))  # fmt: skip


if __name__ == "__main__":
    main()
