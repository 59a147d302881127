"""Bench: does distillation help a small student? No KD vs logit KD vs feature + logit KD.

On the animals sample (real 28x28 silhouettes, 10 classes), in one run:

1. Teacher: ``efficientnet_lite2`` (shipped ImageNet weights) fine-tuned briefly with ``graft fit``
   at ``--teacher-size`` px.
2. Students, all ``--student`` (default ``tv:mobilenet_v2``, shipped torchvision weights) with the
   same data, seed, recipe, epochs and image size (``--image-size``):
   - no KD: ``graft fit``;
   - logit KD: ``graft distill`` with ``alpha`` (``--alpha``, default 1), ``beta=0``;
   - feature + logit KD: ``graft distill`` with ``alpha``, ``beta`` and ``--feature-loss`` on the
     ``forward_features`` maps of both (``feature_pairs="auto"``; a 1x1 conv adapter maps channels
     and the student's grid is interpolated to the teacher's).
   By default inputs are not randomly augmented (``--augment none``, no flip) so the teacher's outputs
   are computed once and cached; every student sees the identical sequence of batches. With
   ``--augment light``/``standard`` (plus flip) the teacher runs on every augmented view.
3. Test accuracy of each student and of the teacher, parameters, and batch-1 CPU latency of student
   against teacher (median, each at its own input size), plus wall time per run.

Target of the issue: a KD student at least 1 point above the no-KD student at equal epochs.

Run:  .venv/bin/python bench/bench_distill.py --per-class 250 --train-per-class 60 --epochs 3 --out bench-out/distill
Seed spread of the students (48 px, 2 epochs, light augmentation; finished runs reused):
      .venv/bin/python bench/bench_distill.py --runs "" --epochs 2 --image-size 48 --augment light --train-seeds 1,2,3
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

TEACHER = "efficientnet_lite2"
RUNS = ("teacher", "no_kd", "logit_kd", "feature_logit_kd")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--per-class",
        type=int,
        default=250,
        help="images per class in the sample (80%% train, 20%% test)",
    )
    p.add_argument(
        "--train-per-class",
        type=int,
        default=60,
        help="training images kept per class (test stays whole)",
    )
    p.add_argument(
        "--student",
        default="tv:mobilenet_v2",
        help="student model (tv:mobilenet_v2 or efficientnet_lite0)",
    )
    p.add_argument(
        "--student-weights",
        default="pretrained",
        help="student initialisation: pretrained (shipped weights) or none (random init, from scratch)",
    )
    p.add_argument("--image-size", type=int, default=64, help="student input size")
    p.add_argument("--teacher-size", type=int, default=96, help="teacher input size")
    p.add_argument("--epochs", type=int, default=3, help="student epochs (same for every student)")
    p.add_argument(
        "--teacher-epochs", type=int, default=4, help="teacher fine-tuning epochs (recipe auto)"
    )
    p.add_argument("--recipe", default="full", help="student recipe (same for every student)")
    p.add_argument(
        "--augment",
        default="none",
        choices=("none", "light", "standard"),
        help="student augmentation (none: the teacher's outputs are cached; else computed per view)",
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--temperature", type=float, default=4.0)
    p.add_argument("--alpha", type=float, default=1.0, help="logit KD weight of both KD runs")
    p.add_argument(
        "--beta", type=float, default=1.0, help="feature loss weight of the feature + logit run"
    )
    p.add_argument("--feature-loss", default="cosine", choices=("mse", "cosine", "at"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--train-seeds",
        default="",
        help="extra training seeds for the students of --runs (all three when --runs names none), e.g. "
        "1,2,3: same teacher, fixed train/val/test split; only data order, augmentation draws and init "
        "change; mean/std in seeds.json",
    )
    p.add_argument("--out", default="bench-out/distill")
    p.add_argument(
        "--runs",
        default=",".join(RUNS),
        help="which runs (comma-separated); finished ones in --out are reused",
    )
    return p.parse_args()


def main() -> None:
    args = parse_args()
    logging.getLogger("lightning").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    from graft.data import sample_dataset

    out = Path(args.out)
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    unknown = sorted(set(runs) - set(RUNS))
    if unknown:
        raise SystemExit(f"unknown runs {unknown}; choose from {', '.join(RUNS)}")
    for name in runs:
        shutil.rmtree(out / name, ignore_errors=True)
    full = sample_dataset("animals", out / "animals", seed=args.seed, per_class=args.per_class)
    subset = out / "animals-subset"
    data = str(
        subset
        if (subset / "test").is_dir() and "teacher" not in runs
        else _trim_train(full, subset, args.train_per_class)
    )
    for name in runs:
        started = time.perf_counter()
        metrics, report = _run_one(name, args, data, out)
        row = _row(metrics, time.perf_counter() - started)
        (out / name / "bench_row.json").write_text(
            json.dumps({"row": row, "report": report}, indent=2)
        )
        _show(name, row, report)
    rows = {n: row for n in RUNS if (row := _load_row(out / n)) is not None}
    if set(rows) == set(RUNS):
        summary = _summary(args, rows)
        (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(_table(summary))
    if args.train_seeds:
        students = [r for r in runs if r != "teacher"] or list(RUNS[1:])
        _seed_study(args, Path(data), out, [int(v) for v in args.train_seeds.split(",")], students)


def _run_one(
    name: str, args: argparse.Namespace, data: str, out: Path, teacher: Path | None = None
) -> tuple[dict[str, float], dict | None]:
    """Train one of the bench's models; return its metrics (and the distill report)."""
    from graft.distill import distill
    from graft.train import fit

    common: dict[str, Any] = {
        "seed": args.seed,
        "batch_size": args.batch_size,
        "workers": 1,
        "progress": False,
    }
    if name == "teacher":
        r = fit(data, model=TEACHER, recipe="auto", epochs=args.teacher_epochs, head_epochs=min(2, args.teacher_epochs),
                image_size=args.teacher_size, out=str(out / "teacher"), **common)  # fmt: skip
        return r.metrics, None
    student: dict[str, Any] = {
        **common, "recipe": args.recipe, "epochs": args.epochs, "image_size": args.image_size,
        "augment": args.augment, "flip": args.augment != "none", "out": str(out / name),
        "weights": args.student_weights, "report": False,
    }  # fmt: skip
    if name == "no_kd":
        return fit(data, model=args.student, **student).metrics, None
    options = {"alpha": args.alpha, "beta": 0.0, "feature_pairs": "none"}
    if name == "feature_logit_kd":
        options = {
            "alpha": args.alpha,
            "beta": args.beta,
            "feature_pairs": "auto",
            "feature_loss": args.feature_loss,
        }
    teacher = teacher or out / "teacher" / "bundle"
    r = distill(
        data,
        teacher=str(teacher),
        student=args.student,
        temperature=args.temperature,
        **options,
        **student,
    )
    return r.metrics, {"line": r.report, "teacher": vars(r.teacher), "student": vars(r.student)}


def _seed_study(
    args: argparse.Namespace, data: Path, out: Path, seeds: list[int], students: list[str]
) -> None:
    """``students`` again under other training seeds, on the split the teacher was trained with."""
    import statistics

    from graft.data import scan_dataset

    fixed = out / "seeds" / "data"
    if not (fixed / "val").is_dir():  # seed ``args.seed``'s split as train/ val/ test/ folders
        splits = scan_dataset(str(data), val_split=0.1, seed=args.seed)
        for part, rows in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
            for path, label in rows:
                link = fixed / part / splits.classes[label] / Path(path).name
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(Path(path).resolve())
    table: dict[str, dict[str, list[float]]] = {}
    for seed in seeds:
        for name in students:
            run_out = out / "seeds" / str(seed)
            shutil.rmtree(run_out / name, ignore_errors=True)
            seeded = argparse.Namespace(**{**vars(args), "seed": seed})
            metrics, _ = _run_one(name, seeded, str(fixed), run_out, out / "teacher" / "bundle")
            for key in ("val_acc", "test_acc"):
                table.setdefault(name, {}).setdefault(key, []).append(metrics[key])
            print(f"seed {seed} {name}: test_acc={metrics['test_acc']}", flush=True)
    summary = {
        name: {k: {"values": v, "mean": round(statistics.mean(v), 4),
                   "std": round(statistics.stdev(v), 4) if len(v) > 1 else 0.0} for k, v in cols.items()}
        for name, cols in table.items()
    }  # fmt: skip
    (out / "seeds.json").write_text(
        json.dumps({"seeds": seeds, "results": summary}, indent=2) + "\n"
    )
    for name, cols in summary.items():
        t = cols["test_acc"]
        print(f"{name}: test {t['mean']:.4f} +- {t['std']:.4f} over seeds {seeds}")


def _trim_train(root: Path, dest: Path, per_class: int) -> Path:
    """A copy of ``root`` with only ``per_class`` training images per class (first by name) and all test images."""
    shutil.rmtree(dest, ignore_errors=True)
    for split in ("train", "test"):
        for folder in sorted((root / split).iterdir()):
            if not folder.is_dir():
                continue
            files = sorted(folder.iterdir())
            keep = files[:per_class] if split == "train" else files
            (dest / split / folder.name).mkdir(parents=True, exist_ok=True)
            for f in keep:
                shutil.copy2(f, dest / split / folder.name / f.name)
    return dest


def _load_row(run: Path) -> dict[str, Any] | None:
    """A finished run's row: ``bench_row.json``, else rebuilt from the run folder's ``metrics.json``."""
    if (run / "bench_row.json").is_file():
        return json.loads((run / "bench_row.json").read_text())
    if (run / "metrics.json").is_file():
        metrics = json.loads((run / "metrics.json").read_text())["metrics"]
        return {"row": _row(metrics, metrics.get("fit_seconds", float("nan"))), "report": None}
    return None


def _row(metrics: dict[str, float], seconds: float) -> dict[str, Any]:
    keep = ("test_acc", "val_acc", "teacher_acc", "teacher_params", "student_params", "teacher_latency_ms",
            "student_latency_ms", "teacher_cache_hits", "teacher_cache_misses", "fit_seconds")  # fmt: skip
    row = {k: metrics[k] for k in keep if k in metrics}
    row["wall_seconds"] = round(seconds, 1)
    return row


def _show(name: str, row: dict[str, Any], report: dict | None) -> None:
    print(f"{name}: test_acc={row.get('test_acc')} wall={row['wall_seconds']} s", flush=True)
    if report:
        print("  report:", report["line"], flush=True)


def _summary(args: argparse.Namespace, rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    results = {k: v["row"] for k, v in rows.items()}
    report = rows["feature_logit_kd"]["report"]
    base = results["no_kd"]["test_acc"]
    gains = {
        k: round(100 * (results[k]["test_acc"] - base), 2) for k in ("logit_kd", "feature_logit_kd")
    }
    t, s = report["teacher"], report["student"]
    return {
        "settings": vars(args),
        "results": results,
        "kd_gain_points": gains,
        "target_met": max(gains.values()) >= 1.0,
        "teacher": t,
        "student": s,
        "speedup_student_vs_teacher": round(t["latency_ms"] / s["latency_ms"], 2),
    }


def _table(summary: dict[str, Any]) -> str:
    r = summary["results"]
    t, s = summary["teacher"], summary["student"]
    size = summary["settings"]["teacher_size"]
    lines = [
        "| run | val acc | test acc | wall s |",
        "|---|---|---|---|",
        f"| teacher {TEACHER} ({size} px) | {r['teacher'].get('val_acc', float('nan')):.4f} | "
        f"{r['teacher']['test_acc']:.4f} | {r['teacher']['wall_seconds']} |",
    ]
    for name in ("no_kd", "logit_kd", "feature_logit_kd"):
        lines.append(
            f"| student {name} | {r[name].get('val_acc', float('nan')):.4f} | "
            f"{r[name]['test_acc']:.4f} | {r[name]['wall_seconds']} |"
        )
    lines.append("")
    lines.append(
        f"KD gain over no KD (points): {summary['kd_gain_points']}; target (>= 1 point) met: {summary['target_met']}"
    )
    lines.append(
        f"teacher {t['params'] / 1e6:.2f}M params, {t['latency_ms']:.1f} ms | student {s['params'] / 1e6:.2f}M params, "
        f"{s['latency_ms']:.1f} ms | student {summary['speedup_student_vs_teacher']}x faster (batch 1, CPU)"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
