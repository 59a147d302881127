"""Loading the teacher: a graft bundle (fine-tuned on the task) or a pretrained model name.

Example:
    >>> source = load_teacher("runs/teacher/bundle")  # doctest: +SKIP
    >>> source.classes[:2], source.data_config["input_size"]  # doctest: +SKIP
    (['bear', 'bird'], [3, 96, 96])
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from graft.errors import ConfigError
from graft.log import get_logger

log = get_logger("graft.distill")


@dataclass
class TeacherSource:
    """A loaded teacher: the network, its preprocessing, its classes (``None``: not the task's)."""

    model: nn.Module
    data_config: dict[str, Any]
    classes: list[str] | None
    name: str
    kind: str  # "bundle" or "pretrained"


def load_teacher(
    source: str | os.PathLike | nn.Module, data_config: dict[str, Any] | None = None
) -> TeacherSource:
    """Load ``source``: a bundle folder, a model name (pretrained weights), or a module.

    A module needs ``data_config`` (or a ``pretrained_cfg``); its classes are unknown, so logit KD
    is off unless the caller says otherwise.
    """
    if isinstance(source, nn.Module):
        cfg = data_config or _resolve(source)
        name = getattr(source, "graft_spec", {}).get("name", type(source).__name__)
        return TeacherSource(source, cfg, None, name, "module")
    path = Path(source)
    if path.exists() or (path.name == "model.json"):
        return _from_bundle(path)
    if os.sep in str(source) or str(source).startswith("."):
        raise ConfigError(
            f"teacher '{source}' looks like a path but does not exist. Pass a bundle folder written by "
            "`graft fit` (it holds model.json) or a model name such as efficientnet_lite2."
        )
    return _from_name(str(source))


def _from_bundle(path: Path) -> TeacherSource:
    from graft.bundle import load_bundle

    bundle = load_bundle(path)
    if not isinstance(bundle.model, nn.Module) or not hasattr(bundle.model, "forward_features"):
        raise ConfigError(
            f"teacher bundle {path} is of kind '{bundle.kind}', which graft cannot run as a PyTorch "
            "teacher; pass a classifier bundle written by `graft fit` or a model name."
        )
    name = bundle.meta.get("spec", {}).get("name", path.name)
    log.info("teacher: bundle %s (%s, %d classes)", path, name, len(bundle.classes))
    return TeacherSource(
        bundle.model, dict(bundle.data_config), list(bundle.classes), name, "bundle"
    )


def _from_name(name: str) -> TeacherSource:
    try:
        from graft.models import create_model
    except ImportError:  # graft.models still being assembled
        from graft.models.factory import create_model

    model = create_model(name, num_classes=None, pretrained=True)
    log.info(
        "teacher: pretrained %s (its head is not trained on the task: logit KD off by default)",
        name,
    )
    return TeacherSource(model, _resolve(model), None, name, "pretrained")


def _resolve(model: nn.Module) -> dict[str, Any]:
    from graft.data import resolve_data_config

    return resolve_data_config(model)
