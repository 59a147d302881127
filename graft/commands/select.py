"""``graft select DATA``: which backbone for these images and this latency budget, by measurement.

Example:
    $ graft select data/pets --available --latency-budget 20ms --out runs/select
    $ graft select data/pets --candidates efficientnet_lite0,tv:mobilenet_v2 --json
    $ graft select data/pets --candidates efficientnet_lite0,efficientnet_lite0+vit_tiny_patch16_224 \
          --model-arg 'efficientnet_lite0+vit_tiny_patch16_224:pretrained={cnn: true, vit: false}'
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from graft.errors import ConfigError
from graft.train.cli_options import key_value

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


def model_args_from(items: list[tuple[str, str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Group parsed ``--model-arg`` items by candidate (``"*"``: every candidate)."""
    out: dict[str, dict[str, Any]] = {}
    for candidate, key, value in items or []:
        out.setdefault(candidate, {})[key] = value
    return out


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``graft select`` to the CLI."""
    p = subparsers.add_parser(
        "select",
        help="rank backbones for your data and latency budget by measurement",
        description=(
            "Measure candidate backbones on your images and machine: cost (params, MACs, latency, "
            "throughput, peak memory) and transferability (LogME, cross-validated linear probe and kNN "
            "on a stratified sample). Rules of thumb order and filter candidates and explain; the "
            "ranking comes from the measured scores. Writes a table, JSON, a PNG and the graft fit "
            "command for the top pick."
        ),
    )
    p.add_argument("data", help="image folder (class sub-folders, or train/ val/ test/) or CSV")
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--candidates", help="comma-separated model names, e.g. efficientnet_lite0,tv:mobilenet_v2"
    )
    group.add_argument(
        "--available", action="store_true", help="every model with offline weights (the default)"
    )
    p.add_argument(
        "--latency-budget", type=str, default=None, help="e.g. 20ms or 0.02s (batch 1, this device)"
    )
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument(
        "--sample-per-class", type=int, default=20, help="images per class to score on (default 20)"
    )
    p.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="input size for every candidate (default: each model's)",
    )
    p.add_argument(
        "--scores",
        default="logme,knn",
        help="comma-separated from logme, probe, knn, hscore, leep, nce (default logme,knn: the "
        "cheap ones; probe, hscore, leep, nce are opt-in)",
    )
    p.add_argument("--rank-by", default="consensus", help="a score name or consensus (default)")
    p.add_argument(
        "--control",
        action="store_true",
        help="add a randomly initialised copy of the first candidate",
    )
    p.add_argument(
        "--max-candidates", type=int, default=None, help="measure at most N, in rule order"
    )
    p.add_argument("--rules", default=None, help="a rules YAML file replacing graft's table")
    p.add_argument(
        "--batch", type=int, default=16, help="batch size for throughput and peak memory"
    )
    p.add_argument(
        "--repeats", type=int, default=5, help="timed repeats per latency median (default 5)"
    )
    p.add_argument(
        "--memory",
        choices=("fast", "process", "off"),
        default="fast",
        help="peak memory: fast (one pass in this process, default), process (a fresh process per "
        "candidate: isolated, but a Python start each), off",
    )
    p.add_argument("--no-memory", action="store_true", help="same as --memory off")
    p.add_argument(
        "--model-arg",
        dest="model_args",
        action="append",
        type=candidate_arg,
        default=None,
        metavar="[CANDIDATE:]KEY=VALUE",
        help="extra model argument (YAML value, repeatable, as in graft fit) for one candidate, "
        "or for every candidate without the prefix; e.g. "
        "'resnet18+vit_small_patch16_224:pretrained={cnn: true, vit: false}'",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out", default="runs/select", help="folder for selection.json/.txt and the PNG"
    )
    p.add_argument("--json", action="store_true", help="print the JSON result instead of the table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the selection and print the table (or JSON)."""
    from graft.select import select

    result = select(
        args.data,
        candidates=args.candidates,
        available=args.available,
        latency_budget_ms=parse_latency(args.latency_budget) if args.latency_budget else None,
        device=args.device,
        sample_per_class=args.sample_per_class,
        image_size=args.image_size,
        scores=[s.strip() for s in args.scores.split(",") if s.strip()],
        rank_by=args.rank_by,
        control=args.control,
        max_candidates=args.max_candidates,
        rules=args.rules,
        batch=args.batch,
        repeats=args.repeats,
        memory="off" if args.no_memory else args.memory,
        seed=args.seed,
        out=args.out,
        model_args=model_args_from(args.model_args),
    )
    if args.json:
        print(Path(result.files["json"]).read_text(encoding="utf-8"), end="")
    else:
        print(result.summary())
        print(f"\nwrote {', '.join(result.files.values())}", file=sys.stderr)
    return 0 if result.rows else 1
