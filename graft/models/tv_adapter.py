"""Torchvision classifiers behind timm's model contract, with torchvision's parameter names.

The adapter takes over the torchvision model's own sub-modules and parameters under the same names,
so ``features.0.weight`` or ``classifier.6.weight`` read exactly as in torchvision and torchvision
state dicts load unchanged. What differs per family (where the classifier sits, how features are
pooled) is one :class:`Family` row.

Example:
    >>> m = build_tv_model("vgg11", num_classes=10)
    >>> m.get_classifier()
    Linear(in_features=4096, out_features=10, bias=True)
    >>> m.forward_head(m.forward_features(torch.zeros(1, 3, 32, 32)), pre_logits=True).shape
    torch.Size([1, 4096])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from graft.errors import ConfigError
from graft.models.heads import head_in_features, head_spec, make_head

MATCH_PREV = (
    99999,
)  # timm: merge into the previous group (e.g. the final norm with the last block)


@dataclass(frozen=True)
class Family:
    """How one torchvision family maps onto the contract.

    ``features``: children applied in order by ``forward_features``; ``pool``: ``"avgpool"`` (the
    model's ``avgpool`` module, then flatten), ``"avgpool_keep"`` (no flatten, the classifier does it),
    ``"mean"`` (global average) or ``"cls"`` (class token); ``fc``: path of the final classifier;
    ``first_conv``: path of the input convolution; ``matcher``: timm-style ``group_matcher``.
    """

    features: tuple[str, ...]
    pool: str
    fc: str
    first_conv: str
    matcher: dict[str, Any]
    relu_after_features: bool = False
    copy_attrs: tuple[str, ...] = field(default=())


_FEATURES_MATCHER = {"stem": r"^features\.0\.", "blocks": r"^features\.(\d+)\."}
_RESNET = Family(
    ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"), "avgpool", "fc", "conv1",
    {"stem": r"^conv1\.|^bn1\.", "blocks": r"^layer(\d+)\.(\d+)\."},
)  # fmt: skip
_VGG = Family(("features",), "avgpool", "classifier.6", "features.0", _FEATURES_MATCHER)

FAMILIES: dict[str, Family] = {
    "resnet": _RESNET,
    "resnext": _RESNET,
    "wide_resnet": _RESNET,
    "vgg": _VGG,
    "alexnet": Family(("features",), "avgpool", "classifier.6", "features.0", _FEATURES_MATCHER),
    "mobilenet_v2": Family(
        ("features",), "mean", "classifier.1", "features.0.0", _FEATURES_MATCHER
    ),
    "mobilenet_v3": Family(
        ("features",), "avgpool", "classifier.3", "features.0.0", _FEATURES_MATCHER
    ),
    "efficientnet": Family(
        ("features",), "avgpool", "classifier.1", "features.0.0", _FEATURES_MATCHER
    ),
    "convnext": Family(
        ("features",), "avgpool_keep", "classifier.2", "features.0.0", _FEATURES_MATCHER
    ),
    "densenet": Family(
        ("features",),
        "mean",
        "classifier",
        "features.conv0",
        {
            "stem": r"^features\.(?:conv0|norm0)\.",
            "blocks": [
                (r"^features\.(?:denseblock|transition)(\d+)\.", None),
                (r"^features\.norm5\.", MATCH_PREV),
            ],
        },
        relu_after_features=True,
    ),  # fmt: skip
    "regnet": Family(
        ("stem", "trunk_output"),
        "avgpool",
        "fc",
        "stem.0",
        {"stem": r"^stem\.", "blocks": r"^trunk_output\.block(\d+)\.block\d+-(\d+)\."},
    ),  # fmt: skip
    "shufflenet": Family(
        ("conv1", "maxpool", "stage2", "stage3", "stage4", "conv5"),
        "mean",
        "fc",
        "conv1.0",
        {"stem": r"^conv1\.", "blocks": [(r"^stage(\d+)\.", None), (r"^conv5\.", MATCH_PREV)]},
    ),  # fmt: skip
    "mnasnet": Family(
        ("layers",),
        "mean",
        "classifier.1",
        "layers.0",
        {"stem": r"^layers\.[0-7]\.", "blocks": r"^layers\.(\d+)\."},
    ),  # fmt: skip
    "swin": Family(
        ("features", "norm", "permute"),
        "avgpool",
        "head",
        "features.0.0",
        {
            "stem": r"^features\.0\.",
            "blocks": [(r"^features\.(\d+)\.", None), (r"^norm\.", MATCH_PREV)],
        },
    ),  # fmt: skip
    "vit": Family(
        (),
        "cls",
        "heads.head",
        "conv_proj",
        {
            "stem": r"^class_token|^conv_proj\.|^encoder\.pos_embedding",
            "blocks": [
                (r"^encoder\.layers\.encoder_layer_(\d+)\.", None),
                (r"^encoder\.ln\.", MATCH_PREV),
            ],
        },
        copy_attrs=("image_size", "patch_size", "hidden_dim"),
    ),  # fmt: skip
}
UNSUPPORTED_HINT = {
    "squeezenet": "timm has no squeezenet; try 'tv:mobilenet_v2' or 'mobilenetv3_small_100'",
    "googlenet": "use timm 'inception_v3' or 'tv:resnet50'",
    "inception": "use timm 'inception_v3'",
    "maxvit": "use timm 'maxvit_tiny_tf_224'",
}


def family_of(arch: str) -> Family:
    """The :class:`Family` of a torchvision architecture name; unsupported ones raise with a hint."""
    for prefix in sorted(FAMILIES, key=len, reverse=True):
        if arch.startswith(prefix):
            return FAMILIES[prefix]
    hint = next(
        (h for p, h in UNSUPPORTED_HINT.items() if arch.startswith(p)), "use its timm equivalent"
    )
    supported = ", ".join(sorted(FAMILIES))
    raise ConfigError(
        f"torchvision model '{arch}' is not supported by graft's adapter ({hint}). Supported families: {supported}."
    )


class TorchvisionAdapter(nn.Module):
    """A torchvision classifier exposing timm's contract, keeping torchvision's parameter names."""

    def __init__(self, tv_model: nn.Module, arch: str, family: Family):
        super().__init__()
        for name, param in tv_model._parameters.items():
            self.register_parameter(name, param)
        for name, buf in tv_model._buffers.items():
            self.register_buffer(name, buf)
        for name, child in tv_model.named_children():
            self.add_module(name, child)
        for attr in family.copy_attrs:
            setattr(self, attr, getattr(tv_model, attr))
        self.arch, self.family = arch, family
        fc = self.get_submodule(family.fc)
        self.num_features = head_in_features(fc)
        self.num_classes = fc.out_features
        self.head_spec: dict[str, Any] = {"type": "linear"}

    # -- the contract --------------------------------------------------------------------------
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Unpooled features: ``B,C,H,W`` for CNNs, tokens ``B,N,D`` for ViT."""
        if self.family.pool == "cls":
            return self._vit_tokens(x)
        for name in self.family.features:
            x = self.get_submodule(name)(x)
        if self.family.relu_after_features:
            x = nn.functional.relu(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool and classify; ``pre_logits=True`` returns the ``num_features`` vector before the classifier."""
        x = self._pool(x)
        for module in self._pre_logits_modules():
            x = module(x)
        return x if pre_logits else self.get_classifier()(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.get_submodule(self.family.fc)

    def reset_classifier(
        self, num_classes: int, global_pool: str | None = None, head: str | dict | None = None
    ) -> None:
        """Replace the classifier by a fresh one (small init) for ``num_classes``; keeps the head type.

        ``global_pool`` is accepted for timm compatibility; only the family's own pooling exists here.
        """
        if global_pool not in (None, "avg", "token"):
            raise ConfigError(
                f"global_pool={global_pool!r} is not available for torchvision '{self.arch}'; it pools with its own layer."
            )
        if head is not None:
            self.head_spec = head_spec(head)
        self.set_submodule(
            self.family.fc, make_head(self.head_spec, self.num_features, num_classes)
        )
        self.num_classes = num_classes
        if isinstance(getattr(self, "graft_spec", None), dict):
            self.graft_spec = {
                **self.graft_spec,
                "num_classes": num_classes,
                "head": dict(self.head_spec),
            }

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(self.family.matcher)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        if enable:
            raise ConfigError(
                f"gradient checkpointing is not available for torchvision '{self.arch}'; use a timm model."
            )

    # -- helpers -------------------------------------------------------------------------------
    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        kind = self.family.pool
        if kind == "cls":
            return x[:, 0]
        if kind == "mean":
            return x.mean(dim=(2, 3))
        x = self.avgpool(x)
        return x if kind == "avgpool_keep" else torch.flatten(x, 1)

    def _pre_logits_modules(self) -> list[nn.Module]:
        parent, _, _ = self.family.fc.rpartition(".")
        if not parent:
            return []
        container = self.get_submodule(parent)
        return list(container.children())[:-1]

    def _vit_tokens(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        x = self.conv_proj(x).reshape(n, self.hidden_dim, -1).permute(0, 2, 1)
        x = torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)
        return self.encoder(x)


def build_tv_model(
    arch: str, num_classes: int = 1000, in_chans: int = 3, head: Any = None, **kwargs: Any
) -> TorchvisionAdapter:
    """Build a randomly initialised torchvision architecture wrapped in :class:`TorchvisionAdapter`.

    The classifier is built for 1000 classes (so ImageNet weights load as they are) and then
    replaced when ``num_classes`` or ``head`` differ; ``in_chans`` replaces the first convolution.
    """
    from torchvision.models import get_model

    family = family_of(arch)
    model = TorchvisionAdapter(get_model(arch, weights=None, **kwargs), arch, family)
    spec = head_spec(head)
    if num_classes != model.num_classes or spec["type"] != "linear":
        model.reset_classifier(num_classes, head=spec)
    if in_chans != 3:
        replace_first_conv(model, family.first_conv, in_chans)
    return model


def replace_first_conv(model: nn.Module, path: str, in_chans: int) -> None:
    """Swap the convolution at ``path`` for one taking ``in_chans`` channels (random init)."""
    old = model.get_submodule(path)
    if not isinstance(old, nn.Conv2d):
        raise ConfigError(
            f"cannot change input channels: '{path}' is {type(old).__name__}, not Conv2d."
        )
    new = nn.Conv2d(
        in_chans, old.out_channels, old.kernel_size, old.stride, old.padding, old.dilation,
        old.groups if old.groups == 1 else in_chans, old.bias is not None, old.padding_mode,
    )  # fmt: skip
    model.set_submodule(path, new)
