"""Frozen-prefix caching: compute the frozen first layers once per image, train only the rest.

When the first groups of a model are frozen (:func:`graft.models.freeze`, ``bn="frozen"`` so their
BatchNorm uses stored statistics) and their input is not randomly augmented, they map each image to
the same activations in every epoch. :func:`split_frozen_prefix` cuts the model into

- ``prefix``: the leading frozen units (a sequential view of the model's top-level modules in
  execution order, ``nn.Sequential`` containers such as EfficientNet's ``blocks`` expanded into
  their stages), and
- ``suffix``: the remaining feature units followed by the model's own ``forward_head`` (sharing the
  model's parameters, so training the suffix trains the model),

and VERIFIES on a random input that ``suffix(prefix(x)) == model(x)`` (eval mode) and that the
units reproduce ``forward_features``. Models whose forward is not such a sequence (a ViT adds
position embeddings between modules) are refused with a logged reason (``None`` is returned), and
the caller trains uncached. :func:`cache_prefix_outputs` then runs the prefix once over a loader
(in memory, or in a memory-mapped ``.npy`` on disk), optionally over ``views`` augmented passes.

Example:
    >>> import graft.models as gm, torch
    >>> m = gm.create_model("test_resnet", num_classes=3, pretrained=False)
    >>> _ = gm.freeze(m, upto=2)
    >>> split = split_frozen_prefix(m)
    >>> split.names[-1], tuple(split.suffix(split.prefix(torch.zeros(2, 3, 32, 32))).shape)
    ('layer1', (2, 3))
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from graft.log import get_logger

log = get_logger("graft.features")

STOCHASTIC = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


@dataclass
class PrefixSplit:
    """A verified cut of a model: ``suffix(prefix(x))`` equals ``model(x)``."""

    prefix: nn.Sequential
    suffix: nn.Module
    names: list[str]  # module names of the prefix units, in order
    suffix_names: list[str]


class Suffix(nn.Module):
    """The trainable rest of a model: feature units after the prefix, then ``model.forward_head``."""

    def __init__(self, model: nn.Module, units: Iterable[nn.Module]) -> None:
        super().__init__()
        self.units = nn.Sequential(*units)
        self.model = [model]  # a list: keep the model out of this module's children and state_dict

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model[0].forward_head(self.units(x))


def split_frozen_prefix(
    model: nn.Module, input_size: tuple[int, ...] | None = None, atol: float = 1e-5
) -> PrefixSplit | None:
    """Cut ``model`` after its leading frozen units; ``None`` (reason logged) when that is not possible.

    ``input_size`` (``C, H, W``) is the random probe input used for the check (default: a small size
    from ``model.pretrained_cfg``).

    Example:
        >>> split = split_frozen_prefix(model)  # doctest: +SKIP
        >>> cached = cache_prefix_outputs(split.prefix, train_loader)  # doctest: +SKIP
    """
    units = sequential_units(model)
    x = _probe_input(model, input_size)
    n_features = _feature_unit_count(model, units, x, atol)
    if n_features is None:
        return _refuse(
            model, "its forward_features is not a plain sequence of its top-level modules"
        )
    units = units[:n_features]
    cut = _frozen_count(units)
    if cut == 0:
        return _refuse(model, "its first module has trainable parameters (nothing frozen to cache)")
    reason = _unsafe_prefix(units[:cut])
    if reason:
        return _refuse(model, reason)
    split = PrefixSplit(
        prefix=nn.Sequential(*(m for _, m in units[:cut])).eval(),
        suffix=Suffix(model, (m for _, m in units[cut:])),
        names=[n for n, _ in units[:cut]],
        suffix_names=[n for n, _ in units[cut:]],
    )
    if not _same_output(model, split, x, atol):
        return _refuse(model, "suffix(prefix(x)) differs from model(x) on a random input")
    log.info(
        "frozen prefix: %s (%d units) cached; training %s + head",
        split.names[-1],
        cut,
        split.suffix_names or "nothing",
    )
    return split


def sequential_units(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Top-level modules in registration order, ``nn.Sequential`` containers expanded (recursively)."""
    out: list[tuple[str, nn.Module]] = []

    def visit(prefix: str, module: nn.Module) -> None:
        for name, child in module.named_children():
            full = f"{prefix}{name}"
            if type(child) is nn.Sequential and len(child) > 0:
                visit(f"{full}.", child)
            else:
                out.append((full, child))

    visit("", model)
    return out


def _probe_input(model: nn.Module, input_size: tuple[int, ...] | None) -> torch.Tensor:
    if input_size is None:
        cfg = getattr(model, "pretrained_cfg", None) or {}
        chans = int(
            (getattr(model, "graft_spec", None) or {}).get(
                "in_chans", cfg.get("input_size", (3,))[0]
            )
        )
        side = min(int(cfg.get("input_size", (3, 64, 64))[-1]), 64)
        input_size = (chans, side, side)
    gen = torch.Generator().manual_seed(0)
    return torch.randn(2, *input_size, generator=gen)


@torch.no_grad()
def _feature_unit_count(model, units, x, atol) -> int | None:
    """How many leading units reproduce ``forward_features(x)``; None when no prefix does."""
    was = model.training
    model.eval()
    try:
        target = model.forward_features(x)
        h = x
        for i, (_, unit) in enumerate(units):
            try:
                h = unit(h)
            except Exception:  # noqa: BLE001  a unit that cannot take the previous output: not sequential
                return None
            if h.shape == target.shape and torch.allclose(h, target, atol=atol, rtol=1e-4):
                return i + 1
        return None
    finally:
        model.train(was)


def _frozen_count(units: list[tuple[str, nn.Module]]) -> int:
    """Leading units whose parameters are all frozen (parameter-free units join the prefix)."""
    cut = 0
    for i, (_, unit) in enumerate(units):
        if any(p.requires_grad for p in unit.parameters()):
            break
        cut = i + 1
    # do not end on parameter-free units that only precede trainable ones: keep them cheap in the cache
    return cut


def _unsafe_prefix(units: list[tuple[str, nn.Module]]) -> str | None:
    """A reason why the prefix is not deterministic in train mode, or None."""
    for name, unit in units:
        for sub_name, m in unit.named_modules():
            full = f"{name}.{sub_name}".rstrip(".")
            if isinstance(m, nn.modules.batchnorm._NormBase) and not _bn_held_in_eval(m):
                return f"BatchNorm '{full}' in the frozen part uses batch statistics (freeze with bn='frozen')"
            if isinstance(m, STOCHASTIC) and m.p > 0:
                return f"dropout '{full}' (p={m.p}) in the frozen part is random in training"
            if float(getattr(m, "drop_prob", 0.0) or 0.0) > 0:
                return f"stochastic depth '{full}' in the frozen part is random in training"
    return None


def _bn_held_in_eval(module: nn.Module) -> bool:
    from graft.models.freezing import is_frozen_bn

    return is_frozen_bn(module)


@torch.no_grad()
def _same_output(model: nn.Module, split: PrefixSplit, x: torch.Tensor, atol: float) -> bool:
    was = model.training
    model.eval()
    try:
        return torch.allclose(split.suffix(split.prefix(x)), model(x), atol=atol, rtol=1e-4)
    finally:
        model.train(was)


def _refuse(model: nn.Module, reason: str) -> None:
    log.info(
        "frozen-prefix cache not used for %s: %s; training uncached", type(model).__name__, reason
    )
    return None


# ----------------------------------------------------------------------------------- the cache


class CachedPrefixDataset(Dataset):
    """Cached prefix outputs with labels: ``(activation, label)``; ``views`` passes per image.

    With several cached augmented views, :meth:`set_epoch` picks view ``epoch % views``.
    """

    def __init__(self, outputs: Any, labels: torch.Tensor, views: int = 1) -> None:
        self.outputs = outputs  # tensor (views, N, ...) or numpy memmap of the same shape
        self.labels = labels
        self.views = views
        self.view = 0

    def set_epoch(self, epoch: int) -> None:
        self.view = int(epoch) % self.views

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.outputs[self.view][i]
        return (
            torch.from_numpy(np.array(out)) if isinstance(out, np.ndarray) else out
        ), self.labels[i]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.outputs.shape)) * 4


@torch.no_grad()
def cache_prefix_outputs(
    prefix: nn.Module,
    loader: DataLoader,
    views: int = 1,
    out: str | os.PathLike | None = None,
    progress: bool = False,
) -> CachedPrefixDataset:
    """Run ``prefix`` (eval mode) over ``loader`` ``views`` times; keep outputs in memory or in ``out``.

    ``loader`` must not shuffle (row i is image i). With ``views > 1`` its dataset should apply a
    random train transform: each pass stores one augmented view. ``out`` (a ``.npy`` path) keeps the
    activations on disk, memory-mapped, for datasets larger than memory.

    Example:
        >>> ds = cache_prefix_outputs(split.prefix, DataLoader(train_ds, batch_size=64))  # doctest: +SKIP
        >>> x, y = ds[0]  # doctest: +SKIP
    """
    from graft.runtime import tune_allocator

    tune_allocator()
    prefix.eval()
    store, labels = None, []
    for view in range(views):
        row = 0
        for batch in loader:
            if batch is None:
                continue
            x, y = batch[0], batch[1]
            h = prefix(x).float().cpu()
            if store is None:
                n = len(loader.dataset)
                store = _allocate((views, n, *h.shape[1:]), out)
            store[view, row : row + len(h)] = h.numpy() if isinstance(store, np.ndarray) else h
            row += len(h)
            if view == 0:
                labels.append(torch.as_tensor(y))
        if store is not None and row < store.shape[1]:  # unreadable images were dropped
            store = store[:, :row]
    if store is None:
        raise ValueError("the loader yielded no images to cache")
    if isinstance(store, np.memmap):
        store.flush()
        store = _publish(store, out)
    return CachedPrefixDataset(store, torch.cat(labels), views)


def build_prefix_cache(
    model: nn.Module,
    dataset: Dataset,
    batch_size: int = 64,
    workers: int = 0,
    views: int = 1,
    out: str | os.PathLike | None = None,
) -> tuple[PrefixSplit, CachedPrefixDataset] | None:
    """Split ``model`` and cache its frozen prefix over ``dataset`` (in order); None when not cacheable.

    This is the one call a trainer needs: train ``split.suffix`` (it shares the model's parameters)
    on the returned dataset instead of ``model`` on ``dataset``. ``dataset`` yields ``(image, label)``
    (``None`` for unreadable images) with a deterministic transform, or a random one with ``views > 1``.

    Example:
        >>> built = build_prefix_cache(model, train_dataset)  # doctest: +SKIP
        >>> if built: split, cached = built  # doctest: +SKIP
    """
    from graft.data import collate_skip

    split = split_frozen_prefix(model)
    if split is None:
        return None
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=collate_skip
    )
    return split, cache_prefix_outputs(split.prefix, loader, views=views, out=out)


def _allocate(shape: tuple[int, ...], out: Any) -> Any:
    if out is None:
        return torch.empty(shape, dtype=torch.float32)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    return np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)


def _publish(store: np.memmap, out: Any) -> np.ndarray:
    """Rename the finished temporary file into place and reopen it read-only, memory-mapped."""
    path = Path(out)
    tmp = path.with_name(f".{path.name}.tmp")
    rows = store.shape[1]
    del store
    os.replace(tmp, path)
    data = np.load(path, mmap_mode="r")
    return data[:, :rows]
