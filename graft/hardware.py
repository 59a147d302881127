"""Lightning's hardware vocabulary for the commands that run outside a ``Trainer``.

:func:`hardware` reads ``accelerator`` / ``devices`` / ``strategy`` / ``num_nodes`` as Lightning
does; :func:`run_on` runs a function there (this process, spawned local processes, or the ones
torchrun / srun started); :func:`single_device` is the one device of a one-process command.
:mod:`graft.distributed` re-exports these names.

Example:
    >>> hardware("cpu", 2).processes
    2
    >>> single_device("cpu", 1)
    'cpu'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from graft.distributed import init_from_env, local_rank, spawn, world_size
from graft.errors import ConfigError

T = TypeVar("T")

_ACCELERATORS = {"auto": "auto", "cpu": "cpu", "gpu": "cuda", "cuda": "cuda", "mps": "mps"}


@dataclasses.dataclass(frozen=True)
class Hardware:
    """Where a command runs, read as Lightning reads ``accelerator`` / ``devices`` / ``num_nodes``.

    ``kind``: ``"cpu"``, ``"cuda"`` or ``"mps"``; ``indices``: the device of each local process
    (``None`` for CPU processes); ``processes``: local processes to run.
    """

    kind: str
    processes: int
    indices: tuple[int, ...] | None = None
    num_nodes: int = 1

    def device(self, local: int | None = None) -> str:
        """The torch device of local process ``local`` (default: this process's local rank)."""
        if self.kind == "cpu":
            return "cpu"
        if self.kind == "mps":
            return "mps"
        local = local_rank() if local is None else local
        return f"cuda:{(self.indices or (0,))[local % len(self.indices or (0,))]}"


def hardware(
    accelerator: str = "auto", devices: Any = "auto", strategy: str = "auto", num_nodes: int = 1
) -> Hardware:
    """Resolve Lightning's ``accelerator``/``devices``/``strategy``/``num_nodes`` for a command.

    ``devices``: ``"auto"`` (every GPU, or one CPU process), ``N`` (N devices; ``-1``: every GPU), or
    a list of GPU indices (``"0,2"`` or ``[0, 2]``). On the CPU ``N`` means N processes.

    Example:
        >>> hardware("cpu", 2)
        Hardware(kind='cpu', processes=2, indices=None, num_nodes=1)
        >>> hardware("cpu", "auto").device()
        'cpu'
    """
    kind = _ACCELERATORS.get(str(accelerator).lower())
    if kind is None:
        raise ConfigError(
            f"unknown accelerator {accelerator!r}; valid: {', '.join(_ACCELERATORS)} "
            "(as in Lightning's Trainer)."
        )
    if strategy not in ("auto", "ddp", "ddp_spawn", "ddp_find_unused_parameters_true"):
        raise ConfigError(
            f"strategy {strategy!r} does not apply here; this command runs one process per device "
            "(auto or ddp)."
        )
    if int(num_nodes) < 1:
        raise ConfigError(f"num_nodes must be at least 1, got {num_nodes}")
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError("accelerator gpu was asked for, but no CUDA GPU is visible; use cpu.")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("accelerator mps was asked for, but MPS is not available; use cpu.")
    if int(num_nodes) > 1 and world_size() <= 1:
        raise ConfigError(
            f"num_nodes {num_nodes}: start the command on every node with srun or torchrun."
        )
    indices = _device_indices(kind, devices)
    count = len(indices) if indices is not None else _count(devices, 1)
    return Hardware(kind, count, indices if kind == "cuda" else None, int(num_nodes))


def _device_indices(kind: str, devices: Any) -> tuple[int, ...] | None:
    if kind != "cuda":
        return None
    available = torch.cuda.device_count()
    if isinstance(devices, (list, tuple)) or ("," in str(devices)):
        items = devices if isinstance(devices, (list, tuple)) else str(devices).split(",")
        indices = tuple(int(i) for i in items if str(i).strip())
    else:
        n = _count(devices, available)
        indices = tuple(range(available if n == -1 else n))
    bad = [i for i in indices if i >= available or i < 0]
    if bad or not indices:
        raise ConfigError(f"devices {devices!r}: this machine has {available} GPU(s).")
    return indices


def _count(devices: Any, auto: int) -> int:
    if devices is None or str(devices).strip().lower() == "auto":
        return auto
    try:
        n = int(devices)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"devices must be auto, a number or a list such as 0,2; got {devices!r}"
        ) from err
    if n == -1 and auto:
        return auto
    if n < 1:
        raise ConfigError(f"devices must be at least 1 (or -1, auto), got {devices!r}")
    return n


def run_on(hw: Hardware, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on ``hw``: in this process, in ``hw.processes`` spawned local processes, or
    in the processes torchrun / srun started. Returns ``fn``'s result (rank 0's after
    :func:`spawn`; each rank its own under a launcher).

    Example:
        >>> run_on(hardware("cpu", 1), sum, [1, 2])
        3
    """
    if init_from_env():  # launched by torchrun / srun: this process is one rank
        return fn(*args)
    if hw.processes > 1:
        return spawn(fn, hw.processes, *args)
    return fn(*args)


def single_device(
    accelerator: str = "auto", devices: Any = "auto", device: str | None = None, what: str = ""
) -> str:
    """The one torch device of a command that runs in one process (predict, evaluate, select).

    ``device`` is the old spelling (``"cpu"``, ``"cuda:1"``), accepted for one release with a warning.
    ``devices`` may name one GPU (``1`` or ``"1,"``); more than one device is refused with a hint.

    Example:
        >>> single_device("cpu", 1)
        'cpu'
    """
    if device is not None:
        from graft.options import warn_deprecated

        warn_deprecated("device=", "accelerator= and devices=")
        return str(device)
    if str(devices).strip().lower() == "auto":
        devices = 1
    hw = hardware(accelerator, devices)
    if hw.processes > 1:
        raise ConfigError(
            f"{what or 'this command'} runs in one process on one device, got devices={devices!r}; "
            "pass --devices 1 (or one GPU index such as --devices 1,), or split the images and run "
            "one command per device."
        )
    return hw.device(0)
