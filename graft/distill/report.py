"""The distillation report: accuracy, parameters and CPU latency of teacher and student.

Example:
    >>> import timm
    >>> count_params(timm.create_model("test_resnet"))
    372979
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class ModelStats:
    """One side of the report."""

    name: str
    params: int
    latency_ms: float  # median forward time, batch 1, CPU
    accuracy: float | None = None


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def cpu_latency_ms(
    model: nn.Module,
    input_size: Sequence[int],
    repeats: int = 20,
    warmup: int = 3,
    threads: int | None = None,
) -> float:
    """Median wall time of one forward pass at batch 1 on the CPU, in milliseconds.

    Runs a copy-free pass on the model's current device when it is the CPU; ``threads`` caps
    ``torch`` intra-op threads for the measurement.

    Example:
        >>> import timm
        >>> cpu_latency_ms(timm.create_model("test_resnet"), (3, 32, 32), repeats=3) > 0
        True
    """
    x = torch.randn(1, *[int(v) for v in input_size])
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    was_training = model.training
    model.eval()
    try:
        times = []
        with torch.inference_mode():
            for i in range(warmup + repeats):
                start = time.perf_counter()
                model(x)
                if i >= warmup:
                    times.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
        torch.set_num_threads(previous)
    times.sort()
    return 1000.0 * times[len(times) // 2]


def accuracy(model: nn.Module, batches: Iterable, transform=None) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)`` batches (``transform`` maps each ``x`` first)."""
    correct = total = 0
    model.eval()
    with torch.inference_mode():
        for batch in batches:
            if batch is None:
                continue
            x, y = batch
            x = transform(x) if transform is not None else x
            correct += int((model(x).argmax(-1) == y).sum())
            total += len(y)
    return correct / max(total, 1)


def report_line(teacher: ModelStats, student: ModelStats) -> str:
    """One line: teacher vs student accuracy, parameters and latency, with the ratios.

    Example:
        >>> report_line(ModelStats("t", 2_000_000, 10.0, 0.9), ModelStats("s", 500_000, 2.5, 0.88))
        'teacher t: acc 0.900, 2.00M params, 10.0 ms | student s: acc 0.880, 0.50M params, 2.5 ms | student/teacher: 0.25x params, 4.0x faster'
    """

    def side(role: str, s: ModelStats) -> str:
        acc = f"acc {s.accuracy:.3f}" if s.accuracy is not None else "acc n/a"
        return f"{role} {s.name}: {acc}, {s.params / 1e6:.2f}M params, {s.latency_ms:.1f} ms"

    ratio = student.params / max(teacher.params, 1)
    speed = teacher.latency_ms / max(student.latency_ms, 1e-9)
    return f"{side('teacher', teacher)} | {side('student', student)} | student/teacher: {ratio:.2f}x params, {speed:.1f}x faster"
