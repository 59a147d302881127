"""``ensemble``: combine trained bundles into one ``ensemble`` bundle, weights chosen on validation.

Members are PyTorch bundles (``classifier``, ``probe`` or another ``ensemble``) trained on the same
classes; they may differ in architecture, input size and normalisation. With ``data``, each
member's probabilities on the validation split are computed once and the weights are chosen by
greedy selection on the log-loss (:mod:`graft.ensembling.weights`); members left with weight 0
are dropped. Without ``data`` every member gets the same weight.

Pass the data, ``val_split`` and ``seed`` the members were fit with (the defaults are ``graft
fit``'s): the validation split is then the one they did not train on, since both carve it with
:func:`graft.data.scan_dataset` (a ``val/`` folder is used as it is).

Example:
    >>> r = ensemble(["runs/lite0/bundle", "runs/mnv2/bundle"], data="data/pets", out="runs/ens")  # doctest: +SKIP
    >>> r.weights  # doctest: +SKIP
    [0.6, 0.4]
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from graft.bundle import Bundle, load_bundle
from graft.data.dataset import ImageDataset, collate_skip
from graft.data.scan import scan_dataset
from graft.data.transforms import build_transforms
from graft.distributed import single_device
from graft.ensembling.model import EnsembleModel
from graft.ensembling.storage import save_ensemble_bundle, shared_data_config
from graft.ensembling.weights import Selection, choose_weights, equal_weights
from graft.errors import ConfigError, DataError
from graft.log import get_logger

log = get_logger("graft.ensembling")


@dataclass
class EnsembleResult:
    """Where the ensemble went, its members and weights, and how they were chosen."""

    path: Path
    members: list[str]
    weights: list[float]
    selection: dict[str, Any]
    dropped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        """One line per member plus the validation numbers."""
        lines = [f"ensemble -> {self.path} ({self.selection.get('method')})"]
        lines += [f"  {w:.3f}  {m}" for m, w in zip(self.members, self.weights, strict=True)]
        lines += [f"  0.000  {m} (dropped)" for m in self.dropped]
        if "val_acc" in self.selection and self.selection.get("rounds"):
            eq = self.selection["equal_weights"]
            lines.append(
                f"validation: accuracy {self.selection['val_acc']:.4f}, log-loss "
                f"{self.selection['val_log_loss']:.4f} (equal weights: {eq['val_acc']:.4f}, "
                f"{eq['val_log_loss']:.4f})"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": os.fspath(self.path),
            "members": self.members,
            "weights": self.weights,
            "dropped": self.dropped,
            "selection": self.selection,
            "seconds": self.seconds,
        }


def ensemble(
    bundles: Sequence[str | os.PathLike | Bundle],
    data: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    val_split: float = 0.1,
    seed: int = 0,
    rounds: int = 20,
    batch_size: int = 64,
    workers: int = 0,
    accelerator: str = "auto",
    devices: int | str = 1,
) -> EnsembleResult:
    """Write an ``ensemble`` bundle of ``bundles`` at ``out``; see the module docstring.

    Example:
        >>> ensemble(["a/bundle", "b/bundle"], out="runs/ens").weights  # doctest: +SKIP
        [0.5, 0.5]
    """
    start = time.perf_counter()
    if out is None:
        raise ConfigError(
            "out is required: the folder for the ensemble bundle, e.g. out='runs/ens'"
        )
    if rounds < 1:
        raise ConfigError(
            f"rounds must be at least 1 (20 gives weights in steps of 0.05), got {rounds}"
        )
    device = single_device(accelerator, devices, None, what="ensemble")
    members = load_members(bundles, device)
    if data is None:
        selection = equal_weights(len(members))
    else:
        probs, labels = validation_probs(members, data, val_split, seed, batch_size, workers)
        selection = choose_weights(probs, labels, rounds)
    kept = [(b, w) for b, w in zip(members, selection.weights, strict=True) if w > 0]
    dropped = [os.fspath(b.path) for b, w in zip(members, selection.weights, strict=True) if w <= 0]
    if dropped:
        log.info("dropped %d member(s) with weight 0: %s", len(dropped), dropped)
    metrics = None
    if selection.rounds:
        metrics = {"val_acc": selection.val_acc, "val_log_loss": selection.val_log_loss}
    path = save_ensemble_bundle(
        out, [b for b, _ in kept], [w for _, w in kept], metrics=metrics,
        selection=selection.to_dict(),
    )  # fmt: skip
    return EnsembleResult(
        path, [os.fspath(b.path) for b, _ in kept], [w for _, w in kept], selection.to_dict(),
        dropped, time.perf_counter() - start,
    )  # fmt: skip


def load_members(
    bundles: Sequence[str | os.PathLike | Bundle], device: str = "cpu"
) -> list[Bundle]:
    """Load the member bundles and check that they can form an ensemble (see the errors)."""
    if len(bundles) < 2:
        raise ConfigError(
            f"an ensemble needs at least two member bundles, got {len(bundles)} "
            f"({[os.fspath(getattr(b, 'path', b)) for b in bundles]}). Pass two or more bundle "
            "folders: graft ensemble runs/a/bundle runs/b/bundle --out runs/ens"
        )
    members = [b if isinstance(b, Bundle) else load_bundle(b, device=device) for b in bundles]
    first = members[0]
    for b in members:
        if not isinstance(b.model, nn.Module):
            raise ConfigError(
                f"{b.path} is a '{b.kind}' bundle; ensemble members must be PyTorch bundles "
                "(classifier, probe or ensemble) so that the ensemble exports to one ONNX graph. "
                f"Pass the bundle it was exported from ({(b.meta.get('source') or {}).get('path', '?')})."
            )
        if b.classes != first.classes:
            raise ConfigError(_classes_message(first, b))
        if int(b.data_config["input_size"][0]) != int(first.data_config["input_size"][0]):
            raise ConfigError(
                f"{b.path} takes {b.data_config['input_size'][0]}-channel images but {first.path} "
                f"takes {first.data_config['input_size'][0]}; members must read the same images. "
                "Fit them with the same --in-chans."
            )
    return members


def _classes_message(first: Bundle, other: Bundle) -> str:
    a, b = first.classes, other.classes
    if set(a) == set(b):
        detail = "the same classes in a different order"
    else:
        only_a, only_b = sorted(set(a) - set(b))[:5], sorted(set(b) - set(a))[:5]
        detail = f"classes only in the first: {only_a}, only in this one: {only_b}"
    return (
        f"{other.path} does not predict the same classes as {first.path} ({detail}); ensemble "
        "members must share one class list. Fit every member on the same data folder."
    )


def validation_probs(
    members: Sequence[Bundle],
    data: str | os.PathLike,
    val_split: float = 0.1,
    seed: int = 0,
    batch_size: int = 64,
    workers: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Each member's probabilities on the validation split of ``data``: ``(members, N, C)``, labels.

    Images go through the ensemble's own pipeline (shared decode, per-member resize and
    normalisation), so the weights are chosen on exactly what predict and serve will compute.
    """
    has_val = (Path(data) / "val").is_dir()  # a val/ folder is used as it is
    splits = scan_dataset(data, val_split=None if has_val else (val_split or None), seed=seed)
    classes = members[0].classes
    if splits.classes != classes:
        raise DataError(
            f"{data} has classes {splits.classes[:8]} but the members predict {classes[:8]}; "
            "choose the weights on the data the members were fit on."
        )
    if not splits.val:
        raise DataError(
            f"{data} has no validation images (no val/ folder and val_split={val_split}); pass "
            "--val-split 0.2 or a data folder with val/."
        )
    cfg = shared_data_config([b.data_config for b in members])
    model = EnsembleModel(
        [b.model for b in members], [b.data_config for b in members], [1.0] * len(members)
    ).eval()  # fmt: skip
    device = members[0].device
    model.to(device)  # the members are there already; the per-member mean/std buffers follow them
    transform = build_transforms(cfg, train=False, in_chans=int(cfg["input_size"][0]))
    dataset = ImageDataset(splits.val, transform, in_chans=int(cfg["input_size"][0]))
    loader = DataLoader(
        dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate_skip
    )
    probs, labels = [], []
    with torch.inference_mode():
        for batch in loader:
            if batch is None:
                continue
            probs.append(model.member_probs(batch[0].to(device)).cpu().numpy())
            labels.append(batch[1].numpy())
    if not probs:
        raise DataError(f"none of the {len(splits.val)} validation images of {data} could be read")
    log.info("ensemble weights chosen on %d validation images", sum(len(y) for y in labels))
    return np.concatenate(probs, axis=1), np.concatenate(labels)


__all__ = ["EnsembleResult", "Selection", "ensemble", "load_members", "validation_probs"]
