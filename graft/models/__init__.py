"""Pretrained backbones behind one contract (timm's): registry, offline weights, heads, freezing.

Example:
    >>> import graft.models as gm
    >>> m = gm.create_model("test_resnet", num_classes=3, pretrained=False)
    >>> gm.freeze(m, upto=-1) and None  # everything but the head
    >>> [name for name, _ in gm.param_groups(m)][-1]
    'head'
"""

from __future__ import annotations

from graft.models.factory import create_model, replace_head
from graft.models.freezing import (
    BN_POLICIES,
    apply_bn_policy,
    freeze,
    frozen_state,
    select_params,
    set_frozen_state,
    unfreeze,
)
from graft.models.groups import param_groups
from graft.models.heads import MLPHead, head_spec
from graft.models.loading import WeightsMismatchError
from graft.models.names import ALIASES, DEFAULT_BACKBONE
from graft.models.registry import available_models, list_models, pretrained_input_size
from graft.models.summary import trainable_summary

__all__ = [
    "ALIASES",
    "BN_POLICIES",
    "DEFAULT_BACKBONE",
    "MLPHead",
    "WeightsMismatchError",
    "apply_bn_policy",
    "create_model",
    "freeze",
    "frozen_state",
    "available_models",
    "head_spec",
    "list_models",
    "param_groups",
    "pretrained_input_size",
    "replace_head",
    "select_params",
    "set_frozen_state",
    "trainable_summary",
    "unfreeze",
]
