"""Quality rows for LoRA (ranks 4 and 16) on EfficientNet-Lite0, with head-only for comparison.

Rows for ``bench/bench_quality.py`` (the shared quality bench, #20): ``ROWS[name](data_dir, seed,
work_dir) -> {"test_acc", "seconds", "trainable_params", "trainable_fraction", ...}``, where
``data_dir`` is an ImageFolder with ``train/ val/ test/``. Every row is ``graft.fit`` with the same
options (bench_quality.py's protocol: 96 px, batch 32, EfficientNet-Lite0, its epochs; the
recipes' default learning rates); only what trains differs:

- ``head-only``: ``recipe="head"`` (the backbone frozen; a linear probe trained by SGD steps)
- ``lora-r4`` / ``lora-r16``: ``recipe="auto"`` with ``peft="lora"`` (head phase, then adapters on
  every dense conv outside the stem + the head; the pretrained weights never change)
- ``auto`` (standalone run only; the shared bench has its own): full fine-tuning by ``auto``.

Standalone (one split, one seed, every row in one process after the other, so ratios compare)::

    nice -n 10 .venv/bin/python bench/quality_rows_lora.py --dataset animals --per-class 60 \\
        --epochs 4 --work /tmp/bench_lora

prints one JSON line per row and a Markdown table with where LoRA lands between head-only (0) and
full fine-tuning (1): ``(acc_lora - acc_head) / (acc_auto - acc_head)``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MODEL = "efficientnet_lite0"
SIZE = 96
BATCH = 32


def protocol() -> dict:
    """bench_quality.py's protocol (image size, epochs, flip, batch, model) when it runs the rows.

    Standalone, the same defaults with ``GRAFT_QUALITY_PROTOCOL`` (JSON) on top.
    """
    try:
        from bench_quality import protocol as shared
    except ImportError:
        raw = os.environ.get("GRAFT_QUALITY_PROTOCOL", "{}")
        return {"image_size": SIZE, "epochs": None, "flip": True, "batch_size": BATCH,
                "model": MODEL, **json.loads(raw)}  # fmt: skip
    return shared()


def _fit_row(data_dir: Path, seed: int, work_dir: Path, name: str, **options: Any) -> dict:
    """One ``graft.fit`` run; the metrics a quality row reports."""
    from graft.train import fit

    p = protocol()
    out = work_dir / f"row_{name}_seed{seed}"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    result = fit(str(data_dir), model=p["model"], image_size=p["image_size"], epochs=p["epochs"],
                 flip=p["flip"], batch_size=p["batch_size"], seed=seed, out=str(out),
                 progress=False, report=False, workers=0, **options)  # fmt: skip
    seconds = time.perf_counter() - started
    m = result.metrics
    keys = ("trainable_params", "total_params", "trainable_fraction", "peak_memory_mb")
    return {"test_acc": m["test_acc"], "seconds": round(seconds, 1), "val_acc": m.get("val_acc"),
            "epochs": m["epochs"], **{k: m[k] for k in keys if k in m}}  # fmt: skip


def head_only(data_dir: Path, seed: int, work_dir: Path) -> dict:
    """The backbone frozen, the head trained (``recipe="head"``)."""
    return _fit_row(data_dir, seed, work_dir, "head", recipe="head")


def lora(rank: int) -> Callable[[Path, int, Path], dict]:
    """``auto`` with LoRA adapters of ``rank`` instead of full fine-tuning."""

    def row(data_dir: Path, seed: int, work_dir: Path) -> dict:
        return _fit_row(data_dir, seed, work_dir, f"lora{rank}", peft="lora", peft_rank=rank)

    row.__doc__ = f"auto, LoRA rank {rank} on the dense convs (pretrained weights frozen)"
    return row


def auto(data_dir: Path, seed: int, work_dir: Path) -> dict:
    """Full fine-tuning by ``auto`` (the reference; bench_quality.py's core rows have their own)."""
    return _fit_row(data_dir, seed, work_dir, "auto", recipe="auto")


ROWS: dict[str, Callable[[Path, int, Path], dict]] = {
    "head-only": head_only,
    "lora-r4": lora(4),
    "lora-r16": lora(16),
}


# ------------------------------------------------------------------------------ standalone run


def make_split(dataset: str, work: Path, per_class: int, seed: int) -> Path:
    """``work/split``: train/ val/ test/ symlinked from the sample (per class: n, n/4, n/2 images)."""
    import random

    from graft.data import sample_dataset

    full = sample_dataset(dataset, work / dataset)
    data = work / f"split_{dataset}_{per_class}_{seed}"
    if (data / ".done").exists():
        return data
    sizes = {"train": per_class, "val": max(2, per_class // 4)}
    for cls in sorted(p.name for p in (full / "train").iterdir() if p.is_dir()):
        files = sorted((full / "train" / cls).iterdir())
        random.Random(f"{seed}-{cls}").shuffle(files)
        chosen = {"train": files[: sizes["train"]],
                  "val": files[sizes["train"] : sizes["train"] + sizes["val"]],
                  "test": sorted((full / "test" / cls).iterdir())[: max(2, per_class // 2)]}  # fmt: skip
        for split, picked in chosen.items():
            dest = data / split / cls
            dest.mkdir(parents=True, exist_ok=True)
            for f in picked:
                (dest / f.name).symlink_to(f.resolve())
    (data / ".done").write_text("ok")
    return data


def table(results: dict[str, dict]) -> str:
    """Markdown rows: accuracy, trainable fraction, time, and LoRA's place between head and auto."""
    head, full = results.get("head-only", {}), results.get("auto", {})
    span = full.get("test_acc", 0) - head.get("test_acc", 0) if head and full else 0
    lines = ["| row | test acc | trainable params | fraction | wall s | between head (0) and auto (1) |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for name, r in results.items():
        place = (
            (r["test_acc"] - head["test_acc"]) / span if span and name.startswith("lora") else None
        )
        lines.append(
            f"| {name} | {r['test_acc']:.3f} | {int(r.get('trainable_params', 0)):,} | "
            f"{100 * r.get('trainable_fraction', 0):.2f}% | {r['seconds']:.0f} | "
            f"{'' if place is None else f'{place:.2f}'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="animals", choices=("animals", "digits"))
    parser.add_argument("--per-class", type=int, default=60, help="training images per class")
    parser.add_argument("--epochs", type=int, default=None, help="total epochs of every row")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", default="head-only,lora-r4,lora-r16,auto")
    parser.add_argument("--work", default="/tmp/bench_lora")
    args = parser.parse_args()
    if args.epochs:
        os.environ["GRAFT_QUALITY_PROTOCOL"] = json.dumps({"epochs": args.epochs})
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    work = Path(args.work)
    data = make_split(args.dataset, work, args.per_class, args.seed)
    rows = {**ROWS, "auto": auto}
    results = {}
    for name in args.rows.split(","):
        results[name] = rows[name](data, args.seed, work)
        print(json.dumps({"row": name, **results[name]}), flush=True)
    print(f"load average: {os.getloadavg()}")
    print(table(results))


if __name__ == "__main__":
    main()
