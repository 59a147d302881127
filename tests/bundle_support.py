"""A tiny untrained classifier and its bundle, for the tests that read bundles (inference, serve,
ensemble): one definition, so that every area tests the same model. Also the check that a saved
probe bundle reloads without pickle and predicts as the probe did (features tests).

The head's weights are spread out (normal, std 0.5) so that outputs differ clearly between inputs.
Each area keeps its own ``data_config`` (serve's crops and normalises differently on purpose).

Example:
    >>> from bundle_support import CLASSES, tiny_bundle
    >>> path = tiny_bundle(tmp_path / "bundle", DATA_CONFIG)  # doctest: +SKIP
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from graft.bundle import Bundle, load_bundle, save_bundle
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


def forbid_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every unpickling entry point (and ``torch.load``) fail for the rest of the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("pickle used while loading a probe bundle")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)


def assert_probe_bundle_predicts_like(
    path: Path, result: Any, monkeypatch: pytest.MonkeyPatch
) -> Bundle:
    """Load the probe bundle at ``path`` with pickle forbidden; on ``result``'s (a ProbeResult) raw
    images its predictions equal the fitted probe's on the features. Returns the bundle."""
    from graft.data import build_transforms, load_image

    forbid_pickle(monkeypatch)
    bundle = load_bundle(path)
    transform = build_transforms(bundle.data_config, train=False)
    batch = torch.stack([transform(load_image(f, "RGB")) for f in result.features.files])
    np.testing.assert_array_equal(
        bundle.logits(batch).argmax(1).numpy(), result.probe.predict(result.features.flat())
    )
    return bundle
