"""Atomic, checksummed file writes: a crash never leaves a truncated output behind.

Every file graft writes goes through :func:`atomic_write`: the data lands in a temporary file in the
same folder, is flushed and fsynced, then renamed over the target in one step.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.json"
    >>> write_json(p, {"x": 1}); read_json(p)
    {'x': 1}
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from graft.errors import GraftError

# mkstemp / mkdtemp create files and folders for their owner only; outputs get the permissions
# any file the user creates gets instead (0666 / 0777 less the umask, read when writing)


def current_umask() -> int:
    """The process umask (``os.umask`` can only be read by setting it; it is set straight back).

    Example:
        >>> 0 <= current_umask() <= 0o777
        True
    """
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode of a new output file: ``0o666`` less the umask (0644 under the usual umask 022)."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """Mode of a new output folder: ``0o777`` less the umask (0755 under the usual umask 022)."""
    return 0o777 & ~current_umask()


def make_temp_dir(dest: Path, suffix: str = ".tmp") -> Path:
    """A fresh folder next to ``dest`` (renamed into place later) with the usual folder mode.

    Example:
        >>> tmp = make_temp_dir(Path(tempfile.mkdtemp()) / "bundle")
        >>> oct(tmp.stat().st_mode & 0o777) == oct(dir_mode())
        True
    """
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=suffix, dir=dest.parent))
    os.chmod(tmp, dir_mode())
    return tmp


class DiskFullError(GraftError, OSError):
    """The disk filled up while writing; earlier outputs are intact."""


class OutputPathError(GraftError, ValueError):
    """An output file's path cannot be written (a folder stands there)."""


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file next to ``path``; on success rename it over ``path``.

    On any error the temporary file is removed and ``path`` keeps its previous content.
    """
    with _replacing(path) as tmp, open(tmp, mode) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path for libraries that write by file name; rename it over ``path`` on success."""
    with _replacing(path) as tmp:
        yield tmp
        os.chmod(tmp, file_mode())  # libraries may re-create the file owner-only (safetensors)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())


@contextlib.contextmanager
def _replacing(path: str | os.PathLike) -> Iterator[Path]:
    """A fresh temporary file next to ``path``, renamed over it when the block ends without error.

    On any error the temporary file is removed; a full disk becomes :class:`DiskFullError`.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(
            f"{path} is a folder, so the file of that name cannot be written; move the folder "
            "away or choose another output path."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, file_mode())
        yield Path(tmp)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        _remove_quietly(tmp)
        _raise_disk_full(e, path)
        raise
    except BaseException:
        _remove_quietly(tmp)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as f:
        f.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, with an error naming the file when it is not valid JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GraftError(
            f"{path} is not valid JSON ({e}); it may be truncated, damaged (not UTF-8 text) or edited by hand."
        ) from e


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _raise_disk_full(error: OSError, path: Path) -> None:
    """Turn ENOSPC into :class:`DiskFullError`; other errors pass through to the caller."""
    if error.errno == errno.ENOSPC:
        raise DiskFullError(
            f"disk full while writing {path}; earlier outputs are intact. "
            "Free some space or choose another --out folder, then run again (add --resume where offered)."
        ) from error


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove_quietly(path: str | os.PathLike) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def check_out_folder(
    out: str | os.PathLike, data: str | os.PathLike | None = None, flag: str = "--out"
) -> Path:
    """Refuse an output folder that cannot work, before anything is written: an existing file, a
    place that cannot be created or written, or a folder inside the data folder ``data``.

    Example:
        >>> check_out_folder(tempfile.mkdtemp() + "/run").name
        'run'
    """
    from graft.errors import ConfigError

    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path} is a file; it must be a folder. Choose a folder name.")
    parent = path
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(
            f"{flag} {path} cannot be created: {parent} is a file. Choose another folder."
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{flag} {path} cannot be written: no write permission in {parent}. Choose a folder "
            "you can write to."
        )
    if data is not None and Path(data).is_dir():
        root = Path(data).expanduser().resolve()
        if path.resolve() == root or root in path.resolve().parents:
            raise ConfigError(
                f"{flag} {path} is inside the data folder {root}: its files would be read as a "
                f"class. Choose a folder outside it, e.g. {flag} {root.parent / 'runs' / root.name}."
            )
    return path
