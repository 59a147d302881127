"""Bench: epoch time with and without the frozen-prefix cache, for ``head`` and ``freeze-upto K``.

On the animals sample (real 28x28 silhouettes, 10 classes) with ``efficientnet_lite0`` (shipped
weights), no random augmentation, the same shuffled batches in the same order for both paths:

- uncached: ``model(x)`` every step (frozen groups run forward each epoch, BatchNorm frozen);
- cached: :func:`graft.features.prefix_cache.split_frozen_prefix` +
  :func:`~graft.features.prefix_cache.cache_prefix_outputs` once, then only ``suffix(h)`` per step.

Two settings: ``head`` (every group but the head frozen) and ``freeze-upto K`` with K = half the
groups. Reported: mean epoch time of each path (the cached one also with its one-time cache build),
the speed-up, and test accuracy of each. Targets of the issue: >= 5x for head over 5 epochs,
>= 2x for half frozen, same accuracy.

This bench drives the model with a minimal PyTorch loop (AdamW, cross-entropy) rather than
``graft fit``: the trainer caches pooled features for head-only phases itself, and wiring the prefix
cache into ``graft fit --cache-frozen`` for freeze-upto is the trainer's side (see docs/benchmarks/features.md).

Run:  .venv/bin/python bench/bench_cache.py --per-class 40 --epochs 5 --image-size 64
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--per-class", type=int, default=40)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--data", default="bench-out/cache/animals")
    p.add_argument("--out", default="bench-out/cache")
    return p.parse_args()


def load_tensors(args, model):
    """Decoded, eval-transformed train and test tensors (decoding is outside every timing)."""
    from graft.data import (
        build_transforms,
        load_image,
        resolve_data_config,
        sample_dataset,
        scan_dataset,
    )

    root = sample_dataset("animals", args.data, per_class=args.per_class)
    splits = scan_dataset(root, verify=False)
    cfg = resolve_data_config(model.pretrained_cfg, args.image_size)
    t = build_transforms(cfg, train=False)

    def stack(samples):
        x = torch.stack([t(load_image(p, "RGB")) for p, _ in samples])
        return torch.utils.data.TensorDataset(x, torch.tensor([y for _, y in samples]))

    return stack(splits.train), stack(splits.test), len(splits.classes)


def make_model(args, num_classes: int, upto: int):
    import graft.models as gm

    torch.manual_seed(0)
    model = gm.create_model(args.model, num_classes=num_classes)
    gm.freeze(model, upto=upto, bn="frozen")
    return model


def train(forward, params, loader, epochs: int, lr: float) -> list[float]:
    opt = torch.optim.AdamW(params, lr=lr)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for x, y in loader:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(forward(x), y).backward()
            opt.step()
        times.append(time.perf_counter() - start)
    return times


@torch.no_grad()
def accuracy(model, test) -> float:
    model.eval()
    x, y = test.tensors
    pred = torch.cat([model(b).argmax(1) for b in x.split(128)])
    return float((pred == y).float().mean())


def shuffled(dataset, batch_size: int) -> DataLoader:
    """Shuffled batches in the same order for both paths (the cache is index-aligned with the data).

    The sample is sorted by class: unshuffled batches hold one class each, which wrecks training
    with BatchNorm layers in train mode (freeze-upto) and proves nothing about the cache.
    """
    generator = torch.Generator().manual_seed(0)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator)


def run_setting(args, name: str, upto: int, train_set, test_set, num_classes: int) -> dict:
    from graft.features.prefix_cache import cache_prefix_outputs, split_frozen_prefix

    loader = shuffled(train_set, args.batch_size)
    plain = make_model(args, num_classes, upto)
    plain.train()
    plain_times = train(
        plain, [p for p in plain.parameters() if p.requires_grad], loader, args.epochs, args.lr
    )
    plain_acc = accuracy(plain, test_set)

    cached = make_model(args, num_classes, upto)
    start = time.perf_counter()
    split = split_frozen_prefix(cached)
    if split is None:
        raise SystemExit(f"{args.model}: no cacheable prefix for {name}")
    cache = cache_prefix_outputs(split.prefix, DataLoader(train_set, batch_size=64))
    build = time.perf_counter() - start
    cached.train()
    cached_loader = shuffled(cache, args.batch_size)
    params = [p for p in cached.parameters() if p.requires_grad]
    cached_times = train(split.suffix, params, cached_loader, args.epochs, args.lr)
    cached_acc = accuracy(cached, test_set)
    mean_plain = sum(plain_times) / len(plain_times)
    mean_cached = sum(cached_times) / len(cached_times)
    row = {
        "setting": name,
        "frozen_groups": upto,
        "prefix_end": split.names[-1],
        "epoch_s_uncached": mean_plain,
        "epoch_s_cached": mean_cached,
        "cache_build_s": build,
        "speedup_per_epoch": mean_plain / mean_cached,
        "speedup_total": sum(plain_times) / (sum(cached_times) + build),
        "test_acc_uncached": plain_acc,
        "test_acc_cached": cached_acc,
        "cache_mb": cache.nbytes / 2**20,
    }
    print(
        f"{name:<14} uncached {mean_plain:6.2f} s/epoch, cached {mean_cached:6.2f} s/epoch "
        f"(+{build:.1f} s once): {row['speedup_per_epoch']:.1f}x per epoch, "
        f"{row['speedup_total']:.1f}x over {args.epochs} epochs; "
        f"test acc {plain_acc:.3f} vs {cached_acc:.3f}",
        flush=True,
    )
    return row


def main() -> None:
    args = parse_args()
    from graft.models import param_groups
    from graft.runtime import tune_allocator

    tune_allocator()
    probe = make_model(args, 10, 0)
    groups = len(param_groups(probe))
    train_set, test_set, num_classes = load_tensors(args, probe)
    print(
        f"{args.model} {args.image_size}px, {len(train_set)} train / {len(test_set)} test, {groups} groups"
    )
    rows = [
        run_setting(args, "head", groups - 1, train_set, test_set, num_classes),
        run_setting(
            args, f"freeze-upto {groups // 2}", groups // 2, train_set, test_set, num_classes
        ),
    ]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    summary = {"args": vars(args), "rows": rows, "load_average": os.getloadavg()}
    (Path(args.out) / "bench_cache.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
