"""Which members ``--preset best`` ensembles with ``--model`` (``--ensemble-models``).

Items of the list:

- ``long`` (:data:`LONG`): ``--model`` once more, with a full phase :data:`LONG_FACTOR` times as long
  as the first fit's (same data, split, seed, image size and head phase). The default (``None``,
  or the single word ``auto``) is ``["long"]``: on issue #20's benchmark (docs/benchmarks/quality.md)
  the balanced fit and its long twin, averaged, gained more accuracy within 4x the time of
  ``balanced`` than ensembles of other backbones at the balanced length.
- a backbone name: that backbone fit like ``--model`` (its resolved image size and epochs), checked
  now (unknown names get suggestions); ``--model`` itself and repeats count once; a backbone with
  no pretrained weights on this machine is named in a warning.
- ``[]``: no ensemble, ``--model`` alone.

Each choice is logged.

Example:
    >>> from graft.train.config import FitConfig
    >>> choose_members(FitConfig(data="d", model="efficientnet_lite0"))
    ['long']
    >>> long_epochs(epochs=11, head_epochs=8)
    17
"""

from __future__ import annotations

from typing import Any

from graft.errors import ConfigError, UnknownNameError
from graft.log import get_logger

log = get_logger("graft.ensembling")

LONG = "long"  # the member that is --model with a longer full phase
# the long member's full phase, in multiples of the first fit's: 3 takes auto's ~200 full-phase
# steps on small data to ~600; docs/benchmarks/quality.md measured it (animals: 0.965/0.977/0.975
# -> 0.979/0.969/0.990 alone, averaged with the balanced fit 0.982/0.980/0.989)
LONG_FACTOR = 3
DEFAULT_MEMBERS = (LONG,)


def long_epochs(epochs: int, head_epochs: int) -> int:
    """Total epochs of the long member for a first fit of ``epochs`` with ``head_epochs`` of head."""
    return head_epochs + LONG_FACTOR * (epochs - head_epochs)


def requested_members(value: list[str] | None) -> list[str] | None:
    """``ensemble_models`` as a clean list (comma-separated items split, blanks dropped); ``None``
    for the default (unset, or the single word ``auto``).

    Example:
        >>> requested_members(["a,b", " c"]), requested_members(["auto"]), requested_members([])
        (['a', 'b', 'c'], None, [])
    """
    if value is None:
        return None
    items = [v.strip() for item in value for v in str(item).split(",") if v.strip()]
    return None if items == ["auto"] else items


def backbone_key(name: str) -> tuple[str, str]:
    """``(source, architecture)`` of a model name: the same backbone whatever the alias or tag.

    Example:
        >>> backbone_key("efficientnet_lite0") == backbone_key("tf_efficientnet_lite0")
        True
    """
    from graft.models.names import parse_name

    try:
        parsed = parse_name(name)
    except UnknownNameError:
        return ("", name)
    return (parsed.source, parsed.arch)


def offline_backbones() -> set[tuple[str, str]]:
    """Backbone keys whose pretrained weights are on this machine (no network is touched)."""
    from graft.models import available_models

    return {backbone_key(entry["name"]) for entry in available_models()}


def choose_members(cfg: Any) -> list[str]:
    """The members besides ``--model``'s first fit for ``cfg`` (a
    :class:`~graft.train.config.FitConfig`): :data:`LONG` and backbone names (module docstring).
    Raises :class:`ConfigError` for an unknown name."""
    requested = requested_members(cfg.ensemble_models)
    if requested is None:
        requested = list(DEFAULT_MEMBERS)
    main = backbone_key(cfg.model)
    chosen: list[str] = []
    for name in requested:
        if name == LONG:
            chosen += [] if LONG in chosen else [LONG]
            continue
        _check_name(name)
        if backbone_key(name) == main:
            log.info("--ensemble-models: %s is --model itself; it is a member once (name '%s' "
                     "for --model with a longer full phase)", name, LONG)  # fmt: skip
        elif backbone_key(name) not in {backbone_key(c) for c in chosen if c != LONG}:
            chosen.append(name)
    _warn_offline(cfg, [c for c in chosen if c != LONG])
    shown = [f"{cfg.model} ({LONG_FACTOR}x full phase)" if c == LONG else c for c in chosen]
    log.info("preset best: ensemble of %s", ", ".join([cfg.model, *shown]) if chosen
             else f"{cfg.model} alone (--ensemble-models is empty)")  # fmt: skip
    return chosen


def _warn_offline(cfg: Any, backbones: list[str]) -> None:
    if cfg.weights == "none" or not backbones:
        return
    here = offline_backbones()
    for name in (n for n in backbones if backbone_key(n) not in here):
        log.warning("ensemble member %s has no pretrained weights on this machine; its fit "
                    "looks for them as --model would (download when online)", name)  # fmt: skip


def _check_name(name: str) -> None:
    from graft.models.names import parse_name

    try:
        parse_name(name)
    except UnknownNameError as err:
        raise ConfigError(f"--ensemble-models: {err.args[0] if err.args else err}") from err


def member_folder(name: str) -> str:
    """The folder name of member ``name`` under ``OUT/members/`` (``tv:mobilenet_v2`` ->
    ``tv-mobilenet_v2``).

    Example:
        >>> member_folder("tv:mobilenet_v2.IMAGENET1K_V1")
        'tv-mobilenet_v2.IMAGENET1K_V1'
    """
    return "".join("-" if ch in ":/\\ " else ch for ch in name)


__all__ = [
    "DEFAULT_MEMBERS",
    "LONG",
    "LONG_FACTOR",
    "choose_members",
    "long_epochs",
    "member_folder",
]
