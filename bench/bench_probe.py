"""Bench: linear probe on frozen features versus ``graft fit --recipe auto``, accuracy and wall time.

Both on the same animals sample (real 28x28 silhouettes, 10 classes, train/ and test/), the same
backbone (``efficientnet_lite0``, shipped weights) and image size:

- probe: ``graft.probe(data, clf="logreg")``: one extraction pass, then logistic regression with
  C chosen by 5-fold stratified CV; test accuracy on test/;
- fit: ``graft.fit(data, recipe="auto", ...)`` (head phase, then fine-tuning), test accuracy of
  its bundle on test/ (``graft.evaluate``).

Run:  .venv/bin/python bench/bench_probe.py --per-class 100 --image-size 64 --epochs 3

``--kernels``: every ``--clf`` on Lite0 features at 96 px of the animals and digits samples, spatial
maps (``--pool none``, 1280x3x3 = 11,520 dims) and pooled (1280 dims), old (libsvm computing each
RBF kernel entry; the pre-#22 probe) vs new (``graft.features.Probe``) in one run, plus
``svm-rbf --pca auto`` on maps, and the memory-budget cases: exact kernel vs Nystroem on a 5,000-row
subset, and 20,000 x 11,520 training rows under ``--max-memory`` (each in its own process, so that its
peak RSS is its own). Ratios are measured in the same run.

Run:  .venv/bin/python bench/bench_probe.py --kernels --train 2000 --test 1000
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
    p.add_argument("--kernels", action="store_true", help="the kernel-probe suite (issue #22)")
    p.add_argument("--datasets", default="animals,digits")
    p.add_argument("--train", type=int, default=2000, help="training rows per dataset")
    p.add_argument("--test", type=int, default=1000, help="test rows per dataset")
    p.add_argument("--clfs", default="logreg,linear-svm,svm-rbf,knn,ridge")
    p.add_argument(
        "--old-clfs", default="all", help="classifiers also fitted the old way ('all' or a list)"
    )
    p.add_argument("--features", default="pooled,maps")
    p.add_argument("--subset-rows", type=int, default=5000, help="exact vs Nystroem rows (0: skip)")
    p.add_argument("--subset-solvers", default="exact,nystroem", help="solvers on the subset")
    p.add_argument(
        "--big-rows", type=int, default=20000, help="Nystroem memory case rows (0: skip)"
    )
    p.add_argument("--big-memory", default="2GB", help="--max-memory of the big case")
    p.add_argument("--case", default=None, help=argparse.SUPPRESS)  # internal: one subprocess case
    return p.parse_args()


def main() -> None:
    args = parse_args()
    if args.case:
        print(json.dumps(_memory_case(args)))
        return
    if args.kernels:
        _kernels(args)
        return
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


# ---------------------------------------------------------------- kernel probes (issue #22)


def _kernels(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"args": vars(args), "load_average_start": os.getloadavg(), "tables": {}}
    for name in filter(None, args.datasets.split(",")):
        summary["tables"][name] = _dataset_rows(name, args)
        _save(out, summary)
    if args.subset_rows or args.big_rows:  # 7,000 real maps for the memory cases
        store = _maps(out, "animals", per_class=700)
    if args.subset_rows:
        summary["subset"] = _subprocess_case(args, f"subset:{store}")
        _save(out, summary)
    if args.big_rows:
        summary["big"] = _subprocess_case(args, f"big:{store}")
    summary["load_average_end"] = os.getloadavg()
    _save(out, summary)


def _save(out: Path, summary: dict) -> None:
    (out / "bench_probe_kernels.json").write_text(json.dumps(summary, indent=2, default=str))


def _maps(out: Path, name: str, per_class: int | None) -> str:
    """Lite0 maps at 96 px (pool none) of a sample, in a feature store reused across runs."""
    import graft
    from graft.data import sample_dataset

    tag = f"{name}{per_class or ''}"
    root = sample_dataset(name, out / tag, per_class=per_class)
    store = out / f"{tag}-maps96"
    start = time.perf_counter()
    graft.extract(
        root, model="efficientnet_lite0", image_size=96, pool="none", out=store, progress=False
    )
    print(f"{tag}: maps in {store} ({time.perf_counter() - start:.1f} s)", flush=True)
    return str(store)


def _dataset_rows(name: str, args: argparse.Namespace) -> list[dict]:
    import numpy as np

    from graft.features import Features

    f = Features.load(_maps(Path(args.out), name, per_class=300 if name == "animals" else None))
    maps = f.features.astype(np.float32)
    tr, te = _split(f.labels, args.train, args.test)
    print(f"{name}: {len(tr)} train / {len(te)} test, maps {maps.shape[1:]}", flush=True)
    feats = {"maps": maps.reshape(len(maps), -1), "pooled": maps.mean(axis=(2, 3))}
    old = args.clfs.split(",") if args.old_clfs == "all" else args.old_clfs.split(",")
    rows = []
    for kind in args.features.split(","):
        X, y = feats[kind], f.labels
        runs = [(clf, None) for clf in args.clfs.split(",")]
        if kind == "maps" and "svm-rbf" in args.clfs.split(","):
            runs.append(("svm-rbf", "auto"))
        for clf, pca in runs:
            rows += _compare(
                name, kind, clf, pca, X[tr], y[tr], X[te], y[te], clf in old and not pca
            )
    return rows


def _compare(name, kind, clf, pca, X, y, X_test, y_test, with_old: bool) -> list[dict]:
    """New (and old) fit of one classifier: time, accuracy, and the old/new time ratio."""
    from graft.features import Probe

    label = f"{clf}" + (" --pca auto" if pca else "")
    start = time.perf_counter()
    new = Probe(clf, pca=pca, cv=5).fit(X, y)
    rows = [_row(name, kind, label, "new", new, time.perf_counter() - start, X_test, y_test)]
    if with_old:
        start = time.perf_counter()
        model, best, cv = _old_fit(clf, X, y)
        rows.append(
            _row(name, kind, label, "old", model, time.perf_counter() - start, X_test, y_test)
        )
        rows[-1].update(best_params=best, cv_accuracy=cv)
        rows[0]["speedup"] = round(rows[1]["fit_s"] / max(rows[0]["fit_s"], 1e-9), 2)
        rows[0]["accuracy_delta"] = round(rows[0]["test_accuracy"] - rows[1]["test_accuracy"], 4)
    for r in rows:
        print(
            f"  {name:8s} {kind:6s} {label:18s} {r['kind']}: fit {r['fit_s']:8.2f} s, "
            f"test {r['test_accuracy']:.3f}, {r['best_params']}"
            + (f", {r['speedup']}x faster" if "speedup" in r else ""),
            flush=True,
        )
    return rows


def _row(name, kind, label, which, model, seconds, X_test, y_test) -> dict:
    import numpy as np

    start = time.perf_counter()
    acc = float(np.mean(model.predict(X_test) == y_test))
    return {
        "dataset": name,
        "features": kind,
        "clf": label,
        "kind": which,
        "fit_s": round(seconds, 2),
        "predict_s": round(time.perf_counter() - start, 2),
        "test_accuracy": acc,
        "cv_accuracy": getattr(model, "cv_accuracy_", None),
        "best_params": getattr(model, "best_params_", None),
        "stage_seconds": getattr(model, "stage_seconds_", None),
        "solver": getattr(model, "solver_", None),
        "solver_info": getattr(model, "solver_info_", None),
    }


def _old_fit(clf: str, X, y):
    """The probe before BLAS kernels: sklearn pipeline (libsvm computes every RBF kernel entry),
    path_search over the same grid and folds, final fit; float64, BLAS on 1 thread, as it was."""
    import numpy as np
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    from graft.features.probe_search import path_search
    from graft.features.probing import GRIDS, SEARCH_OVERRIDES, _folds, make_classifier

    X = np.asarray(X, dtype=np.float64)
    pipe = Pipeline([("scale", StandardScaler()), ("clf", make_classifier(clf, 0))])
    folds = _folds(y, 5)
    grid = dict(GRIDS[clf])
    if clf == "knn":
        smallest = int(len(y) * (folds - 1) / folds)
        grid["n_neighbors"] = [k for k in grid["n_neighbors"] if k <= smallest]
    with threadpool_limits(1, user_api="blas"):
        best, cv = path_search(pipe, grid, X, y, folds, overrides=SEARCH_OVERRIDES.get(clf))
        pipe.set_params(**{f"clf__{k}": v for k, v in best.items()}).fit(X, y)
    return pipe, best, cv


def _split(labels, train: int, test: int, seed: int = 0):
    """Stratified train/test rows; with fewer than ``train + test`` images (digits: 1,797) both
    shrink in proportion."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    if train + test > len(labels):
        train = int(round(len(labels) * train / (train + test)))
        test = len(labels) - train
    tr, te = train_test_split(
        np.arange(len(labels)),
        train_size=train,
        test_size=test,
        stratify=labels,
        random_state=seed,
    )
    return np.sort(tr), np.sort(te)


def _subprocess_case(args: argparse.Namespace, case: str) -> dict:
    import subprocess
    import sys

    cmd = [sys.executable, __file__, "--case", case, "--out", args.out]
    cmd += ["--subset-rows", str(args.subset_rows), "--subset-solvers", args.subset_solvers]
    cmd += ["--big-rows", str(args.big_rows), "--big-memory", args.big_memory]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{case} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{case.split(':')[0]}: {json.dumps(result)}", flush=True)
    return result


def _memory_case(args: argparse.Namespace) -> dict:
    """``subset``: exact kernel vs Nystroem on the same real rows; ``big``: ``--big-rows`` rows
    (the real training maps, then copies with 5% gaussian noise) under ``--big-memory``."""
    import resource

    import numpy as np

    from graft.features import Features, Probe

    which, store = args.case.split(":", 1)
    f = Features.load(store)
    X, y = f.flat().astype(np.float32), f.labels
    tr, te = _split(y, len(y) - 1000, 1000)
    out: dict = {"test_rows": len(te), "dims": int(X.shape[1])}
    if which == "subset":
        rows = np.sort(np.random.default_rng(0).choice(tr, args.subset_rows, replace=False))
        for label in args.subset_solvers.split(","):
            start = time.perf_counter()
            probe = Probe("svm-rbf", cv=5, max_memory="64GB", solver=label).fit(X[rows], y[rows])
            out[label] = _row(
                "animals",
                "maps",
                "svm-rbf",
                label,
                probe,
                time.perf_counter() - start,
                X[te],
                y[te],
            )
        out["train_rows"] = len(rows)
        if "exact" in out and "nystroem" in out:
            delta = out["nystroem"]["test_accuracy"] - out["exact"]["test_accuracy"]
            out["accuracy_delta"] = delta
        return out
    rng = np.random.default_rng(0)
    extra = rng.choice(tr, size=max(0, args.big_rows - len(tr)))
    X_train = np.concatenate([X[tr], X[extra]])[: args.big_rows]
    y_train = np.concatenate([y[tr], y[extra]])[: args.big_rows]
    spread = 0.05 * X[tr].std(axis=0, dtype=np.float64).astype(np.float32)
    for start in range(len(tr), len(X_train), 1000):  # noisy copies, 1,000 rows at a time
        block = X_train[start : start + 1000]
        block += spread * rng.standard_normal(block.shape, dtype=np.float32)
    X_test, y_test = X[te], y[te]
    del X, f
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    import tracemalloc

    tracemalloc.start()  # numpy reports its arrays to tracemalloc: the fit's own peak allocation
    start = time.perf_counter()
    probe = Probe("svm-rbf", cv=5, max_memory=args.big_memory).fit(X_train, y_train)
    out["fit_peak_allocated_bytes"] = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    out["new"] = _row(
        "animals", "maps", "svm-rbf", "new", probe, time.perf_counter() - start, X_test, y_test
    )
    out.update(
        train_rows=len(X_train),
        real_train_rows=len(tr),
        features_bytes=int(X_train.nbytes),
        max_memory=args.big_memory,
        peak_rss_before_fit_bytes=rss_before,
        peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    )
    return out


if __name__ == "__main__":
    main()
