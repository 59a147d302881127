"""Bench: linear probe on frozen features versus ``graft fit --recipe auto``, accuracy and wall time.

Both on the same animals sample (real 28x28 silhouettes, 10 classes, train/ and test/), the same
backbone (``efficientnet_lite0``, shipped weights) and image size:

- probe: ``graft.probe(data, clf="logreg")``: one extraction pass, then logistic regression with
  C chosen by 5-fold stratified CV; test accuracy on test/;
- fit: ``graft.fit(data, recipe="auto", ...)`` (head phase, then fine-tuning), test accuracy of
  its bundle on test/ (``graft.evaluate``).

Run:  .venv/bin/python bench/bench_probe.py --per-class 100 --image-size 64 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--per-class", type=int, default=100)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument(
        "--epochs", type=int, default=None, help="graft fit epochs (default: recipe auto's)"
    )
    p.add_argument("--clf", default="logreg")
    p.add_argument("--skip-fit", action="store_true", help="only the probe side")
    p.add_argument("--data", default="bench-out/probe/animals")
    p.add_argument("--out", default="bench-out/probe")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    import graft
    from graft.data import sample_dataset

    root = sample_dataset("animals", args.data, per_class=args.per_class)
    rows = {}
    start = time.perf_counter()
    r = graft.probe(
        root,
        clf=args.clf,
        model=args.model,
        image_size=args.image_size,
        out=Path(args.out) / "probe-bundle",
    )
    rows["probe"] = {
        "test_accuracy": r.test_accuracy,
        "cv_accuracy": r.cv_accuracy,
        "wall_s": time.perf_counter() - start,
        "extract_s": r.extract_seconds,
        "fit_s": r.fit_seconds,
        "best_params": r.probe.best_params_,
    }
    print(
        f"probe ({args.clf}): test acc {r.test_accuracy:.3f}, {rows['probe']['wall_s']:.1f} s ({r.summary()})",
        flush=True,
    )
    if not args.skip_fit:
        start = time.perf_counter()
        # no HTML report: the probe writes none either (graft fit writes one by default, ~5-10 s)
        options = {
            "recipe": "auto",
            "model": args.model,
            "image_size": args.image_size,
            "report": False,
        }
        if args.epochs:
            options["epochs"] = args.epochs
        fitted = graft.fit(str(root), out=str(Path(args.out) / "fit"), **options)
        wall = time.perf_counter() - start
        ev = graft.evaluate(fitted.bundle, str(root), split="test")
        acc = float(ev.metrics["accuracy"])
        rows["fit_auto"] = {"test_accuracy": acc, "wall_s": wall, "metrics": fitted.metrics}
        print(f"graft fit --recipe auto: test acc {acc:.3f}, {wall:.1f} s", flush=True)
    summary = {"args": vars(args), "rows": rows, "load_average": os.getloadavg()}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "bench_probe.json").write_text(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    main()
