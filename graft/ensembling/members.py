"""Which backbones ``--preset best`` ensembles with ``--model`` (``--ensemble-models``).

- ``auto`` (the default, ``None``): the backbones of :data:`AUTO_CANDIDATES` whose pretrained
  weights are on this machine (:func:`graft.models.available_models`: shipped packages, torch hub
  and Hugging Face caches), other than ``--model``, cheapest first, at most
  :data:`MAX_EXTRA_MEMBERS`. With ``--weights none`` it chooses none: members trained from random
  initialisation add their cost without the pretrained features that make an ensemble pay.
- a list of names: those backbones, checked now (unknown names get suggestions); ``--model`` in it
  is ignored, a repeated name counted once; ``[]``: no ensemble, ``--model`` alone.

Each choice and its reason is logged.

Example:
    >>> from graft.train.config import FitConfig
    >>> choose_members(FitConfig(data="d", model="efficientnet_lite0"))  # doctest: +SKIP
    ['tv:mobilenet_v2', 'efficientnet_lite1']
"""

from __future__ import annotations

from typing import Any

from graft.errors import ConfigError, UnknownNameError
from graft.log import get_logger

log = get_logger("graft.ensembling")

# backbones auto may choose, cheapest first (CPU seconds per image at their own input size;
# efficientnet_lite2 costs several times lite0): models of other caches have an unknown cost and
# join only when named in --ensemble-models
AUTO_CANDIDATES = (
    "tv:mobilenet_v2",
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
)
MAX_EXTRA_MEMBERS = 2  # members besides --model that auto adds


def requested_members(value: list[str] | None) -> list[str] | None:
    """``ensemble_models`` as a clean list (comma-separated items split, blanks dropped); ``None``
    for auto (unset, or the single word ``auto``).

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
    """The extra members for ``cfg`` (a :class:`~graft.train.config.FitConfig`); see the module
    docstring. Raises :class:`ConfigError` for an unknown name."""
    requested = requested_members(cfg.ensemble_models)
    if requested is None:
        return _auto(cfg)
    main = backbone_key(cfg.model)
    chosen: list[str] = []
    for name in requested:
        _check_name(name)
        if backbone_key(name) == main:
            log.info("--ensemble-models: %s is --model itself; it is a member once", name)
        elif backbone_key(name) not in {backbone_key(c) for c in chosen}:
            chosen.append(name)
    if cfg.weights != "none":
        here = offline_backbones()
        for name in (n for n in chosen if backbone_key(n) not in here):
            log.warning("ensemble member %s has no pretrained weights on this machine; its fit "
                        "looks for them as --model would (download when online)", name)  # fmt: skip
    log.info("preset best: ensemble of %s", ", ".join([cfg.model, *chosen]) if chosen
             else f"{cfg.model} alone (--ensemble-models is empty)")  # fmt: skip
    return chosen


def _auto(cfg: Any) -> list[str]:
    if cfg.weights == "none":
        log.info("preset best: no ensemble members chosen: with --weights none every member would "
                 "train from random initialisation; name them with --ensemble-models to ensemble "
                 "anyway")  # fmt: skip
        return []
    here, main = offline_backbones(), backbone_key(cfg.model)
    fitting = [c for c in AUTO_CANDIDATES if backbone_key(c) != main]
    found = [c for c in fitting if backbone_key(c) in here]
    chosen = found[:MAX_EXTRA_MEMBERS]
    missing = [c for c in fitting if backbone_key(c) not in here]
    why = f" ({', '.join(missing)}: no weights on this machine)" if missing else ""
    if chosen:
        log.info("preset best: ensemble members %s besides %s: the cheapest backbones with "
                 "pretrained weights on this machine, at most %d%s", ", ".join(chosen), cfg.model,
                 MAX_EXTRA_MEMBERS, why)  # fmt: skip
    else:
        log.info("preset best: no ensemble members: no other backbone of %s has weights on this "
                 "machine%s; %s is fit alone", ", ".join(AUTO_CANDIDATES), why, cfg.model)  # fmt: skip
    return chosen


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


__all__ = ["AUTO_CANDIDATES", "MAX_EXTRA_MEMBERS", "choose_members", "member_folder"]
