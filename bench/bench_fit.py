"""Benchmark: graft's ``auto`` recipe vs a hand-written PyTorch loop vs a linear probe.

Same data (animals sample, 2,000 training / 1,000 test images, 200 / 100 per class), same backbone
(EfficientNet-Lite0 with the shipped ImageNet weights), same resolution (96 px), same batch size.
Each method runs in its own process, one after the other; the cores may be shared with other work,
so compare ratios measured in one run.

- ``auto``: ``graft.fit(recipe="auto", val_split=0)`` (all 2,000 images train, as for the others).
- ``loop``: the issue's loop, as a user would write it: head 1 epoch, then full fine-tuning
  3 epochs, AdamW + cosine, lr 1e-3 head / 1e-4 backbone, timm's default head init replaced by
  nothing (plain ``reset_classifier``), BatchNorm in train mode, light augmentation.
- ``probe``: scikit-learn logistic regression on pooled features of the frozen backbone.

Run: ``.venv/bin/python bench/bench_fit.py [--methods auto,loop,probe] [--work /tmp/bench_fit]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SIZE = 96
BATCH = 32
TRAIN_PER_CLASS, TEST_PER_CLASS = 200, 100


def prepare(work: Path) -> Path:
    """animals sample -> work/data with train/ (200 per class) and test/ (100 per class), symlinked."""
    from graft.data import sample_dataset

    full = sample_dataset("animals", work / "animals")
    data = work / "data"
    if (data / ".done").exists():
        return data
    for split, per in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        for cls in sorted(p.name for p in (full / split).iterdir() if p.is_dir()):
            dest = data / split / cls
            dest.mkdir(parents=True, exist_ok=True)
            for f in sorted((full / split / cls).iterdir())[:per]:
                link = dest / f.name
                if not link.exists():
                    link.symlink_to(f.resolve())
    (data / ".done").write_text("ok")
    return data


# ------------------------------------------------------------------------------------ methods


def run_auto(data: Path, work: Path, extra: dict) -> dict:
    import shutil

    from graft.train import fit

    out = work / "run_auto"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    result = fit(data, model="efficientnet_lite0", image_size=SIZE, batch_size=BATCH, val_split=0.0,
                 out=str(out), progress=False, **extra)  # fmt: skip
    wall = time.perf_counter() - started
    full_epochs = [h for h in result.history if h["phase"] == "full"]
    return {
        "test_acc": result.metrics["test_acc"],
        "wall_s": wall,
        "train_s": result.metrics["fit_seconds"],
        "epochs": len(result.history),
        "full_phase_images_per_s": _full_rate(out, result),
        "val_split": 0.0,
        "n_full_epochs": len(full_epochs),
    }


def _full_rate(out: Path, result) -> float | None:
    rates = [
        h["train_images_per_s"]
        for h in result.history
        if h["phase"] == "full" and "train_images_per_s" in h
    ]
    return sum(rates) / len(rates) if rates else None


def run_loop(data: Path, work: Path, extra: dict) -> dict:
    import torch
    from torch.utils.data import DataLoader
    from torchvision.datasets import ImageFolder

    from graft.data import build_transforms, resolve_data_config
    from graft.models import create_model

    started = time.perf_counter()
    torch.manual_seed(0)
    model = create_model("efficientnet_lite0", num_classes=None, pretrained=True)
    model.reset_classifier(10)  # as a user would: timm's default init for the new head
    cfg = resolve_data_config(model, image_size=SIZE)
    train_tf = build_transforms(cfg, train=True, augment="light")
    test_tf = build_transforms(cfg, train=False)
    train = DataLoader(
        ImageFolder(data / "train", train_tf),
        batch_size=BATCH,
        shuffle=True,
        num_workers=1,
        persistent_workers=True,
    )
    test = DataLoader(ImageFolder(data / "test", test_tf), batch_size=64, num_workers=1)
    loss_fn = torch.nn.CrossEntropyLoss()
    head = list(model.get_classifier().parameters())
    head_ids = {id(p) for p in head}
    body = [p for p in model.parameters() if id(p) not in head_ids]
    train_seconds, images = 0.0, 0
    full_rates: list[float] = []

    def epochs(n: int, opt: torch.optim.Optimizer, record: bool = False) -> None:
        nonlocal train_seconds, images
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=n * len(train))
        for _ in range(n):
            t = time.perf_counter()
            seen = 0
            model.train()
            for x, y in train:
                opt.zero_grad()
                loss_fn(model(x), y).backward()
                opt.step()
                sched.step()
                images += len(y)
                seen += len(y)
            train_seconds += time.perf_counter() - t
            if record:
                full_rates.append(seen / (time.perf_counter() - t))

    for p in body:
        p.requires_grad_(False)
    epochs(1, torch.optim.AdamW(head, lr=1e-3))
    for p in body:
        p.requires_grad_(True)
    epochs(
        3,
        torch.optim.AdamW([{"params": head, "lr": 1e-3}, {"params": body, "lr": 1e-4}]),
        record=True,
    )
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in test:
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    wall = time.perf_counter() - started
    return {"test_acc": correct / total, "wall_s": wall, "train_s": train_seconds,
            "train_images_per_s": images / train_seconds, "epochs": 4,
            "full_phase_images_per_s": sum(full_rates) / len(full_rates)}  # fmt: skip


def run_probe(data: Path, work: Path, extra: dict) -> dict:
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from torch.utils.data import DataLoader
    from torchvision.datasets import ImageFolder

    from graft.data import build_transforms, resolve_data_config
    from graft.models import create_model

    started = time.perf_counter()
    model = create_model("efficientnet_lite0", num_classes=0, pretrained=True).eval()
    cfg = resolve_data_config(model, image_size=SIZE)
    tf = build_transforms(cfg, train=False)

    def features(split: str):
        loader = DataLoader(ImageFolder(data / split, tf), batch_size=64, num_workers=1)
        xs, ys = [], []
        with torch.no_grad():
            for x, y in loader:
                xs.append(model(x).numpy())
                ys.append(y.numpy())
        return np.concatenate(xs), np.concatenate(ys)

    xtr, ytr = features("train")
    xte, yte = features("test")
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1)).fit(xtr, ytr)
    return {"test_acc": float(clf.score(xte, yte)), "wall_s": time.perf_counter() - started}


METHODS = {"auto": run_auto, "loop": run_loop, "probe": run_probe}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--methods", default="auto,loop,probe")
    parser.add_argument("--work", default="/tmp/bench_fit")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--extra", default="{}", help="JSON options passed to graft.fit (auto)")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads per method (0: torch default)"
    )
    args = parser.parse_args()
    work = Path(args.work)
    data = prepare(work)
    if args.one:  # child process: run one method, print its JSON result
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        print("RESULT " + json.dumps(METHODS[args.one](data, work, json.loads(args.extra))))
        return
    results = {}
    for name in args.methods.split(","):
        proc = subprocess.run([sys.executable, __file__, "--one", name, "--work", str(work), "--extra", args.extra, "--threads", str(args.threads)],
                              capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})  # fmt: skip
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if not line:
            print(proc.stdout[-2000:], proc.stderr[-4000:])
            continue
        results[name] = json.loads(line[-1][7:])
        print(name, json.dumps(results[name]), flush=True)
    _report(results)


def _report(results: dict) -> None:
    print(f"\n{'method':8s} {'test acc':>9s} {'wall s':>8s}")
    for name, r in results.items():
        print(f"{name:8s} {r['test_acc']:9.4f} {r['wall_s']:8.1f}")
    if "auto" in results and "loop" in results:
        a, b = results["auto"], results["loop"]
        print(f"auto wall time / loop wall time: {a['wall_s'] / b['wall_s']:.2f}")
        if a.get("full_phase_images_per_s") and b.get("full_phase_images_per_s"):
            ratio = a["full_phase_images_per_s"] / b["full_phase_images_per_s"]
            print(f"training images/s in the full fine-tuning phase, auto / loop: {ratio:.2f}")


if __name__ == "__main__":
    main()
