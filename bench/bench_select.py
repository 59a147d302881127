"""Does ``graft select`` rank backbones the way short fine-tuning does, in a fraction of its time?

On the animals sample (real 28x28 silhouettes, 10 classes), the backbones with offline ImageNet
weights plus a randomly initialised control are (1) ranked by :func:`graft.select.select` on the
training images and (2) each fine-tuned with the same short :func:`graft.fit` recipe and scored on
the held-out test images. Reported: Kendall's tau between select's score and test accuracy (per
score too), and select's wall time against the total fitting time.
Targets: tau >= 0.6, select <= 10% of the fitting time.

Usage:
    .venv/bin/python bench/bench_select.py --per-class 100 --epochs 3 --out runs/bench-select

Finished work in ``--out`` is reused: ``fits/NAME.json`` (a fit's result and times) and
``select_times.json`` (with ``select/selection.json``). To re-measure select alone against earlier
fits, copy their ``fits/*.json`` into a fresh ``--out`` and pass the same ``--data``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from scipy.stats import kendalltau

from graft.data import sample_dataset
from graft.io import write_json
from graft.runtime import tune_allocator
from graft.select import select_models
from graft.select.api import CONTROL_SUFFIX, DEFAULT_SCORES
from graft.train import fit


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (user + system), in seconds."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


DEFAULT_CANDIDATES = [
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
    "tv:mobilenet_v2",
]


def candidates() -> list[str]:
    """Backbones with offline weights (graft.models.available_models when it exists)."""
    try:
        from graft.models import available_models

        names = [e["name"] if isinstance(e, dict) else str(e) for e in available_models()]
        return names or DEFAULT_CANDIDATES
    except ImportError:
        return DEFAULT_CANDIDATES


def fit_one(data: Path, name: str, args: argparse.Namespace, out: Path) -> dict:
    """Fine-tune ``name`` (``NAME@random``: random init) with the shared short recipe; test accuracy."""
    random_init = name.endswith(CONTROL_SUFFIX)
    model = name.removesuffix(CONTROL_SUFFIX)
    started, cpu0 = time.perf_counter(), cpu_seconds()
    result = fit(
        str(data),
        model=model,
        weights="none" if random_init else "pretrained",
        image_size=args.image_size,
        epochs=args.epochs,
        batch_size=32,
        seed=args.seed,
        progress=False,
        out=str(out / "fits" / name.replace(":", "-").replace("@", "-")),
        workers=0,
    )
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu0
    acc_key = next(k for k in result.metrics if k.startswith("test") and "acc" in k)
    return {
        "candidate": name,
        "test_acc": result.metrics[acc_key],
        "fit_seconds": seconds,
        "fit_cpu_seconds": cpu,
        "metrics": result.metrics,
    }


def run_select(
    data: Path, names: list[str], args: argparse.Namespace, out: Path
) -> tuple[list[dict], dict]:
    """Run select once; a finished run in ``out/select`` is reused with its measured times."""
    done = out / "select_times.json"
    if done.exists():
        times = json.loads(done.read_text())
        return json.loads((out / "select" / "selection.json").read_text())["rows"], times
    started, cpu0 = time.perf_counter(), cpu_seconds()
    sel = select_models(
        data,
        names,
        image_size=args.image_size,
        sample_per_class=args.sample_per_class,
        scores=[x.strip() for x in args.scores.split(",") if x.strip()],
        rank_by="consensus",
        control=True,
        seed=args.seed,
        out=out / "select",
    )
    times = {"wall": time.perf_counter() - started, "cpu": cpu_seconds() - cpu0}
    print(sel.summary(), flush=True)
    print(f"select: {times['wall']:.1f} s wall, {times['cpu']:.1f} s CPU", flush=True)
    write_json(done, times)
    return sel.rows, times


def fit_in_subprocess(name: str, argv: list[str]) -> subprocess.Popen:
    """Start ``bench_select.py --stage fit --only NAME`` (fits run side by side, one thread each)."""
    cmd = [sys.executable, __file__, *argv, "--stage", "fit", "--only", name]
    return subprocess.Popen(cmd)


def fit_cached(data: Path, name: str, args: argparse.Namespace, out: Path) -> dict:
    """:func:`fit_one`, its result kept in ``out/fits/NAME.json`` so a re-run skips finished fits."""
    done = out / "fits" / (name.replace(":", "-").replace("@", "-") + ".json")
    if done.exists():
        return json.loads(done.read_text())
    result = fit_one(data, name, args, out)
    write_json(done, result)
    return result


def tau(selection_rows: list[dict], fits: dict[str, dict], key: str) -> float | None:
    """Kendall tau between a select column and fine-tuned test accuracy."""
    pairs = [
        (r[key], fits[r["candidate"]]["test_acc"]) for r in selection_rows if r.get(key) is not None
    ]
    if len(pairs) < 3:
        return None
    value = kendalltau([p[0] for p in pairs], [p[1] for p in pairs]).statistic
    return float(value)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--per-class", type=int, default=100, help="animals images per class (80%% train)"
    )
    p.add_argument("--data", default=None, help="an existing animals folder (default: write one)")
    p.add_argument("--sample-per-class", type=int, default=20, help="select's stratified sample")
    p.add_argument(
        "--scores",
        default=",".join(DEFAULT_SCORES),
        help="select's scores (default: select's own default, logme,knn; "
        "logme,probe,knn,hscore,leep,nce for all)",
    )
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads in every process")
    p.add_argument("--parallel-fits", action="store_true", help="run the fits side by side")
    p.add_argument("--stage", choices=("all", "fit"), default="all")
    p.add_argument("--only", default=None, help="with --stage fit: the one candidate to fit")
    p.add_argument("--out", default="runs/bench-select")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    tune_allocator()
    out = Path(args.out)
    data = (
        Path(args.data)
        if args.data
        else sample_dataset("animals", out / "animals", per_class=args.per_class)
    )
    if args.stage == "fit":
        fit_cached(data, args.only, args, out)
        return 0
    names = candidates()
    print(f"candidates: {names} + control", flush=True)
    child_argv = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--parallel-fits"]
    if args.data is None:
        child_argv += ["--data", str(data)]
    procs = []
    if args.parallel_fits:  # every candidate, started before select so both share the machine alike
        procs = [fit_in_subprocess(n, child_argv) for n in [*names, names[0] + CONTROL_SUFFIX]]
    rows, select_times = run_select(data, names, args, out)
    for proc in procs:
        proc.wait()
    fits = {}
    for row in rows:
        fits[row["candidate"]] = fit_cached(data, row["candidate"], args, out)
        f = fits[row["candidate"]]
        print(
            f"fit {row['candidate']}: test acc {f['test_acc']:.4f} in {f['fit_seconds']:.1f} s "
            f"({f['fit_cpu_seconds']:.1f} s CPU)",
            flush=True,
        )
    report = make_report(rows, fits, select_times, names, args)
    write_json(out / "bench_select.json", report)
    print(
        json.dumps(
            {
                k: report[k]
                for k in ("kendall_tau", "select", "fit_total", "select_fraction_of_fit", "targets")
            },
            indent=2,
        )
    )
    return 0


def make_report(rows: list[dict], fits: dict, select_times: dict, names: list[str], args) -> dict:
    """Kendall tau per score, times and the per-candidate table."""
    taus = {
        k: tau(rows, fits, k) for k in ("score", "logme", "probe", "knn", "hscore", "leep", "nce")
    }
    fit_total = {
        "wall": sum(f["fit_seconds"] for f in fits.values()),
        "cpu": sum(f["fit_cpu_seconds"] for f in fits.values()),
    }
    fraction = {k: select_times[k] / fit_total[k] for k in ("wall", "cpu")}
    return {
        "settings": vars(args),
        "candidates": names,
        "select": select_times,
        "fit_total": fit_total,
        "select_fraction_of_fit": fraction,
        "kendall_tau": taus,
        "rows": [
            {
                "candidate": r["candidate"],
                "select_rank": r["rank"],
                "score": r["score"],
                "logme": r.get("logme"),
                "probe": r.get("probe"),
                "knn": r.get("knn"),
                "hscore": r.get("hscore"),
                "leep": r.get("leep"),
                "nce": r.get("nce"),
                "latency_ms": r["latency_ms"],
                "test_acc": fits[r["candidate"]]["test_acc"],
                "fit_seconds": fits[r["candidate"]]["fit_seconds"],
                "fit_cpu_seconds": fits[r["candidate"]]["fit_cpu_seconds"],
            }
            for r in rows
        ],
        "targets": {
            "tau_consensus>=0.6": (taus["score"] or -1) >= 0.6,
            "select<=10%_of_fit_cpu": fraction["cpu"] <= 0.1,
        },
    }


if __name__ == "__main__":
    sys.exit(main())
