"""A fit run's folder: one writer (:class:`graft.train.run_lock.RunLock`), and no half-made leftovers.

:func:`prepare_run_dir` creates it and refuses to train over an earlier run unless resuming.
When a run fails, its ``--out`` folder either disappears (it was created by this run and holds no
checkpoint to resume from) or says why in ``failed.txt`` (what failed, and whether ``--resume``
can continue it). A successful run removes an earlier ``failed.txt``.

Example:
    >>> with claim_run(Path("runs/pets"), "graft fit"):  # doctest: +SKIP
    ...     train()
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from graft.distributed import is_rank_zero
from graft.errors import ConfigError
from graft.io import check_out_folder, write_text
from graft.log import get_logger
from graft.train.config import FitConfig
from graft.train.run_lock import RunLock

log = get_logger("graft.train")

FAILED_NAME = "failed.txt"


@contextlib.contextmanager
def claim_run(run: Path, command: str = "graft fit", data: str | None = None) -> Iterator[Path]:
    """Hold ``run``'s lock while the body runs; on failure, remove or annotate the folder.

    ``run`` is checked first (not a file, writable, not inside the data folder ``data``). Only the
    process of rank 0 takes the lock and tidies up (the other DDP ranks share its folder).
    """
    run = check_out_folder(run, data)
    if not is_rank_zero():
        yield run
        return
    created = _first_missing(run)  # this folder, or the ancestor that a mkdir -p would create
    with RunLock(run, command):
        try:
            yield run
        except BaseException as error:
            _after_failure(run, created, error, command)
            raise
        (run / FAILED_NAME).unlink(missing_ok=True)


def _first_missing(path: Path) -> Path | None:
    """The highest folder on the way to ``path`` that does not exist yet (None: ``path`` exists)."""
    if path.exists():
        return None
    while not path.parent.exists() and path.parent != path:
        path = path.parent
    return path


def last_checkpoint(run: Path) -> Path:
    """The checkpoint of ``run``'s last finished epoch, which ``--resume`` continues from.

    Example:
        >>> last_checkpoint(Path("runs/x")).as_posix()
        'runs/x/checkpoints/last.ckpt'
    """
    return run / "checkpoints" / "last.ckpt"


def _after_failure(run: Path, created: Path | None, error: BaseException, command: str) -> None:
    resumable = last_checkpoint(run).is_file()
    if created is not None and not resumable:
        shutil.rmtree(created, ignore_errors=True)
        log.info("removed %s: the run failed before its first checkpoint", created)
        return
    first = (str(error).strip().splitlines() or [type(error).__name__])[0][:500]
    advice = (
        f"Finished epochs are kept: `{command} --resume --out {run}` continues the run."
        if resumable
        else f"No epoch finished; this folder can be reused: `{command} DATA --out {run}`."
    )
    with contextlib.suppress(OSError):  # the disk that failed the run may refuse this note too
        write_text(run / FAILED_NAME, f"{type(error).__name__}: {first}\n{advice}\n")


def prepare_run_dir(cfg: FitConfig) -> Path:
    """Create the run folder and write ``config.yaml``; refuse to overwrite a run unless resuming.

    Example:
        >>> run = prepare_run_dir(FitConfig(data="data/pets", out="runs/pets"))  # doctest: +SKIP
    """
    run = Path(cfg.out)
    last = last_checkpoint(run)
    if cfg.resume and not last.is_file():
        raise ConfigError(f"--resume: {last} does not exist; nothing to resume in {run}.")
    if not cfg.resume and (last.is_file() or (run / "bundle").exists()):
        raise ConfigError(
            f"{run} already holds a run; pass --resume to continue it or choose another --out folder."
        )
    run.mkdir(parents=True, exist_ok=True)
    if is_rank_zero():
        cfg.save(run / "config.yaml")
    return run
