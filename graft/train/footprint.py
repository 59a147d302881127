"""What a run trains and holds: trainable-parameter count (and fraction) and peak memory.

``trainable_params`` counts every parameter that trains in at least one phase of the plan (for
``auto``: the whole model; for ``head``: the head; with ``--peft``: adapters + head), never the
weights an adapter keeps frozen (``model.graft_frozen_params``). ``total_params`` is the model's
own size (adapters excluded: the merged bundle's size), so the fraction compares with full
fine-tuning directly. Peak memory is the accelerator's
(``torch.cuda.max_memory_allocated``) on a GPU, else the process's peak resident set size.
``fit`` calls :func:`footprint_start` before training and :func:`footprint_end` after it.

Example:
    >>> import timm
    >>> from graft.train.groups import ModelGroups
    >>> from graft.train.recipes import build_plan
    >>> m = timm.create_model("test_efficientnet", num_classes=3)
    >>> g = ModelGroups.of(m)
    >>> plan = build_plan("head", len(g), 100, 32, 2, None, None, 10.0, None, None, 0.5, "auto",
    ...                   0.1, "adamw", g)
    >>> count = trainable_params(m, g, plan)
    >>> count["trainable_params"] == sum(p.numel() for p in m.get_classifier().parameters())
    True
"""

from __future__ import annotations

import resource
import sys
from typing import Any

import torch
from torch import nn

from graft.distributed import is_rank_zero
from graft.train.groups import ModelGroups


def pinned(model: nn.Module) -> frozenset[str]:
    """Parameter names that never train whatever the phase (pretrained weights under adapters)."""
    return frozenset(getattr(model, "graft_frozen_params", ()))


def trainable_params(model: nn.Module, groups: ModelGroups, plan: Any) -> dict[str, float]:
    """``{"trainable_params", "total_params", "trainable_fraction"}`` over every phase of ``plan``."""
    from graft.models.peft_adapt import is_adapter_param

    owner, fixed = groups.group_of(), pinned(model)
    trains = {g for phase in plan for g in phase.trainable}
    params = list(model.named_parameters())
    total = sum(p.numel() for n, p in params if not is_adapter_param(n))
    count = sum(p.numel() for n, p in params if owner.get(n) in trains and n not in fixed)
    return {
        "trainable_params": float(count),
        "total_params": float(total),
        "trainable_fraction": round(count / max(total, 1), 6),
    }


def reset_peak_memory(device: torch.device | str | None = None) -> None:
    """Start measuring the accelerator's peak memory from now (no-op without CUDA)."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device | str | None = None) -> dict[str, float]:
    """``{"peak_memory_mb": ..., "peak_memory_kind": 1.0 (GPU) or 0.0 (CPU resident set)}``."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return {"peak_memory_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1),
                "peak_memory_gpu": 1.0}  # fmt: skip
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    scale = 2**20 if sys.platform == "darwin" else 2**10
    return {"peak_memory_mb": round(rss / scale, 1), "peak_memory_gpu": 0.0}


def describe(counts: dict[str, float], memory: dict[str, float] | None = None) -> str:
    """One line for the log: ``trainable 12,345 of 1,234,567 parameters (1.00%)[, peak ...]``.

    Example:
        >>> describe({"trainable_params": 5.0, "total_params": 100.0, "trainable_fraction": 0.05})
        'trainable 5 of 100 parameters (5.00%)'
    """
    text = (
        f"trainable {int(counts['trainable_params']):,} of {int(counts['total_params']):,} "
        f"parameters ({100 * counts['trainable_fraction']:.2f}%)"
    )
    if memory:
        where = "GPU allocated" if memory.get("peak_memory_gpu") else "process resident"
        text += f", peak memory {memory['peak_memory_mb']:,.0f} MB ({where})"
    return text


def footprint_start(cfg: Any, parts: Any) -> dict[str, float]:
    """Count what will train, print it (rank 0, with progress on) and start the peak-memory meter.

    ``parts`` is the run's :class:`graft.train.parts.FitParts`.

    Example:
        >>> counts = footprint_start(cfg, parts)  # doctest: +SKIP
    """
    counts = trainable_params(parts.model, parts.groups, parts.plan)
    reset_peak_memory()
    _say(cfg, describe(counts))
    return counts


def footprint_end(cfg: Any, parts: Any, counts: dict[str, float]) -> dict[str, float]:
    """``counts`` + peak memory (+ the adapters' size with ``--peft``), printed and returned.

    Example:
        >>> metrics.update(footprint_end(cfg, parts, counts))  # doctest: +SKIP
    """
    memory = peak_memory_mb()
    _say(cfg, describe(counts, memory))
    info = getattr(parts.model, "graft_peft", None)
    extra = {"peft_adapter_params": float(info.adapter_params)} if info is not None else {}
    return {**counts, **memory, **extra}


def _say(cfg: Any, text: str) -> None:
    """Print ``text`` with the progress lines (rank 0, with progress on)."""
    if cfg.progress and is_rank_zero():
        from graft.train.plan import say

        say(text)
