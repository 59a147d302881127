"""Process-level speed settings for CPU runs: glibc malloc thresholds.

PyTorch on CPU allocates large activation buffers on every batch. With glibc's default thresholds,
buffers above ~128 KiB-32 MiB (the threshold moves dynamically) are served by ``mmap`` and handed back
to the kernel on ``free``; the next batch faults fresh zeroed pages in again, and the heap top is
trimmed after every large free. On this machine that cost 30-45% of the time in the kernel.
:func:`tune_allocator` raises the thresholds in-process with ``mallopt`` so freed buffers stay in the
heap and are reused. It is process-wide, idempotent, and a no-op outside Linux/glibc.

Opt out with the environment variable ``GRAFT_NO_MALLOC_TUNING=1`` or ``tune_allocator(False)``.

Example:
    >>> from graft.runtime import tune_allocator
    >>> tune_allocator()  # doctest: +SKIP
    True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import sys

from graft.log import get_logger

log = get_logger("graft.runtime")

# mallopt parameter numbers from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

MIB = 1 << 20
# (parameter, value): the mmap threshold at glibc's maximum on 64-bit (32 MiB); keep up to 1 GiB of
# freed memory at the heap top instead of returning it, and grow the heap in 64 MiB steps.
SETTINGS: tuple[tuple[str, int, int], ...] = (
    ("M_MMAP_THRESHOLD", M_MMAP_THRESHOLD, 32 * MIB),
    ("M_TRIM_THRESHOLD", M_TRIM_THRESHOLD, 1024 * MIB),
    ("M_TOP_PAD", M_TOP_PAD, 64 * MIB),
)
OPT_OUT_ENV = "GRAFT_NO_MALLOC_TUNING"

_state: dict[str, bool] = {"applied": False}


def allocator_tuned() -> bool:
    """True when :func:`tune_allocator` has changed the malloc thresholds in this process."""
    return _state["applied"]


def tune_allocator(enable: bool | None = None) -> bool:
    """Raise glibc's malloc thresholds for this process; return True when they are (now) raised.

    ``enable=None`` applies the tuning unless ``GRAFT_NO_MALLOC_TUNING`` is set to a true value;
    ``enable=False`` skips it (settings already applied in this process stay: glibc cannot tell the
    previous values). Calling it again is a no-op. Outside Linux with glibc it returns False.

    Example:
        >>> import graft
        >>> graft.tune_allocator() in (True, False)
        True
    """
    if enable is None:
        enable = not _env_true(os.environ.get(OPT_OUT_ENV, ""))
    if not enable:
        if not _state["applied"]:
            log.info("malloc tuning skipped (disabled by %s or enable=False)", OPT_OUT_ENV)
        return _state["applied"]
    if _state["applied"]:
        return True
    mallopt = _glibc_mallopt()
    if mallopt is None:
        log.debug("malloc tuning not available on %s", platform.platform())
        return False
    failed = [name for name, param, value in SETTINGS if mallopt(param, value) != 1]
    if failed:
        log.warning("mallopt rejected %s; allocator left partly tuned", ", ".join(failed))
    _state["applied"] = len(failed) < len(SETTINGS)
    if _state["applied"]:
        shown = ", ".join(f"{name}={value // MIB} MiB" for name, _, value in SETTINGS)
        log.info("glibc malloc tuned for large tensors (%s); opt out with %s=1", shown, OPT_OUT_ENV)
    return _state["applied"]


def _env_true(value: str) -> bool:
    return value.strip().lower() not in ("", "0", "false", "no", "off")


def _glibc_mallopt():
    """The C ``mallopt`` function when this process runs on glibc, else None."""
    if not sys.platform.startswith("linux"):
        return None
    libc_name, _ = platform.libc_ver()
    if libc_name != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt
