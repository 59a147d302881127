"""What a backbone costs on this machine: parameters, MACs, latency, throughput and peak memory.

- **Parameters**: ``sum(p.numel())`` over the model's parameters.
- **MACs**: multiply-accumulates of one forward pass on one image, counted by
  :class:`torch.utils.flop_counter.FlopCounterMode` (which counts 2 FLOPs per MAC), so MACs = FLOPs / 2.
- **Latency** (batch 1) and **throughput** (batch N): ``warmup`` untimed forward passes, then the median
  of ``repeats`` timed ones under ``torch.inference_mode()`` (CUDA: synchronised before and after).
  The spread (25th-75th percentile) is reported alongside so a noisy machine shows as such.
- **Peak memory** of one forward pass at batch N, weights included. CUDA: ``torch.cuda.max_memory_allocated``
  after a reset, minus what was allocated before the model was built. CPU: ``tracemalloc`` cannot see
  torch's allocations, so a fresh Python process rebuilds the model from ``model.graft_spec``, resets the
  kernel's resident-set high-water mark (``/proc/self/clear_refs``) and reports ``VmHWM`` after the
  pass minus ``VmRSS`` before the model was built. Where that is impossible (no ``graft_spec``, not
  Linux) the same measurement runs in this process and includes nothing but the forward pass plus the
  parameter bytes; the ``memory_method`` field says which was used.

Example:
    >>> import timm
    >>> m = timm.create_model("test_resnet", pretrained=False, num_classes=0)
    >>> c = measure_cost(m, (3, 32, 32), batch=4, repeats=3, memory=False)
    >>> c.params == sum(p.numel() for p in m.parameters()) and c.latency_ms > 0
    True
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from graft.errors import ConfigError
from graft.log import get_logger

log = get_logger("graft.select")

DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Timing:
    """Median and quartiles of repeated timings, in milliseconds."""

    median_ms: float
    p25_ms: float
    p75_ms: float
    repeats: int

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median (0 = perfectly repeatable)."""
        return (self.p75_ms - self.p25_ms) / self.median_ms if self.median_ms > 0 else 0.0


@dataclass(frozen=True)
class Cost:
    """A backbone's cost on one device at one input size."""

    params: int
    macs: int
    latency_ms: float
    latency_spread: float
    throughput: float
    batch: int
    peak_mem_mb: float | None
    memory_method: str
    device: str
    input_size: tuple[int, int, int]
    threads: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        return d


def check_device(device: str) -> str:
    """Validate ``device`` ("cpu" or "cuda"); "cuda" must be available."""
    if device not in DEVICES:
        raise ConfigError(f"unknown device '{device}'. Valid: cpu, cuda.")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device 'cuda' was requested but torch sees no CUDA GPU here; use --device cpu."
        )
    return device


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: tuple[int, int, int], device: str = "cpu") -> int:
    """Multiply-accumulates of one forward pass on one image of ``input_size`` (C, H, W)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, *input_size, device=device)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(x)
    return int(counter.get_total_flops() // 2)


def time_forward(
    model: nn.Module,
    input_size: tuple[int, int, int],
    batch: int = 1,
    device: str = "cpu",
    warmup: int = 3,
    repeats: int = 10,
) -> Timing:
    """Median wall time of ``model(x)`` for a batch of ``batch`` images, after ``warmup`` passes."""
    if repeats < 1 or warmup < 0 or batch < 1:
        raise ConfigError(
            f"need repeats >= 1, warmup >= 0, batch >= 1; got {repeats}, {warmup}, {batch}."
        )
    x = torch.randn(batch, *input_size, device=device)
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            _sync(device)
            start = time.perf_counter()
            model(x)
            _sync(device)
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1000.0)
    p25, med, p75 = np.percentile(times, [25, 50, 75])
    return Timing(float(med), float(p25), float(p75), repeats)


def measure_cost(
    model: nn.Module,
    input_size: tuple[int, int, int],
    device: str = "cpu",
    batch: int = 16,
    warmup: int = 3,
    repeats: int = 10,
    memory: bool = True,
) -> Cost:
    """Parameters, MACs, batch-1 latency, batch-``batch`` throughput and peak memory of ``model``.

    The model is put in eval mode on ``device``. See the module docstring for each method.

    Example:
        >>> import timm
        >>> m = timm.create_model("test_efficientnet", pretrained=False)
        >>> measure_cost(m, (3, 32, 32), batch=2, repeats=2, memory=False).macs > 0
        True
    """
    device = check_device(device)
    input_size = tuple(int(v) for v in input_size)
    model = model.eval().to(device)
    latency = time_forward(model, input_size, 1, device, warmup, repeats)
    batch_time = time_forward(model, input_size, batch, device, max(1, warmup // 2), repeats)
    peak, method = peak_memory_mb(model, input_size, batch, device) if memory else (None, "off")
    return Cost(
        params=count_params(model),
        macs=count_macs(model, input_size, device),
        latency_ms=latency.median_ms,
        latency_spread=latency.spread,
        throughput=batch * 1000.0 / batch_time.median_ms,
        batch=batch,
        peak_mem_mb=peak,
        memory_method=method,
        device=device,
        input_size=input_size,
        threads=torch.get_num_threads(),
    )


def peak_memory_mb(
    model: nn.Module, input_size: tuple[int, int, int], batch: int, device: str = "cpu"
) -> tuple[float | None, str]:
    """Peak memory (MiB) of one forward pass at ``batch``, weights included, and the method used."""
    return start_peak_memory(model, input_size, batch, device).result()


class PeakMemoryJob:
    """A peak-memory measurement that may run in a fresh process while this one does other work.

    Start it with :func:`start_peak_memory` *after* timing (a second process would disturb the
    clock), do other work (feature extraction), then call :meth:`result`.
    """

    def __init__(self, model: nn.Module, input_size: tuple[int, int, int], batch: int, device: str):
        self.model, self.input_size, self.batch, self.device = model, input_size, batch, device
        self.proc: subprocess.Popen | None = None
        spec = getattr(model, "graft_spec", None)
        if device == "cpu" and spec and _linux():
            payload = json.dumps({"spec": spec, "input_size": list(input_size), "batch": batch})
            env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
            cmd = [sys.executable, "-m", "graft.select._memprobe", payload]
            try:
                self.proc = subprocess.Popen(
                    cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
                )
            except OSError as e:
                log.info("could not start the memory probe (%s); measuring in this process", e)

    def result(self, timeout: float = 600) -> tuple[float | None, str]:
        """(peak MiB, method); waits for the fresh process if one was started."""
        if self.device == "cuda":
            return _cuda_peak(self.model, self.input_size, self.batch), "cuda max_memory_allocated"
        if self.proc is not None:
            try:
                out, err = self.proc.communicate(timeout=timeout)
                if self.proc.returncode == 0:
                    return float(
                        json.loads(out.strip().splitlines()[-1])["peak_mb"]
                    ), "fresh process VmHWM - VmRSS"
                log.info(
                    "memory probe failed (%s); measuring in this process",
                    (err or "").strip()[-300:],
                )
            except (subprocess.TimeoutExpired, ValueError, KeyError, IndexError) as e:
                self.proc.kill()
                log.info("memory probe failed (%s); measuring in this process", e)
        if _linux():
            return _inprocess_peak(
                self.model, self.input_size, self.batch
            ), "this process VmHWM delta + weights"
        return None, "unavailable (needs Linux /proc or CUDA)"


def quick_peak_memory(
    model: nn.Module, input_size: tuple[int, int, int], batch: int, device: str = "cpu"
) -> tuple[float | None, str]:
    """Peak memory (MiB) of one batch forward measured in this process: cheap, less isolated.

    CPU: the resident-set high-water mark (reset through ``/proc/self/clear_refs``) over one pass,
    plus the weights; memory this process already holds and reuses is not counted, so it can read
    lower than :func:`peak_memory_mb`'s fresh process, which costs a Python start and imports.

    Example:
        >>> import torch.nn as nn
        >>> quick_peak_memory(nn.Conv2d(3, 8, 3), (3, 32, 32), batch=2)[0] is None or True
        True
    """
    device = check_device(device)
    if device == "cuda":
        return _cuda_peak(model, input_size, batch), "cuda max_memory_allocated"
    if _linux():
        return _inprocess_peak(model, input_size, batch), "this process VmHWM delta + weights"
    return None, "unavailable (needs Linux /proc or CUDA)"


def start_peak_memory(
    model: nn.Module, input_size: tuple[int, int, int], batch: int, device: str = "cpu"
) -> PeakMemoryJob:
    """Start measuring peak memory (see the module docstring); call ``.result()`` for the value."""
    return PeakMemoryJob(model, tuple(int(v) for v in input_size), batch, check_device(device))


def _cuda_peak(model: nn.Module, input_size: tuple[int, int, int], batch: int) -> float:
    torch.cuda.synchronize()
    weights = _weight_bytes(model)
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        model(torch.randn(batch, *input_size, device="cuda"))
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base + weights) / 2**20


def _inprocess_peak(model: nn.Module, input_size: tuple[int, int, int], batch: int) -> float:
    x = torch.randn(batch, *input_size)
    before = read_status_kb("VmRSS")
    reset_peak_rss()
    with torch.inference_mode():
        model(x)
    return (max(read_status_kb("VmHWM") - before, 0) * 1024 + _weight_bytes(model)) / 2**20


def _weight_bytes(model: nn.Module) -> int:
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def read_status_kb(field: str) -> int:
    """A ``kB`` field (``VmRSS``, ``VmHWM``) of ``/proc/self/status``."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> None:
    """Reset the kernel's resident-set high-water mark (``VmHWM``) to the current RSS."""
    Path("/proc/self/clear_refs").write_text("5")


def _linux() -> bool:
    return Path("/proc/self/clear_refs").exists()


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
