"""The ``preset-best`` row of bench/bench_quality.py: one real ``graft.fit(preset="best")`` run.

``--preset best`` fits ``--model`` with recipe ``auto`` (its first member, ``OUT/members/<model>/``,
is exactly the ``balanced`` fit: same options, same seed, same weights), then the members that
:func:`graft.ensembling.members.choose_members` gives (default: ``long``, ``--model`` with 3x the
epochs after the head phase), and combines them (equal weights, TTA when flips are allowed). So
the row is paired in one run: ``balanced_test_acc`` and ``balanced_seconds`` are the first
member's test accuracy and fit time, ``seconds`` the whole ``graft.fit`` call, and ``time_ratio``
their ratio. ``test_acc_no_tta`` is the ensemble without the mirrored images.

Standalone, it prints the summary of a ``bench_quality.py --rows preset-best`` work folder::

    .venv/bin/python bench/quality_rows_best.py --report /tmp/bench_best
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from bench_quality import protocol


def preset_best(data: Path, seed: int, work: Path) -> dict:
    """Fit ``--preset best`` on ``data`` (train/ val/ test/) with the protocol's options."""
    import graft

    p = protocol()
    started = time.perf_counter()
    r = graft.fit(str(data), preset="best", model=p["model"], seed=seed, image_size=p["image_size"],
                  epochs=p["epochs"], flip=p["flip"], batch_size=p["batch_size"],
                  workers=p["workers"], out=str(work / "best"), progress=False)  # fmt: skip
    seconds = time.perf_counter() - started
    record = json.loads((work / "best" / "metrics.json").read_text())
    members = record["members"]
    first = members[p["model"]]
    m = r.metrics
    tta = "test_acc_tta" in m
    test = m["test_acc_tta"] if tta else m["test_acc"]
    return {
        "test_acc": test,
        "test_acc_no_tta": m["test_acc"],
        "val_acc": m.get("val_acc_tta", m.get("val_acc")),
        "seconds": round(seconds, 1),
        "balanced_test_acc": first["metrics"]["test_acc"],
        "balanced_seconds": first["seconds"],
        "gain_points": round(100 * (test - first["metrics"]["test_acc"]), 2),
        "time_ratio": round(seconds / first["seconds"], 3),
        "members": {
            n: {
                "test_acc": v["metrics"]["test_acc"],
                "seconds": v["seconds"],
                "epochs": v["metrics"].get("epochs"),
            }
            for n, v in members.items()
        },  # fmt: skip
        "weights": record.get("ensemble", {}).get("weights"),
        "tta": tta,
    }


ROWS = {"preset-best": preset_best}


def summary(lines: list[dict]) -> str:
    """Per dataset: each seed's balanced and best accuracy, gain and time ratio; mean and median."""
    out = []
    for name in dict.fromkeys(r["dataset"] for r in lines):
        rs = sorted((r for r in lines if r["dataset"] == name), key=lambda r: r["seed"])
        out += [f"\n{name}\n", "| seed | balanced | best | gain (points) | best s | balanced s | "
                "time / balanced | members (test acc) |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in rs:
            mem = ", ".join(f"{k} {v['test_acc']:.4f}" for k, v in r["members"].items())
            out.append(f"| {r['seed']} | {r['balanced_test_acc']:.4f} | {r['test_acc']:.4f} | "
                       f"{r['gain_points']:+.2f} | {r['seconds']:.0f} | {r['balanced_seconds']:.0f} "
                       f"| {r['time_ratio']:.2f}x | {mem} |")  # fmt: skip
        gains, ratios = [r["gain_points"] for r in rs], [r["time_ratio"] for r in rs]
        out.append(f"| mean | {statistics.mean(r['balanced_test_acc'] for r in rs):.4f} | "
                   f"{statistics.mean(r['test_acc'] for r in rs):.4f} | {statistics.mean(gains):+.2f} "
                   f"(median {statistics.median(gains):+.2f}) | | | {statistics.median(ratios):.2f}x "
                   f"median ({min(ratios):.2f}-{max(ratios):.2f}) | |")  # fmt: skip
    return "\n".join(out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", required=True, help="bench_quality.py's --work folder")
    work = Path(parser.parse_args().report)
    rows = [json.loads(x) for x in (work / "quality.jsonl").read_text().splitlines() if x.strip()]
    print(summary([r for r in rows if r["row"] == "preset-best"]))
