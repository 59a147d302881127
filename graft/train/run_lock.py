"""One writer per run folder: ``RUN/.graft-lock`` holds the writer's PID, host and start time.

The lock is taken atomically: its content is written to a private temporary file which is then
hard-linked to ``.graft-lock`` (``link`` fails if the name exists), so a lock is never seen
half-written. A second writer gets a :class:`RunLockedError` naming the first. A lock left by a
process that no longer runs on this host (killed, machine rebooted) is stale: it is replaced, with a
warning. A lock from another host cannot be checked from here; the error says how to remove it.

Example:
    >>> with RunLock(Path("runs/pets"), "graft fit"):  # doctest: +SKIP
    ...     train()
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from graft.errors import GraftError
from graft.log import get_logger

log = get_logger("graft.train")

LOCK_NAME = ".graft-lock"


class RunLockedError(GraftError):
    """Another process is writing the same run folder."""


class RunLock:
    """Context manager holding ``run/.graft-lock`` for this process (see the module docstring)."""

    def __init__(self, run: Path, command: str = "graft fit") -> None:
        self.path = Path(run) / LOCK_NAME
        self.command = command
        self.held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock, replacing a stale one; :class:`RunLockedError` if another writer holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mine = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": self.command,
            "proc_start": _process_start(os.getpid()),
        }
        for _ in range(3):
            if _link_new(self.path, json.dumps(mine) + "\n"):
                self.held = True
                return
            holder = read_lock(self.path)
            if holder is None:  # removed between our attempt and the read: try again
                continue
            if not is_stale(holder):
                raise RunLockedError(locked_message(self.path, holder))
            log.warning(
                "removing a stale lock on %s: %s (PID %s) is no longer running",
                self.path.parent,
                holder.get("command", "a graft run"),
                holder.get("pid"),
            )
            self.path.unlink(missing_ok=True)
        raise RunLockedError(
            f"could not take the lock {self.path}: it keeps changing; is another graft run "
            "starting in the same --out folder? Wait for it, or choose another --out folder."
        )

    def release(self) -> None:
        """Remove the lock if this process holds it."""
        if not self.held:
            return
        holder = read_lock(self.path)
        if holder is not None and holder.get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False


def _link_new(path: Path, text: str) -> bool:
    """Create ``path`` holding ``text`` atomically; False if it already exists."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def read_lock(path: Path) -> dict | None:
    """The lock's content, ``{}`` when it cannot be parsed, ``None`` when there is no lock.

    Example:
        >>> read_lock(Path("runs/pets/.graft-lock"))  # doctest: +SKIP
        {'pid': 4242, 'host': 'gpu-1', 'started': '2026-12-04T07:30:00+0000', 'command': 'graft fit'}
    """
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def is_stale(holder: dict) -> bool:
    """True when the lock's process is known to be gone: same host and no such PID (or a zombie)."""
    pid, host = holder.get("pid"), holder.get("host")
    if host != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return False  # this process: a run started twice in one process (a bug), not stale
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, another user's
        return False
    recorded, now = holder.get("proc_start"), _process_start(pid)
    if recorded is not None and now is not None and recorded != now:
        return True  # the PID was reused by a process that started after the lock was taken
    return _is_zombie(pid)


def _stat_fields(pid: int) -> list[str]:
    """Fields of ``/proc/PID/stat`` after the command name (empty where there is no /proc)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return []


def _process_start(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, Linux), to tell a reused PID from the holder."""
    fields = _stat_fields(pid)
    return int(fields[19]) if len(fields) > 19 and fields[19].isdigit() else None


def _is_zombie(pid: int) -> bool:
    return _stat_fields(pid)[:1] == ["Z"]


def locked_message(path: Path, holder: dict) -> str:
    """The error for a second writer: who holds the run and what to do.

    Example:
        >>> locked_message(Path("r/.graft-lock"), {"pid": 7, "host": "h", "started": "t"})[:40]
        'r is in use by another graft run (PID 7 '
    """
    who = (
        f"PID {holder.get('pid', '?')} on host {holder.get('host', '?')}, "
        f"started {holder.get('started', '?')}"
    )
    command = holder.get("command", "graft")
    return (
        f"{path.parent} is in use by another graft run ({who}, {command}); two runs writing one "
        f"folder would mix their files. Wait for it to finish, or choose another --out folder. If "
        f"that process is gone (e.g. on another machine), delete {path} and run again."
    )
