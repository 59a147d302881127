"""``select_models``' options: checked, old spellings mapped, per-candidate model arguments.

Example:
    >>> args_for({"model_args": {"*": {"drop_rate": 0.1}, "a": {"fusion": "gated"}}}, "a")
    {'drop_rate': 0.1, 'fusion': 'gated'}
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from graft.errors import ConfigError, raise_unknown
from graft.select.cost import check_device

SCORE_NAMES = ("logme", "probe", "knn", "hscore", "leep", "nce")
DEFAULT_SCORES = ("logme", "knn")  # the cheap ones that ranked best in bench/bench_select.py
MEMORY_MODES = ("fast", "process", "off")
RANK_BY = (*SCORE_NAMES, "consensus")
EVERY_CANDIDATE = "*"  # model_args key for arguments that apply to every candidate


def check_settings(args: dict[str, Any]) -> dict[str, Any]:
    check_device(args["device"])
    scores = list(dict.fromkeys(args["scores"]))
    for name in scores:
        if name not in SCORE_NAMES:
            raise_unknown("score", name, SCORE_NAMES)
    if not scores:
        raise ConfigError(f"give at least one score; valid: {', '.join(SCORE_NAMES)}.")
    if args["rank_by"] not in RANK_BY:
        raise_unknown("rank_by", args["rank_by"], RANK_BY)
    if args["rank_by"] != "consensus" and args["rank_by"] not in scores:
        scores.append(args["rank_by"])
    args["memory"] = memory_mode(args["memory"])
    if args["repeats"] < 1:
        raise ConfigError(f"repeats must be at least 1 (5 is the default), got {args['repeats']}.")
    budget = args["latency_budget_ms"]
    if budget is not None and not budget > 0:
        raise ConfigError(f"latency budget must be positive (ms), got {budget}.")
    if args["sample_per_class"] < 2:
        raise ConfigError(
            f"sample_per_class must be at least 2 (cross-validation), got {args['sample_per_class']}."
        )
    keys = (
        "latency_budget_ms",
        "device",
        "sample_per_class",
        "image_size",
        "rank_by",
        "batch_size",
        "repeats",
        "memory",
        "seed",
        "max_candidates",
        "weights",
        "accelerator",
    )
    out = os.fspath(args["out"]) if args["out"] is not None else None
    return {
        **{k: args[k] for k in keys},
        "data": os.fspath(args["data"]),
        "scores": scores,
        "out": out,
    }


def resolve_old_spellings(model, candidates, accelerator, devices, device, batch_size, batch, weights,
                   pretrained) -> tuple[Any, str, int, str]:  # fmt: skip
    """``(candidates, torch device kind, batch_size, weights)`` from the new and the old names."""
    from graft.distributed import single_device
    from graft.options import warn_deprecated

    if candidates is not None:
        warn_deprecated("candidates=", "model=")
        model = model or candidates
    if batch is not None:
        warn_deprecated("batch=", "batch_size=")
        batch_size = batch
    if pretrained is not None:
        warn_deprecated("pretrained=", "weights='pretrained' or weights='none'")
        weights = "pretrained" if pretrained else "none"
    if weights not in ("pretrained", "none"):
        raise ConfigError(
            f"select measures several models: weights must be pretrained or none, got {weights!r}."
        )
    resolved = single_device(accelerator, devices, device, what="select")
    return model, ("cuda" if resolved.startswith("cuda") else resolved), batch_size, weights


def memory_mode(memory: bool | str) -> str:
    if memory is True:
        return "process"
    if memory is False or memory is None:
        return "off"
    if memory not in MEMORY_MODES:
        raise_unknown("memory mode", str(memory), MEMORY_MODES)
    return str(memory)


def check_model_args(
    model_args: Mapping[str, Mapping[str, Any]] | None, names: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Validate per-candidate model arguments (keys: candidate names or ``"*"``); a JSON-ready copy.

    Example:
        >>> check_model_args({"a+b": {"fusion": "gated"}}, ["a+b", "c"])
        {'a+b': {'fusion': 'gated'}}
    """
    if not model_args:
        return {}
    if not isinstance(model_args, Mapping):
        raise ConfigError(
            "model_args must map a candidate name (or '*' for every candidate) to its arguments, "
            f"e.g. {{'a+b': {{'fusion': 'gated'}}}}; got {type(model_args).__name__}."
        )
    out = {}
    for name, args in model_args.items():
        if name != EVERY_CANDIDATE and name not in names:
            raise_unknown(
                "candidate in model_args",
                str(name),
                [*names, EVERY_CANDIDATE],
                hint="Prefix a model argument with one of the candidates "
                "(--model-arg 'NAME:KEY=VALUE'), or leave the prefix out for every candidate.",
            )
        if not isinstance(args, Mapping):
            raise ConfigError(f"model_args for {name} must be a mapping, got {args!r}.")
        out[str(name)] = json.loads(json.dumps(dict(args)))  # recorded in selection.json
    return out


def args_for(settings: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The model arguments of candidate ``name``: the ``"*"`` ones, then its own on top."""
    given = settings.get("model_args") or {}
    return copy.deepcopy({**given.get(EVERY_CANDIDATE, {}), **given.get(name, {})})
