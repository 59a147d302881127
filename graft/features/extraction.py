"""``extract``: run a pretrained backbone over a dataset once and keep its features.

Pooled vectors (``pool="avg"|"max"``) or spatial maps (``pool="none"``) from the last stage or any
layer (see :mod:`graft.features.layers`), in eval mode under ``torch.inference_mode``, batched, with
DataLoader workers decoding ahead, and the allocator tuned (:func:`graft.runtime.tune_allocator`).
With ``out`` the features go to a feature store (:mod:`graft.features.store`) shard by shard: an
interrupted run resumes, and a rerun only extracts images whose content changed.

Example:
    >>> import graft
    >>> f = graft.extract("data/pets", model="efficientnet_lite0", image_size=128)  # doctest: +SKIP
    >>> f.features.shape, f.files[0], f.classes[f.labels[0]]  # doctest: +SKIP
    ((3680, 1280), 'data/pets/train/cat/001.jpg', 'cat')
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from graft import distributed
from graft.errors import ConfigError, DataError
from graft.features.arrays import Features
from graft.features.assembly import run_extraction
from graft.features.layers import LayerReader
from graft.features.runner import Runner
from graft.features.store import FeatureStore
from graft.io import check_out_folder
from graft.log import get_logger
from graft.runtime import tune_allocator

log = get_logger("graft.features")

DEFAULT_MODEL = "efficientnet_lite0"
SHARD_ROWS = 1024


def extract(
    data: str | os.PathLike | Any,
    model: str | nn.Module = DEFAULT_MODEL,
    layer: int | str | None = None,
    pool: str = "avg",
    image_size: int | Sequence[int] | None = None,
    batch_size: int = 64,
    workers: int | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = True,
    weights: str = "pretrained",
    accelerator: str = "auto",
    devices: int | str = "auto",
    progress: bool = True,
    shard_rows: int = SHARD_ROWS,
    model_args: Mapping[str, Any] | None = None,
    pretrained: bool | None = None,
    device: str | None = None,
) -> Features:
    """Extract features of every image in ``data`` (a folder, a CSV, or :class:`graft.data.Splits`).

    ``model``: a name for :func:`graft.create_model` or a model that follows the timm contract.
    ``layer``: ``None`` (last stage), a stage index into ``model.feature_info`` or a module name.
    ``pool``: ``avg`` / ``max`` give vectors, ``none`` keeps maps (a ResNet at 256 px: 8x8).
    ``out``: a folder for the feature store; ``resume=False`` ignores what is stored there.
    ``weights``: ``"pretrained"``, ``"none"`` (random init) or a weights file.
    ``accelerator`` / ``devices``: as in Lightning; ``devices=N`` on the CPU (or N GPUs) runs N
    processes, each extracting a shard of the images, rank 0 writing the store (a temporary one
    without ``out``).
    Inside a process group (``torchrun``) each rank extracts its shard on its own device.
    (``pretrained=`` and ``device=`` are the old spellings, kept for one release.)
    ``model_args``: extra arguments for :func:`graft.create_model` when ``model`` is a name, e.g. for
    a hybrid ``{"fusion": "gated", "pretrained": {"cnn": True, "vit": False}}`` (a ``pretrained``
    given here decides unless ``weights="none"``).

    Example:
        >>> f = extract("data/pets", model="test_resnet", pool="none", image_size=256,
        ...             weights="none")  # doctest: +SKIP
        >>> f.features.shape[-2:]  # doctest: +SKIP
        (8, 8)
        >>> f = extract("data/pets", model="efficientnet_lite0+vit_tiny_patch16_224",
        ...             model_args={"pretrained": {"cnn": True, "vit": False},
        ...                         "branch_kwargs": {"vit": {"img_size": 64}}})  # doctest: +SKIP
        >>> f.features.shape[1]  # the fused width: 1280 (Lite0) + 192 (ViT-Tiny)  # doctest: +SKIP
        1472
    """
    weights = resolve_weights(weights, pretrained)
    hw = _hardware(accelerator, devices, device)
    if hw.processes > 1 and not distributed.is_initialized():
        kwargs = dict(model=model, layer=layer, pool=pool, image_size=image_size,
                      batch_size=batch_size, workers=workers, resume=resume,
                      weights=weights, accelerator=accelerator, devices=devices,
                      progress=progress, shard_rows=shard_rows, model_args=model_args)  # fmt: skip
        return _spawned(data, out, hw.processes, kwargs)
    device = hw.device() if distributed.is_initialized() else hw.device(0)
    tune_allocator()
    if out is not None:  # before any work: a file, an unwritable place, inside the data folder
        check_out_folder(out, data if isinstance(data, (str, os.PathLike)) else None)
    net, name = _load_model(model, weights, model_args, image_size)
    splits = _scan(data)
    samples = _tagged_samples(splits)
    data_cfg = _data_config(net, image_size)
    reader = LayerReader(net, layer, pool).to(device).eval()
    settings = _settings(name, net, reader, data_cfg)
    store = _open_store(out, settings, splits.classes, resume)
    bars = progress and distributed.is_rank_zero()  # one progress bar under several processes
    runner = Runner(reader, data_cfg, batch_size, _workers(workers), device, bars)
    skipped = [(os.fspath(p), str(r)) for p, r in getattr(splits, "skipped", [])]
    return run_extraction(store, samples, splits.classes, settings, runner, shard_rows, skipped)


# ----------------------------------------------------------------------------------- set-up steps


def resolve_weights(weights: str, pretrained: bool | None = None) -> str:
    """``weights`` (pretrained | none | PATH), or the old ``pretrained=True/False`` with a warning.

    Example:
        >>> resolve_weights("none")
        'none'
    """
    if pretrained is not None:
        from graft.options import warn_deprecated

        warn_deprecated("pretrained=", "weights='pretrained' or weights='none'")
        return "pretrained" if pretrained else "none"
    return str(weights)


def _hardware(accelerator: str, devices: Any, device: str | None) -> Any:
    if device is not None:  # the old torch device string: cpu, cuda, cuda:1
        from graft.options import warn_deprecated

        warn_deprecated("device=", "accelerator= and devices=")
        kind, _, index = str(device).partition(":")
        accelerator, devices = kind, (f"{index}," if index else 1)
    return distributed.hardware(accelerator, devices)


def _spawned(data: Any, out: Any, processes: int, kwargs: dict[str, Any]) -> Features:
    """Extract in ``processes`` spawned processes (rank 0 writes the store); read the store back.

    Without ``out`` the store is a temporary folder, removed once its rows are in memory.
    """
    import tempfile

    if out is not None:
        distributed.spawn(_extract_rank, processes, data, {**kwargs, "out": out})
        return Features.load(out)
    with tempfile.TemporaryDirectory(prefix="graft-extract-") as tmp:
        distributed.spawn(_extract_rank, processes, data, {**kwargs, "out": tmp})
        features = Features.load(tmp)
    features.path = None
    return features


def _extract_rank(data: Any, kwargs: dict[str, Any]) -> None:
    """One spawned process of :func:`extract` (its shard of the images)."""
    extract(data, **kwargs)


def _load_model(
    model: str | nn.Module,
    weights: str,
    model_args: Mapping[str, Any] | None = None,
    image_size: Any = None,
) -> tuple[nn.Module, str]:
    """The model (built from its name, or as given) and its name. A hybrid name is built for
    ``image_size`` like in ``graft fit`` (every branch computes at it, unless ``model_args`` gives
    a branch its own size: graft.hybrid.sizes)."""
    if isinstance(model, nn.Module):
        if model_args:
            raise ConfigError(
                "model_args only apply when model is a name; this model is already built "
                f"({type(model).__name__}). Build it with those arguments, or pass its name."
            )
        spec = getattr(model, "graft_spec", None) or {}
        return model, str(spec.get("name", type(model).__name__))
    from graft.models import create_model
    from graft.models.factory import no_pretrained

    kwargs = dict(model_args or {})
    wanted = kwargs.pop("pretrained", True)
    pretrained = no_pretrained(wanted) if weights == "none" else wanted
    if weights not in ("pretrained", "none"):
        kwargs["weights"] = weights  # a weights file
    if "+" in str(model) and image_size is not None:
        kwargs.setdefault("image_size", image_size)
    return create_model(str(model), num_classes=0, pretrained=pretrained, **kwargs), str(model)


def _scan(data: Any) -> Any:
    if hasattr(data, "classes") and hasattr(data, "train"):
        return data
    from graft.data import scan_dataset

    return scan_dataset(data, verify=False)


def _tagged_samples(splits: Any) -> list[tuple[str, int, str]]:
    out = []
    for split in ("train", "val", "test"):
        out += [(os.fspath(p), int(y), split) for p, y in getattr(splits, split)]
    if not out:
        raise DataError(f"no images found in {getattr(splits, 'source', 'the dataset')}.")
    return out


def _data_config(model: nn.Module, image_size: Any) -> dict[str, Any]:
    from graft.data import resolve_data_config

    cfg = getattr(model, "pretrained_cfg", None) or {}
    in_chans = int(getattr(model, "graft_spec", {}).get("in_chans", 3))
    return resolve_data_config(cfg, image_size=image_size, in_chans=in_chans)


def _settings(name: str, model: nn.Module, reader: LayerReader, data_cfg: dict) -> dict[str, Any]:
    """Everything that decides the features: a store made with other settings is not reused."""
    settings = {
        "model": name,
        "spec": dict(getattr(model, "graft_spec", None) or {"name": name}),
        "weights_sha256": weights_hash(model),
        "layer": reader.layer,
        "pool": reader.pool,
        "data_config": dict(sorted(data_cfg.items())),
    }
    return json.loads(json.dumps(settings, default=str))  # as it reads back from the manifest


def weights_hash(model: nn.Module) -> str:
    """sha256 over the names, shapes and bytes of every parameter and buffer of ``model``."""
    h = hashlib.sha256()
    for key, value in model.state_dict().items():
        t = value.detach().cpu().contiguous().reshape(-1)
        h.update(f"{key}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _workers(workers: int | None) -> int:
    if workers is not None:
        return max(0, int(workers))
    return min(4, max(0, (os.cpu_count() or 1) - 1))


def _open_store(out: Any, settings: dict, classes: list[str], resume: bool) -> FeatureStore | None:
    if out is None:
        return None
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise DataError(
            f"--out '{root}' is a file; the feature store is a folder. Choose a folder."
        )
    store = FeatureStore(root, settings, list(classes))
    # new shards never overwrite old ones: the old manifest stays valid until the new one replaces it
    numbers = [int(p.stem.split("-")[1]) for p in root.glob("shard-*.safetensors")]
    store._shard_index = max(numbers, default=-1) + 1
    if not resume or not (root / "manifest.json").exists():
        return store
    old = FeatureStore.load(root)
    if old.settings == settings:
        store.entries = old.entries
        store.shard_sha256 = old.shard_sha256
    else:
        changed = sorted(k for k in settings if old.settings.get(k) != settings[k])
        log.info(
            "feature store %s was made with other %s; extracting anew", root, ", ".join(changed)
        )
    return store
