"""``--resume`` continues the *same* run: options and data that define it must match the checkpoint's.

Two checks, each naming every differing field:

- :func:`check_resume_options`: options given with ``--resume`` against the run's ``config.yaml``
  (a new ``--image-size`` or data folder would otherwise be trained on the old weights, or ignored);
- :func:`check_resume_identity`: the scanned data and the model (data folder, model, input size,
  classes, recipe) against what the checkpoint recorded (:class:`RunIdentity`).

Options that only change *how* the run executes (workers, devices, progress...) may change freely.
``--resume-force`` turns both errors into warnings: the checkpoint's weights, optimizer and position
then continue under the new options (the recipe's plan must still match; see
:mod:`graft.train.unfreeze`).

Before either, :func:`check_resume_checkpoint` refuses a ``last.ckpt`` that is not plain tensors
(read with ``weights_only=True``: nothing in it is executed).

Example:
    >>> check_resume_options({"image_size": 32}, {"image_size": 64}, force=False)
    Traceback (most recent call last):
    ...
    graft.train.resume_check.ResumeConflictError: --resume: ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from graft.errors import ConfigError, UnsafeFileError
from graft.log import get_logger
from graft.train.run_guard import last_checkpoint

log = get_logger("graft.train")

# options that change how a run executes, not what it trains: free to change on resume
EXECUTION_OPTIONS = frozenset(
    {
        "workers", "cache_images", "cache_frozen", "accelerator", "devices", "strategy",
        "num_nodes", "progress", "report", "resume", "resume_force", "out", "channels_last",
        "deterministic",
    }
)  # fmt: skip
CHECKPOINT_KEY = "graft_run"


class ResumeConflictError(ConfigError):
    """``--resume`` was asked to continue a run with other data, model or options."""


def _same(key: str, old: Any, new: Any) -> bool:
    if key == "data" and old and new:
        return Path(str(old)).expanduser().resolve() == Path(str(new)).expanduser().resolve()
    return old == new


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def differing(saved: dict[str, Any], current: dict[str, Any], skip=frozenset()) -> list[str]:
    """Keys of ``saved`` whose value in ``current`` differs (``skip`` ignored), in ``saved``'s order.

    Example:
        >>> differing({"a": 1, "b": 2}, {"a": 1, "b": 3})
        ['b']
    """
    return [
        k for k in saved if k not in skip and k in current and not _same(k, saved[k], current[k])
    ]


def _complain(what: str, saved: dict, current: dict, keys: list[str], force: bool) -> None:
    details = "; ".join(
        f"{k}: {_shown(saved[k])} in the run, {_shown(current[k])} now" for k in keys
    )
    if force:
        log.warning("--resume-force: continuing although %s differ (%s)", what, details)
        return
    raise ResumeConflictError(
        f"--resume: {what} differ from the run being resumed ({details}). Resume with the run's "
        "own options (drop these flags; the run folder's config.yaml holds them), start a new run "
        "in another --out folder, or pass --resume-force to continue these weights under the new "
        "settings anyway."
    )


def check_resume_options(saved: dict[str, Any], requested: dict[str, Any], force: bool) -> None:
    """Refuse options given with ``--resume`` that differ from the run's saved config.

    Example:
        >>> check_resume_options({"model": "a", "workers": 0}, {"model": "a", "workers": 4}, False)
    """
    keys = differing(saved, requested, skip=EXECUTION_OPTIONS)
    if keys:
        _complain("options", saved, requested, keys, force)


def run_identity(
    data: str, model: str, data_cfg: dict[str, Any], classes: list[str], recipe: str
) -> dict[str, Any]:
    """What a resume must match: data folder, model, input size, classes, recipe.

    Example:
        >>> run_identity("d", "m", {"input_size": (3, 32, 32)}, ["a", "b"], "head")["input_size"]
        [3, 32, 32]
    """
    return {
        "data": str(Path(data).expanduser().resolve()),
        "model": model,
        "input_size": [int(v) for v in data_cfg["input_size"]],
        "classes": list(classes),
        "recipe": recipe,
    }


def check_resume_identity(checkpoint: dict[str, Any], current: dict[str, Any], force: bool) -> None:
    """Refuse a resume whose data or model differ from what ``checkpoint`` recorded.

    Checkpoints written before graft recorded this (no ``graft_run`` entry) are not checked.

    Example:
        >>> check_resume_identity({"graft_run": {"classes": ["a"]}}, {"classes": ["a"]}, False)
    """
    saved = checkpoint.get(CHECKPOINT_KEY)
    if not isinstance(saved, dict):
        return
    keys = differing(saved, current)
    if keys:
        _complain("the data or model", saved, current, keys, force)


class RunIdentity(pl.Callback):
    """Writes :func:`run_identity` into every checkpoint (``checkpoint["graft_run"]``).

    Example:
        >>> RunIdentity({"model": "m"}).identity
        {'model': 'm'}
    """

    def __init__(self, identity: dict[str, Any]) -> None:
        self.identity = identity

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[CHECKPOINT_KEY] = dict(self.identity)


def check_resume_checkpoint(path: Path, run: Path) -> dict[str, Any]:
    """The resume checkpoint's content; refuse one that is not plain tensors (a pickle, a foreign file).

    Lightning would fail on it too, but with an unpickling traceback; nothing is ever executed.

    Example:
        >>> check_resume_checkpoint(Path("runs/x/checkpoints/last.ckpt"), Path("runs/x"))  # doctest: +SKIP
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError, RuntimeError (not a zip), EOFError, ...
        from graft.models.weights import load_error_reason

        reason = load_error_reason(err)
        raise UnsafeFileError(
            f"--resume: {path} cannot be read as a plain-tensor checkpoint ({reason}); it may be "
            f"damaged or not graft's. Nothing in it was executed. Restore it from a backup, or "
            f"start a new run with another --out folder (or without --resume)."
        ) from err
    if not isinstance(state, dict) or "state_dict" not in state:
        raise UnsafeFileError(
            f"--resume: {path} is not a graft/Lightning checkpoint (no 'state_dict'); it may be "
            "damaged or not graft's. Restore it, or start a new run with another --out folder."
        )
    return state


def resume_path(cfg: Any, run: Path) -> str | None:
    """The checkpoint ``trainer.fit`` resumes from (``run/checkpoints/last.ckpt``), or ``None``.

    Example:
        >>> from graft.train.config import FitConfig
        >>> resume_path(FitConfig(data="d", resume=True), Path("runs/x"))
        'runs/x/checkpoints/last.ckpt'
    """
    return str(last_checkpoint(run)) if cfg.resume else None
