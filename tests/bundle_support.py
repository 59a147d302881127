"""A tiny untrained classifier and its bundle, for the tests that read bundles (inference, serve,
ensemble): one definition, so that every area tests the same model.

The head's weights are spread out (normal, std 0.5) so that outputs differ clearly between inputs.
Each area keeps its own ``data_config`` (serve's crops and normalises differently on purpose).

Example:
    >>> from bundle_support import CLASSES, tiny_bundle
    >>> path = tiny_bundle(tmp_path / "bundle", DATA_CONFIG)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from graft.bundle import save_bundle
from graft.models import create_model

CLASSES = ["blue", "green", "red"]


def tiny_model(seed: int = 0, classes: Sequence[str] = CLASSES) -> torch.nn.Module:
    """A ``test_efficientnet`` from graft.models (it carries ``graft_spec``), seeded, in eval mode."""
    torch.manual_seed(seed)
    model = create_model("test_efficientnet", num_classes=len(classes), pretrained=False).eval()
    with torch.no_grad():  # a spread-out head, so that outputs differ clearly between inputs
        torch.nn.init.normal_(model.get_classifier().weight, std=0.5)
    return model


def tiny_bundle(
    dest: Path, data_config: Mapping[str, Any], seed: int = 0, **save_options: Any
) -> Path:
    """:func:`tiny_model` saved as a bundle at ``dest`` with :data:`CLASSES`."""
    return save_bundle(dest, tiny_model(seed), CLASSES, data_config, **save_options)
