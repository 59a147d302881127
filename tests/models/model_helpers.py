"""Fixtures for graft.models tests: the tiny models every contract test runs over."""

from __future__ import annotations

import copy
import functools
import json

import pytest
import torch

from graft.models import create_model

# (name, extra kwargs, input size): timm test_* models and a torchvision model at random init
TINY = [
    ("test_efficientnet", {}, 32),
    ("test_resnet", {}, 32),
    ("test_vit", {"img_size": 32}, 32),
    ("tv:resnet18", {}, 32),
]
TINY_IDS = [t[0] for t in TINY]
WITH_BN = [t for t in TINY if t[0] != "test_vit"]


@pytest.fixture(params=TINY, ids=TINY_IDS)
def tiny(request):
    """``(name, kwargs, size)`` of one tiny model."""
    return request.param


def batch(size: int, n: int = 2, chans: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, chans, size, size, generator=g)


@functools.cache
def _built(name: str, kwargs_json: str, num_classes: int, extra_json: str):
    torch.manual_seed(0)
    return create_model(
        name,
        num_classes=num_classes,
        pretrained=False,
        **json.loads(kwargs_json),
        **json.loads(extra_json),
    )


def make(name: str, kwargs: dict, num_classes: int = 5, **extra) -> torch.nn.Module:
    """A randomly initialised model (seed 0), built once per session and deep-copied for each test."""
    return copy.deepcopy(
        _built(
            name, json.dumps(kwargs, sort_keys=True), num_classes, json.dumps(extra, sort_keys=True)
        )
    )
