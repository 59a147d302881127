"""What can be built (``list_models``) and what has weights on this machine (``available_models``).

Example:
    >>> [m["name"] for m in available_models()][:3]  # doctest: +SKIP
    ['efficientnet_lite0', 'efficientnet_lite1', 'efficientnet_lite2']
    >>> list_models("tv:resnet1*")
    ['tv:resnet101', 'tv:resnet152', 'tv:resnet18']
"""

from __future__ import annotations

import fnmatch
import functools
from pathlib import Path
from typing import Any

from graft.models.names import ALIASES, TV_PREFIX, match_names
from graft.models.shipped import SHIPPED
from graft.models.weights import hf_hub_cache, torch_hub_checkpoints


def list_models(pattern: str | None = None, available: bool = False) -> list[str]:
    """Sorted model names matching a shell-style ``pattern``; ``available=True``: only those with weights here.

    Example:
        >>> "efficientnet_lite0" in list_models("efficientnet_lite*")
        True
    """
    if not available:
        return match_names(pattern)
    names = [m["name"] for m in available_models()]
    if pattern:
        names = [n for n in names if fnmatch.fnmatchcase(n.lower(), pattern.lower())]
    return sorted(dict.fromkeys(names))


def available_models() -> list[dict[str, Any]]:
    """Models whose pretrained weights are on this machine: shipped packages, torch hub and HF caches.

    Each entry: ``{"name", "source", "path", "input_size"}``; ``create_model(entry["name"])`` loads it offline.
    """
    entries = [e for e in (_shipped_entry(s) for s in SHIPPED) if e]
    entries += _torch_hub_entries()
    entries += _hf_cache_entries()
    return entries


def _shipped_entry(shipped) -> dict[str, Any] | None:
    path = shipped.locate()
    if path is None:
        return None
    return {
        "name": shipped.name,
        "source": f"package {shipped.package}",
        "path": str(path),
        "input_size": _input_size(shipped.name),
    }


def _torch_hub_entries() -> list[dict[str, Any]]:
    folder = torch_hub_checkpoints()
    if not folder.is_dir():
        return []
    known = _known_hub_files()
    out = []
    for path in sorted(folder.iterdir()):
        for name in known.get(path.name, []):
            out.append(
                {
                    "name": name,
                    "source": "torch hub cache",
                    "path": str(path),
                    "input_size": _input_size(name),
                }
            )
    return out


def _hf_cache_entries() -> list[dict[str, Any]]:
    folder = hf_hub_cache()
    if not folder.is_dir():
        return []
    out = []
    for repo in sorted(folder.glob("models--timm--*")):
        files = sorted(repo.glob("snapshots/*/model.safetensors")) or sorted(
            repo.glob("snapshots/*/pytorch_model.bin")
        )
        if files:
            name = repo.name[len("models--timm--") :]
            out.append(
                {
                    "name": name,
                    "source": "Hugging Face cache",
                    "path": str(files[0]),
                    "input_size": _input_size(name),
                }
            )
    return out


@functools.cache
def _known_hub_files() -> dict[str, list[str]]:
    """torch hub file name -> model names (torchvision weights and timm configs with a URL)."""
    import timm
    import torchvision
    from timm.models import get_pretrained_cfg
    from torchvision.models import get_model_weights, list_models

    files: dict[str, list[str]] = {}
    for arch in list_models(module=torchvision.models):
        for w in get_model_weights(arch):
            files.setdefault(Path(w.url).name, []).append(f"{TV_PREFIX}{arch}.{w.name}")
    for name in timm.list_pretrained():
        cfg = get_pretrained_cfg(name)
        if cfg is not None and cfg.url:
            files.setdefault(Path(cfg.url).name, []).append(name)
    return files


def pretrained_input_size(name: str) -> int | None:
    """The weights' input side (px) of model ``name``, without building it; for a hybrid ``a+b``
    the largest of its branches' (what its data pipeline prepares); ``None`` when unknown.

    Example:
        >>> pretrained_input_size("test_efficientnet"), pretrained_input_size("test_efficientnet+test_vit")
        (160, 160)
    """
    sizes = [_input_size(part.strip()) for part in str(name).split("+")]
    if not sizes or any(s is None for s in sizes):
        return None
    return max(int(s[-1]) for s in sizes)  # type: ignore[index]


def _input_size(name: str) -> tuple[int, int, int] | None:
    """Pretrained input size (C, H, W) for a name with or without tag, without building the model."""
    if name.startswith(TV_PREFIX):
        from torchvision.models import get_model_weights

        arch, _, tag = name[len(TV_PREFIX) :].partition(".")
        try:
            t = get_model_weights(arch)[tag or "DEFAULT"].transforms()
        except (KeyError, ValueError):
            return None
        crop = t.crop_size[0] if isinstance(t.crop_size, (list, tuple)) else t.crop_size
        return (3, int(crop), int(crop))
    from timm.models import get_pretrained_cfg

    arch, _, tag = name.partition(".")
    cfg = get_pretrained_cfg(f"{ALIASES.get(arch, arch)}{'.' + tag if tag else ''}")
    return tuple(cfg.input_size) if cfg is not None else None
