"""Options declared once: a command's typed dataclass gives its flags, YAML keys and keyword arguments.

Each field carries its help in ``metadata["help"]``; :func:`add_options` turns the fields into
``argparse`` flags (bools get ``--x/--no-x``, ``Literal`` types become choices, ``dict`` fields a
repeatable ``--x KEY=VALUE``), :func:`options_from_args` reads back the flags that were given, and
:func:`resolve` merges ``--config`` YAML, those flags and the defaults into one validated instance,
which :func:`graft.config.save` writes as the run's ``config.yaml``. Old spellings stay accepted for a
release through :func:`add_deprecated` (one warning line naming the new spelling).

Example:
    >>> from dataclasses import dataclass, field
    >>> @dataclass
    ... class Opt:
    ...     epochs: int = field(default=5, metadata={"help": "passes over the data"})
    ...     flip: bool = field(default=True, metadata={"help": "random horizontal flips"})
    >>> p = argparse.ArgumentParser(); add_options(p, Opt)
    >>> resolve(p.parse_args(["--no-flip"]), Opt)
    Opt(epochs=5, flip=False)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
import warnings
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from graft import config as _config

T = TypeVar("T")

# metadata keys a field may carry besides "help":
#   positional: True  -> a positional argument (nargs from "nargs", e.g. "?" or "+")
#   flag: "--name"    -> the flag's spelling when it is not the field name (e.g. --model-arg)
#   default_text: str -> how the help states a default that is None ("the model's", "auto", ...)
#   type / action / metavar / nargs / choices -> passed to argparse as they are
_ARGPARSE_KEYS = ("type", "action", "metavar", "nargs", "choices")

# the hardware options, with Lightning's meaning in every command that runs a model or reads data
ACCELERATOR_HELP = "cpu, gpu (cuda), mps or auto, as in Lightning's Trainer"
DEVICES_HELP = (
    "how many devices (processes): N, a list such as 0,2, or auto (every GPU; one CPU process), "
    "as in Lightning"
)
STRATEGY_HELP = "auto, ddp, ... as in Lightning (several devices: one process per device)"
NUM_NODES_HELP = "machines of a multi-node run (launched by srun or torchrun)"


def option(default: Any = dataclasses.MISSING, help: str = "", **metadata: Any) -> Any:
    """A dataclass field with its help: ``field(default=..., metadata={"help": help, ...})``.

    A mutable default (dict, list) becomes a ``default_factory``.

    Example:
        >>> @dataclasses.dataclass
        ... class Opt:
        ...     seed: int = option(0, "random seed of the split and the sampling")
        >>> dataclasses.fields(Opt)[0].metadata["help"]
        'random seed of the split and the sampling'
    """
    meta = {"help": help, **metadata}
    if isinstance(default, (dict, list)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def combine(
    name: str, *classes: type, skip: Iterable[str] = (), helps: dict[str, str] | None = None
) -> type:
    """One dataclass with the fields of ``classes`` (first wins on a shared name), ``skip`` left out.

    For a command that takes the options of several dataclasses (``graft distill``: distillation and
    fit options), so that its option table comes from one class like every other command's.
    ``helps`` replaces the help of the named fields (where the command's meaning or default differs).

    Example:
        >>> from graft.train.config import FitConfig
        >>> Both = combine("Both", FitConfig, skip=("data",))
        >>> "data" in {f.name for f in dataclasses.fields(Both)}
        False
    """
    skipped, seen, specs = set(skip), set(), []
    for cls in classes:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in skipped or f.name in seen:
                continue
            seen.add(f.name)
            metadata = dict(f.metadata)
            if f.name in (helps or {}):
                metadata["help"] = helps[f.name]  # type: ignore[index]
            copy = dataclasses.field(
                default=f.default, default_factory=f.default_factory, metadata=metadata
            )
            specs.append((f.name, hints[f.name], copy))
    return dataclasses.make_dataclass(name, specs)


def flag_name(f: dataclasses.Field) -> str:
    """The ``--flag`` of a field: ``metadata["flag"]`` or its name with dashes."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def add_options(
    parser: Any,
    cls: type,
    skip: Iterable[str] = (),
    helps: dict[str, str] | None = None,
) -> None:
    """Add one argument per field of dataclass ``cls`` (flags default to unset) to ``parser``.

    ``parser`` is an ``ArgumentParser`` or one of its argument groups. ``helps`` replaces the help
    text of the named fields (a command whose default differs from the dataclass's says so there).

    Example:
        >>> from graft.train.config import FitConfig
        >>> p = argparse.ArgumentParser(); add_options(p, FitConfig, skip=("data",))
        >>> p.parse_args(["--epochs", "3"]).epochs
        3
    """
    hints = typing.get_type_hints(cls)
    skipped = set(skip)
    for f in dataclasses.fields(cls):
        if f.name in skipped:
            continue
        text = ((helps or {}).get(f.name) or help_text(f)).replace("%", "%%")  # argparse formats
        if f.metadata.get("positional"):
            kwargs = {k: f.metadata[k] for k in _ARGPARSE_KEYS if k in f.metadata}
            parser.add_argument(f.name, help=text, **kwargs)
            continue
        parser.add_argument(flag_name(f), **_flag_kwargs(f, hints[f.name], text))


def _flag_kwargs(f: dataclasses.Field, hint: Any, text: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"dest": f.name, "default": None, "help": text}
    given = {k: f.metadata[k] for k in _ARGPARSE_KEYS if k in f.metadata}
    tp = strip_optional(hint)
    origin = typing.get_origin(tp)
    if given:
        kwargs.update(given)
        if "type" not in given and "action" not in given:
            kwargs["type"] = tp if tp in (int, float) else str
    elif origin is dict or tp is dict:  # --model-arg KEY=VALUE, repeatable
        kwargs.update(action="append", type=key_value, metavar="KEY=VALUE")
    elif tp is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif origin is typing.Literal:
        kwargs["choices"] = [str(a) for a in typing.get_args(tp)]
    elif origin in (list, tuple):
        kwargs.update(action="extend", type=comma_list, metavar=f.name.upper().rstrip("S"))
    else:
        kwargs.update(type=tp if tp in (int, float) else str, metavar=f.name.upper())
    return kwargs


def help_text(f: dataclasses.Field) -> str:
    """The field's help with its default stated once: ``"...  (default: X)"``.

    A field without ``metadata["help"]`` is a bug in graft: every option says what it does.
    """
    text = f.metadata.get("help")
    if not text:
        raise TypeError(f"option '{f.name}' has no metadata['help']; say what it does")
    if "default" in text or f.metadata.get("positional"):  # states its default itself / required
        return text
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        default = f.default_factory()  # type: ignore[misc]
    else:
        return text
    if default in (None, {}, [], ()):
        shown = f.metadata.get("default_text", "none" if default in ({}, [], ()) else "auto")
    elif isinstance(default, bool):
        shown = "on" if default else "off"
    else:
        shown = default
    return f"{text} (default: {shown})"


def options_from_args(args: argparse.Namespace, *classes: type) -> dict[str, Any]:
    """The fields of ``classes`` that were given on the command line (positionals included).

    Repeated ``--model-arg KEY=VALUE`` pairs become the ``model_args`` mapping (``graft select``'s
    ``CANDIDATE:KEY=VALUE`` triples a mapping per candidate).

    Example:
        >>> from graft.train.config import FitConfig
        >>> options_from_args(argparse.Namespace(epochs=3, lr=None, verbose=False), FitConfig)
        {'epochs': 3}
    """
    names = {f.name for cls in classes for f in dataclasses.fields(cls)}
    out = {k: v for k, v in vars(args).items() if k in names and v is not None}
    items = out.get("model_args")
    if isinstance(items, list):
        grouped: dict[str, Any] = {}
        for item in items:
            if len(item) == 3:
                grouped.setdefault(item[0], {})[item[1]] = item[2]
            else:
                grouped[item[0]] = item[1]
        out["model_args"] = grouped
    return out


def resolve(args: argparse.Namespace, cls: type[T], **fixed: Any) -> T:
    """``cls`` from ``--config`` YAML (``args.config``, if any), the flags given, then ``fixed``.

    Example:
        >>> from graft.train.config import FitConfig
        >>> resolve(argparse.Namespace(epochs=2), FitConfig).epochs
        2
    """
    overrides = {**options_from_args(args, cls), **fixed}
    return _config.load(cls, getattr(args, "config", None), overrides)


def kwargs_of(options: Any, skip: Iterable[str] = ()) -> dict[str, Any]:
    """The fields of a dataclass instance as keyword arguments (a shallow copy, ``skip`` left out)."""
    return {
        f.name: getattr(options, f.name)
        for f in dataclasses.fields(options)
        if f.name not in set(skip)
    }


# ------------------------------------------------------------------------------------ deprecations


def warn_deprecated(old: str, new: str) -> None:
    """One line on stderr (and a ``FutureWarning`` for Python callers): ``old`` is now ``new``.

    Example:
        >>> warn_deprecated("--random-init", "--weights none")  # doctest: +SKIP
        graft: warning: --random-init is deprecated and will be removed in the next release; use --weights none
    """
    message = f"{old} is deprecated and will be removed in the next release; use {new}"
    if old.startswith("-"):
        print(f"graft: warning: {message}", file=sys.stderr)
    else:
        warnings.warn(message, FutureWarning, stacklevel=3)


class _Deprecated(argparse.Action):
    """An old flag: warns once, then stores ``value`` (or ``convert(text)``) into ``dest``."""

    def __init__(self, option_strings, dest, new="", value=None, convert=None, **kwargs):
        self.new, self.value, self.convert = new, value, convert
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        warn_deprecated(option_string or self.option_strings[0], self.new)
        if self.convert is not None:
            value = self.convert(values)
        else:
            value = self.value
        if isinstance(value, list) and isinstance(getattr(namespace, self.dest, None), list):
            value = getattr(namespace, self.dest) + value
        setattr(namespace, self.dest, value)


def add_deprecated(
    parser: Any,
    old: str,
    dest: str,
    new: str,
    value: Any = None,
    convert: Callable[[str], Any] | None = None,
) -> None:
    """Keep accepting flag ``old`` for one release: it sets ``dest`` and warns to use ``new``.

    A flag that takes a value passes it through ``convert``; a bare switch stores ``value``.

    Example:
        >>> p = argparse.ArgumentParser(); p.add_argument("--weights")  # doctest: +ELLIPSIS
        _StoreAction(...)
        >>> add_deprecated(p, "--random-init", "weights", "--weights none", value="none")
        >>> p.parse_args(["--random-init"]).weights  # doctest: +SKIP
        'none'
    """
    nargs = None if convert is not None else 0
    parser.add_argument(
        old, dest=dest, action=_Deprecated, new=new, value=value, convert=convert, nargs=nargs
    )


# ------------------------------------------------------------------------------------ value types


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


def comma_list(text: str) -> list[str]:
    """``"a,b, c"`` -> ``["a", "b", "c"]`` (a repeatable flag also takes comma-separated names).

    Example:
        >>> comma_list("efficientnet_lite0, tv:mobilenet_v2")
        ['efficientnet_lite0', 'tv:mobilenet_v2']
    """
    return [t.strip() for t in str(text).split(",") if t.strip()]


def strip_optional(tp: Any) -> Any:
    """``X | None`` -> ``X`` (other types unchanged)."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return tp
