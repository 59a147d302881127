"""``graft select DATA``: which backbone for these images and this latency budget, by measurement.

Example:
    $ graft select data/pets --available --latency-budget 20ms --out runs/select
    $ graft select data/pets --model efficientnet_lite0 --model tv:mobilenet_v2 --json
    $ graft select data/pets --model efficientnet_lite0,efficientnet_lite0+vit_tiny_patch16_224 \
          --model-arg 'efficientnet_lite0+vit_tiny_patch16_224:pretrained={cnn: true, vit: false}'
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from graft.commands._common import add_parser, emit, note, save_config
from graft.commands.extract import add_hardware_deprecations, hardware_of
from graft.errors import ConfigError
from graft.options import (
    ACCELERATOR_HELP,
    add_deprecated,
    comma_list,
    key_value,
    kwargs_of,
    option,
    resolve,
)

_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e-?[0-9]+)?)\s*(ms|s|us)?\s*$", re.IGNORECASE)
_UNIT_MS = {"ms": 1.0, "s": 1000.0, "us": 0.001, None: 1.0}


def parse_latency(text: str) -> float:
    """Parse a latency budget into milliseconds: ``20ms``, ``0.02s``, ``500us`` or a bare number (ms).

    Example:
        >>> parse_latency("20ms"), parse_latency("0.02s"), parse_latency("15")
        (20.0, 20.0, 15.0)
    """
    match = _DURATION.match(str(text))
    if not match:
        raise ConfigError(
            f"cannot read latency budget {text!r}; write it like 20ms, 0.02s or 500us (a bare number is ms)."
        )
    value = float(match.group(1)) * _UNIT_MS[(match.group(2) or "").lower() or None]
    if value <= 0:
        raise ConfigError(f"latency budget must be positive, got {text!r}.")
    return value


def candidate_arg(text: str) -> tuple[str, str, Any]:
    """``[CANDIDATE:]KEY=VALUE`` -> ``(CANDIDATE or "*", KEY, VALUE parsed as YAML)``.

    The candidate is everything before the last ``:`` left of the ``=`` (names such as
    ``tv:mobilenet_v2`` keep their colon); without it the argument applies to every candidate.

    Example:
        >>> candidate_arg("a+b:pretrained={cnn: true, vit: false}")
        ('a+b', 'pretrained', {'cnn': True, 'vit': False})
        >>> candidate_arg("tv:mobilenet_v2:drop_rate=0.1"), candidate_arg("drop_rate=0.1")
        (('tv:mobilenet_v2', 'drop_rate', 0.1), ('*', 'drop_rate', 0.1))
    """
    key, value = key_value(text)
    candidate, sep, name = key.rpartition(":")
    if sep and not (candidate.strip() and name.strip()):
        raise argparse.ArgumentTypeError(
            f"expected CANDIDATE:KEY=VALUE or KEY=VALUE (e.g. 'a+b:fusion=gated'), got {text!r}"
        )
    return (candidate.strip() or "*", name.strip(), value)


def model_args_from(items: Any) -> dict[str, dict[str, Any]]:
    """Group parsed ``--model-arg`` items by candidate (``"*"``: every candidate).

    A mapping (``model_args:`` in a ``--config`` YAML, ``{candidate: {key: value}}``) is kept.
    """
    if isinstance(items, dict):
        return {str(k): dict(v) for k, v in items.items()}
    out: dict[str, dict[str, Any]] = {}
    for candidate, key, value in items or []:
        out.setdefault(candidate, {})[key] = value
    return out


@dataclass
class SelectOptions:
    """Options of ``graft select`` (and keyword arguments of :func:`graft.select_models`)."""

    data: str = option(
        None, "image folder (class sub-folders, or train/ val/ test/) or CSV", positional=True
    )
    model: list[str] = option(
        [],
        "a candidate model, repeatable or comma-separated (e.g. efficientnet_lite0,tv:mobilenet_v2)",
        default_text="every model with offline weights",
    )
    available: bool = option(
        False, "measure every model with offline weights (the default without --model)"
    )
    latency_budget: str | None = option(
        None, "e.g. 20ms or 0.02s (batch 1, this device)", default_text="no budget"
    )
    sample_per_class: int = option(20, "images per class to score on")
    image_size: int | None = option(
        None, "input size for every candidate", default_text="each model's"
    )
    scores: list[str] = option(
        ["logme", "knn"],
        "scores, repeatable or comma-separated, from logme, probe, knn, hscore, leep, nce "
        "(logme and knn are the cheap ones)",
        default_text="logme,knn",
    )
    rank_by: str = option("consensus", "a score name, or consensus (the mean rank over scores)")
    control: bool = option(False, "add a randomly initialised copy of the first candidate")
    weights: Literal["pretrained", "none"] = option(
        "pretrained", "pretrained, or none (every candidate from random init)"
    )
    max_candidates: int | None = option(
        None, "measure at most N, in rule order", default_text="all"
    )
    rules: str | None = option(
        None, "a rules YAML file replacing graft's table", default_text="graft's rules"
    )
    batch_size: int = option(16, "batch for throughput and peak memory")
    repeats: int = option(5, "timed repeats per latency median")
    memory: Literal["fast", "process", "off"] = option(
        "fast",
        "peak memory: fast (one pass in this process), process (a fresh process per candidate: "
        "isolated, but a Python start each), off",
    )
    model_args: dict[str, Any] = option(
        {},
        "extra model argument (YAML value, repeatable, as in graft fit) for one candidate, or for "
        "every candidate without the prefix; e.g. "
        "'resnet18+vit_small_patch16_224:pretrained={cnn: true, vit: false}'",
        flag="--model-arg",
        action="append",
        type=candidate_arg,
        metavar="[CANDIDATE:]KEY=VALUE",
    )
    seed: int = option(0, "random seed of the sampled images")
    out: str = option("runs/select", "folder for selection.json/.txt, the PNG and config.yaml")
    accelerator: str = option("auto", ACCELERATOR_HELP + "; where latency is measured")
    devices: str = option("1", "the device to measure on: 1, or one GPU index such as 1,")


OPTIONS = {"select": SelectOptions}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``graft select`` to the CLI."""
    p = add_parser(
        subparsers,
        "select",
        SelectOptions,
        help="rank backbones for your data and latency budget by measurement",
        description=(
            "Measure candidate backbones on your images and machine: cost (params, MACs, latency, "
            "throughput, peak memory) and transferability (LogME, cross-validated linear probe and "
            "kNN on a stratified sample). Rules of thumb order and filter candidates and explain; "
            "the ranking comes from the measured scores. Writes a table, JSON, a PNG and the "
            "graft fit command for the top pick."
        ),
    )
    add_deprecated(p, "--candidates", "model", "--model NAME (repeatable)", convert=comma_list)
    add_deprecated(p, "--batch", "batch_size", "--batch-size N", convert=int)
    add_deprecated(p, "--no-memory", "memory", "--memory off", value="off")
    add_hardware_deprecations(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the selection and print the table (or JSON)."""
    from graft.select import select_models

    opts = resolve(args, SelectOptions, **hardware_of(args, {}))
    kwargs = kwargs_of(opts, skip=("data", "latency_budget", "model_args"))
    budget = parse_latency(opts.latency_budget) if opts.latency_budget else None
    result = select_models(
        opts.data,
        latency_budget_ms=budget,
        model_args=model_args_from(opts.model_args),
        **{**kwargs, "model": opts.model or None},
    )
    save_config(opts, opts.out)
    data = json.loads(Path(result.files["json"]).read_text(encoding="utf-8"))
    emit(args, data, result.summary())
    if not args.json:
        note(f"\nwrote {', '.join(result.files.values())}")
    return 0 if result.rows else 1
