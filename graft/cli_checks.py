"""Checks every command's numeric options get before it runs, by option name, so that ``0``, ``-1``,
``nan`` or a huge value is one error line (exit 2) instead of a traceback deep in a library, or a
machine brought down by a million loader processes.

A command's own checks (its config dataclass) still apply; these cover the flags any command
shares. Also turns an operating-system refusal on a path the user named (permission denied, not a
folder, read-only disk) into one line.

Example:
    >>> import argparse
    >>> check_args(argparse.Namespace(batch_size=0))
    Traceback (most recent call last):
    ...
    graft.errors.ConfigError: --batch-size must be at least 1, got 0.
"""

from __future__ import annotations

import argparse
import errno
import math

from graft.errors import ConfigError

MAX_IMAGE_SIDE = 4096
MAX_WORKERS = 256
# option -> (lowest, highest) allowed; None: no bound on that side
BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "batch_size": (1, None), "batch": (1, None), "top_k": (1, None), "steps": (1, 1_000_000),
    "per_class": (1, 1_000_000), "sample_per_class": (1, 1_000_000), "repeats": (1, 10_000),
    "max_candidates": (1, None), "workers": (0, MAX_WORKERS), "gradcam": (0, 10_000),
    "mistakes": (0, 10_000), "seed": (0, 2**32 - 1), "image_size": (1, MAX_IMAGE_SIDE),
    "min_lr": (0, None), "max_lr": (0, None), "pca": (0, None), "num_nodes": (1, 4096),
    "in_chans": (1, 16), "opset": (7, 100), "devices": (1, 1024),
}  # fmt: skip
EXCLUSIVE_LOW = {"min_lr", "max_lr", "pca"}  # must be above the bound, not equal
PATH_ERRNOS = {
    errno.EACCES, errno.EPERM, errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.ENOENT,
    errno.EROFS, errno.ENAMETOOLONG, errno.ELOOP,
}  # fmt: skip


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_args(args: argparse.Namespace) -> None:
    """Raise :class:`ConfigError` for a numeric option out of its bounds, ``nan`` or infinite.

    Example:
        >>> check_args(argparse.Namespace(workers=2, image_size=224))
    """
    for name, value in vars(args).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{_flag(name)} must be a finite number, got {value}.")
        if name in BOUNDS:
            _check_bounds(name, value, *BOUNDS[name])


def _check_bounds(name: str, value: float, low: float | None, high: float | None) -> None:
    if low is not None and (value <= low if name in EXCLUSIVE_LOW else value < low):
        word = "above" if name in EXCLUSIVE_LOW else "at least"
        raise ConfigError(f"{_flag(name)} must be {word} {low}, got {value}.")
    if high is not None and value > high:
        raise ConfigError(f"{_flag(name)} must be at most {high}, got {value}.")


def path_error_message(error: OSError) -> str | None:
    """One line for an OS refusal on a named path (``None`` when it is not one: a bug instead).

    Example:
        >>> path_error_message(PermissionError(13, "Permission denied", "/root/x"))
        "cannot use '/root/x': Permission denied. Check the path and its permissions, or choose another."
    """
    if error.errno not in PATH_ERRNOS or not error.filename:
        return None
    return (
        f"cannot use {str(error.filename)!r}: {error.strerror or error}. Check the path and its "
        "permissions, or choose another."
    )


def printable_message(text: str) -> str:
    r"""``text`` for the terminal: control characters other than newlines escaped (a file name
    holding ``ESC[2J`` must not clear the user's screen).

    Example:
        >>> printable_message("bad name: \x1b[2Jx.jpg")
        'bad name: \\x1b[2Jx.jpg'
    """
    from graft.names import escape_name

    return "\n".join(escape_name(line).replace("\\\\", "\\") for line in text.split("\n"))
