"""Model names: timm names, torchvision names (``tv:ARCH[.WEIGHTS]``) and graft's aliases.

Example:
    >>> parse_name("tv:vgg16.IMAGENET1K_V1")
    ModelName(source='tv', arch='vgg16', tag='IMAGENET1K_V1', name='tv:vgg16.IMAGENET1K_V1')
    >>> parse_name("efficientnet_lite0").arch
    'tf_efficientnet_lite0'
"""

from __future__ import annotations

import fnmatch
import functools
from dataclasses import dataclass

from graft.errors import raise_unknown

TV_PREFIX = "tv:"
DEFAULT_BACKBONE = "efficientnet_lite0"

# user-facing name -> timm architecture (the shipped Lite weights need TF "same" padding)
ALIASES: dict[str, str] = {
    "efficientnet_lite0": "tf_efficientnet_lite0",
    "efficientnet_lite1": "tf_efficientnet_lite1",
    "efficientnet_lite2": "tf_efficientnet_lite2",
}


@dataclass(frozen=True)
class ModelName:
    """A parsed model name: ``source`` is ``"timm"`` or ``"tv"``; ``tag`` the weights tag, if any."""

    source: str
    arch: str
    tag: str | None
    name: str

    @property
    def timm_name(self) -> str:
        """The name to pass to ``timm.create_model`` (architecture plus tag)."""
        return f"{self.arch}.{self.tag}" if self.tag else self.arch


def parse_name(name: str) -> ModelName:
    """Parse and validate a model name; unknown names raise with close matches."""
    if not isinstance(name, str) or not name:
        raise_unknown(
            "model", str(name), all_names(), hint="Pass a model name such as 'efficientnet_lite0'."
        )
    if name.startswith(TV_PREFIX):
        return _parse_tv(name)
    arch, _, tag = name.partition(".")
    arch = ALIASES.get(arch, arch)
    if arch not in timm_names():
        raise_unknown("model", name, all_names(), hint=_LIST_HINT)
    return ModelName("timm", arch, tag or None, name)


def _parse_tv(name: str) -> ModelName:
    arch, _, tag = name[len(TV_PREFIX) :].partition(".")
    if arch not in tv_names():
        raise_unknown(
            "torchvision model", name, [TV_PREFIX + n for n in tv_names()], hint=_LIST_HINT
        )
    if tag:
        valid = tv_weight_tags(arch)
        if tag not in valid:
            raise_unknown(
                f"weights for torchvision '{arch}'",
                tag,
                valid,
                hint=f"Write it as tv:{arch}.TAG, e.g. tv:{arch}.{valid[0] if valid else 'DEFAULT'}.",
            )
    return ModelName("tv", arch, tag or None, name)


_LIST_HINT = "List names with `graft models PATTERN` (e.g. `graft models 'resnet*'`)."


@functools.cache
def timm_names() -> frozenset[str]:
    """All timm architecture names."""
    import timm

    return frozenset(timm.list_models())


@functools.cache
def tv_names() -> tuple[str, ...]:
    """Torchvision classification architectures (without the ``tv:`` prefix)."""
    import torchvision

    return tuple(sorted(torchvision.models.list_models(module=torchvision.models)))


def tv_weight_tags(arch: str) -> list[str]:
    """Weights enum members of a torchvision architecture, e.g. ``['IMAGENET1K_V1', 'DEFAULT']``."""
    from torchvision.models import get_model_weights

    try:
        enum = get_model_weights(arch)
    except (ValueError, KeyError):
        return []
    return [*enum.__members__]


def all_names() -> list[str]:
    """Every accepted model name: timm, ``tv:`` torchvision, and aliases."""
    return sorted({*timm_names(), *(TV_PREFIX + n for n in tv_names()), *ALIASES})


def match_names(pattern: str | None = None) -> list[str]:
    """Accepted names matching a shell-style ``pattern`` (case-insensitive)."""
    names = all_names()
    if not pattern:
        return names
    pattern = pattern.lower()
    return [n for n in names if fnmatch.fnmatchcase(n.lower(), pattern)]
