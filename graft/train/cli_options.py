"""Command-line flags generated from :class:`FitConfig`: one ``--flag`` per field, typed and documented.

Flags that are not given stay unset, so a ``--config`` YAML file and the defaults fill them.

Example:
    >>> import argparse
    >>> p = argparse.ArgumentParser(); add_config_flags(p)
    >>> options_from_args(p.parse_args(["--epochs", "3", "--no-flip"]))
    {'flip': False, 'epochs': 3}
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from graft.train.config import FitConfig

HELP = {
    "data": "ImageFolder root (class sub-folders, or train/ val/ test/ folders) or a labels CSV",
    "val_split": "fraction of train held out for validation when there is no val/ folder",
    "balance": "class imbalance: none, sampler (balanced batches) or weights (weighted loss)",
    "model": "backbone name (see `graft models`)",
    "weights": "pretrained (shipped/offline weights), none (random init) or a weights file",
    "recipe": "auto (head, then all with spread LRs), head, full, freeze-upto, progressive",
    "unfreeze": "progressive schedule: '2:+2,4:all' or '5:blocks.4-5,10:blocks.0-'",
    "freeze_upto": "freeze-upto: groups [0, K) stay frozen",
    "epochs": "total epochs (default: from the dataset size)",
    "lr": "head learning rate (default: recipe's)",
    "lr_mult": "head LR / stem LR (geometric spread between)",
    "bn": "BatchNorm: auto, frozen (frozen parts eval), eval (all eval), train (all batch stats)",
    "cache_frozen": "compute frozen backbone outputs once (default: on for auto and head)",
    "early_stop": "stop after N epochs without improvement of --monitor",
    "out": "run folder (checkpoints, metrics, bundle)",
    "resume": "continue the run in --out from its last checkpoint",
    "report": "write OUT/report.html at the end (curves, confusion, mistakes, Grad-CAM; graft report)",
    "sync_bn": "DDP: compute BatchNorm statistics over all processes (small per-process batches)",
    "model_args": "extra model argument, YAML value, repeatable (hybrids: fusion=gated, proj_dim=128, "
    "'pretrained={cnn: true, vit: false}')",
}


def add_config_flags(
    parser: Any,
    skip: tuple[str, ...] = ("data",),
    cls: type = FitConfig,
    helps: dict[str, str] | None = None,
) -> None:
    """Add one flag per field of the config dataclass ``cls`` (default: unset) to ``parser``.

    ``parser`` is an ``ArgumentParser`` or one of its argument groups; ``graft distill`` adds the
    fields of its ``DistillConfig`` and of :class:`FitConfig` this way. ``helps`` replaces the help
    text of the named fields (a command whose default differs from the dataclass's says so there).

    Example:
        >>> p = argparse.ArgumentParser()
        >>> add_config_flags(p, helps={"epochs": "student epochs"})
        >>> [a.help for a in p._actions if a.dest == "epochs"]
        ['student epochs']
    """
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        tp = _strip_optional(hints[f.name])
        override = (helps or {}).get(f.name)
        kwargs: dict[str, Any] = {"dest": f.name, "default": None, "help": override or _help(f)}
        if typing.get_origin(tp) is dict or tp is dict:  # --model-arg KEY=VALUE, repeatable
            flag = flag.removesuffix("s")
            kwargs["help"] = override or HELP.get(f.name, kwargs["help"])
            parser.add_argument(
                flag, action="append", type=key_value, metavar="KEY=VALUE", **kwargs
            )
        elif tp is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        elif typing.get_origin(tp) is typing.Literal:
            parser.add_argument(flag, choices=[str(a) for a in typing.get_args(tp)], **kwargs)
        else:
            parser.add_argument(
                flag, type=tp if tp in (int, float) else str, metavar=f.name.upper(), **kwargs
            )


def options_from_args(args: argparse.Namespace, *classes: type) -> dict[str, Any]:
    """The fields of ``classes`` (default: :class:`FitConfig`) that were given on the command line.

    Repeated ``--model-arg KEY=VALUE`` pairs become the ``model_args`` mapping; ``data`` is left out.

    Example:
        >>> options_from_args(argparse.Namespace(data="x", epochs=3, lr=None, verbose=False))
        {'epochs': 3}
    """
    names = {f.name for cls in classes or (FitConfig,) for f in dataclasses.fields(cls)}
    out = {k: v for k, v in vars(args).items() if k in names and k != "data" and v is not None}
    if isinstance(out.get("model_args"), list):
        out["model_args"] = dict(out["model_args"])
    return out


def key_value(text: str) -> tuple[str, Any]:
    """``"KEY=VALUE"`` -> ``(KEY, VALUE parsed as YAML)``.

    Example:
        >>> key_value("pretrained={cnn: true, vit: false}")
        ('pretrained', {'cnn': True, 'vit': False})
    """
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(
            f"expected KEY=VALUE (e.g. fusion=gated or 'pretrained={{vit: false}}'), got {text!r}"
        )
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as err:
        raise argparse.ArgumentTypeError(
            f"{key.strip()}: value {value!r} is not YAML: {err}"
        ) from err


def _strip_optional(tp: Any) -> Any:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if (
        typing.get_origin(tp) in (typing.Union, getattr(__import__("types"), "UnionType", None))
        and len(args) == 1
    ):
        return args[0]
    return tp


def _help(f: dataclasses.Field) -> str:
    """The field's ``metadata["help"]`` (preferred) or its entry in :data:`HELP`, plus its default."""
    default = f.default if f.default is not dataclasses.MISSING else None
    text = f.metadata.get("help") or HELP.get(f.name, f.name.replace("_", " "))
    if "default" in text:  # the text states its default itself
        return text
    return f"{text} (default: {'auto' if default is None else default})"
