"""The optimizer: one parameter group per (model group, with/without weight decay), fixed for a run.

Every parameter of the model is in the optimizer from the first step; a frozen group simply has
``requires_grad=False`` (no gradient, so AdamW/SGD skip it) and learning rate 0. The layout therefore
never changes when groups are unfrozen, and it is recorded by parameter *name* (``layout``) so a
resumed run can check it rebuilt exactly the same optimizer. Norm weights and biases (1-d tensors)
get no weight decay.

Example:
    >>> import timm
    >>> from graft.train.groups import ModelGroups
    >>> model = timm.create_model("test_efficientnet", num_classes=3)
    >>> opt, layout = build_optimizer(model, ModelGroups.of(model), "adamw", weight_decay=0.01)
    >>> layout[0]["group"], layout[0]["decay"], len(opt.param_groups) == len(layout)
    (0, True, True)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from graft.errors import ConfigError
from graft.train.groups import ModelGroups


def build_optimizer(
    model: nn.Module,
    groups: ModelGroups,
    name: str = "adamw",
    weight_decay: float = 0.01,
    momentum: float = 0.9,
) -> tuple[torch.optim.Optimizer, list[dict[str, Any]]]:
    """(optimizer, layout); ``layout[j]`` = {"group", "decay", "names"} of ``optimizer.param_groups[j]``."""
    params = dict(model.named_parameters())
    missing = sorted(set(params) - set(groups.group_of()))
    if missing:
        raise ConfigError(
            f"{len(missing)} parameters belong to no group (e.g. {missing[0]}); the model's group_matcher is incomplete."
        )
    layout, torch_groups = [], []
    for index, names in enumerate(groups.params):
        for decay in (True, False):
            chosen = [n for n in names if (params[n].ndim > 1) == decay]
            if not chosen:
                continue
            layout.append({"group": index, "decay": decay, "names": chosen})
            torch_groups.append(
                {
                    "params": [params[n] for n in chosen],
                    "weight_decay": weight_decay if decay else 0.0,
                    "lr": 0.0,
                }
            )
    if name == "adamw":
        return torch.optim.AdamW(torch_groups, lr=0.0, weight_decay=weight_decay), layout
    if name == "sgd":
        return torch.optim.SGD(torch_groups, lr=0.0, momentum=momentum, nesterov=True), layout
    raise ConfigError(f"optimizer '{name}' is not supported; use adamw or sgd.")
