"""Writing bundles: :func:`save_bundle` for a torch model, :func:`write_bundle` for any kind.

The whole folder is written into a temporary sibling and renamed into place, ``model.json`` last,
so a crash never leaves a half-written bundle; a folder that is not a bundle is never replaced.

Example:
    >>> save_bundle("runs/x/bundle", model, ["cat", "dog"], data_cfg)  # doctest: +SKIP
    PosixPath('runs/x/bundle')
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from graft.bundle.schema import META_FILE, PICKLE_SUFFIXES, WEIGHTS_FILE, BundleError, header
from graft.io import file_mode, make_temp_dir, sha256_file, write_json
from graft.log import get_logger

log = get_logger("graft.bundle")


def save_bundle(
    dir: str | os.PathLike,
    model: nn.Module,
    classes: Sequence[str],
    data_config: Mapping[str, Any],
    *,
    kind: str = "classifier",
    recipe: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    spec: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` (safetensors) and its metadata (``model.json``) as a bundle folder ``dir``.

    ``spec`` defaults to ``model.graft_spec`` (what ``graft.create_model(**spec, pretrained=False)``
    needs to rebuild the architecture). An existing bundle at ``dir`` is replaced in one step; a
    folder that is not a bundle is never overwritten.

    Example:
        >>> save_bundle("runs/x/bundle", model, splits.classes, data_cfg, metrics={"val_acc": 0.9})  # doctest: +SKIP
        PosixPath('runs/x/bundle')
    """
    spec = _resolve_spec(model, spec)
    classes = [str(c) for c in classes]
    num_classes = getattr(model, "num_classes", None)
    if num_classes is not None and num_classes != len(classes):
        raise BundleError(
            f"the model has {num_classes} outputs but {len(classes)} class names were given "
            f"({classes[:5]}...); pass one name per output."
        )
    meta = {
        "kind": kind,
        "spec": dict(spec),
        "classes": classes,
        "data_config": clean_data_config(data_config),
        "recipe": dict(recipe) if recipe else None,
        "metrics": dict(metrics) if metrics else None,
    }
    if extra:
        meta["extra"] = dict(extra)

    def write_weights(path: Path) -> None:
        _save_state(model, path)

    return write_bundle(dir, {WEIGHTS_FILE: write_weights}, meta)


def write_bundle(
    dir: str | os.PathLike,
    files: Mapping[str, Callable[[Path], None]],
    meta: Mapping[str, Any],
) -> Path:
    """Low-level writer for any bundle kind: ``files`` maps a file name to ``writer(path)``.

    The first file is the main weights file (its checksum is ``weights_sha256``); every file's
    sha256 is recorded under ``files``. Everything is written into a temporary folder next to
    ``dir`` and renamed into place, ``model.json`` last.

    Example:
        >>> write_bundle("out/onnx", {"model.onnx": lambda p: p.write_bytes(b"...")},
        ...              {"kind": "onnx", "classes": ["a"], "data_config": {}})  # doctest: +SKIP
    """
    dest = Path(dir)
    _check_destination(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(dest)
    try:
        sums = {}
        for name, writer in files.items():
            writer(tmp / name)
            os.chmod(tmp / name, file_mode())  # safetensors writes owner-only files
            sums[name] = sha256_file(tmp / name)
        full = header(meta)
        full["weights_sha256"] = sums[next(iter(files))] if files else None
        full["files"] = sums
        write_json(tmp / META_FILE, full)
        _swap_into_place(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info(
        "bundle written to %s (%s, %d classes)",
        dest,
        meta.get("kind"),
        len(meta.get("classes") or []),
    )
    return dest


def clean_data_config(data_config: Mapping[str, Any]) -> dict[str, Any]:
    """The preprocessing a bundle keeps, as JSON-friendly values (tuples become lists).

    ``input_size``, ``mean`` and ``std`` are required; ``interpolation``, ``crop_pct`` and
    ``normalization`` get defaults; other keys (``crop_mode``, ...) are kept as given.
    """
    missing = [k for k in ("input_size", "mean", "std") if k not in data_config]
    if missing:
        raise BundleError(
            f"data_config lacks {missing}; it needs input_size, mean and std (and usually "
            "interpolation, crop_pct). Use graft.data.resolve_data_config(model) to build it."
        )
    out = {str(k): _jsonable(v) for k, v in data_config.items()}
    out.setdefault("interpolation", "bilinear")
    out.setdefault("crop_pct", 1.0)
    out.setdefault("normalization", "pretrained")
    return out


def _resolve_spec(model: nn.Module, spec: Mapping[str, Any] | None) -> Mapping[str, Any]:
    spec = spec if spec is not None else getattr(model, "graft_spec", None)
    if not spec or "name" not in spec:
        raise BundleError(
            f"cannot save a {type(model).__name__} as a bundle: it has no graft_spec (the recipe to "
            "rebuild its architecture). Create it with graft.create_model(...) or pass "
            "spec={'name': ..., 'num_classes': ...}."
        )
    return spec


def _save_state(model: nn.Module, path: Path) -> None:
    """Save the state dict with safetensors: contiguous, tensors that share memory stored once."""
    from safetensors.torch import save_model

    save_model(model, str(path), metadata={"format": "pt"})


def _check_destination(dest: Path) -> None:
    if dest.suffix.lower() in PICKLE_SUFFIXES + (".safetensors", ".json", ".onnx"):
        raise BundleError(
            f"a bundle is a folder, not a file: got '{dest}'. Pass a folder name such as 'out/bundle'."
        )
    if dest.exists() and not dest.is_dir():
        raise BundleError(
            f"'{dest}' exists and is a file; a bundle is a folder. Choose another path."
        )
    if dest.is_dir() and any(dest.iterdir()) and not (dest / META_FILE).exists():
        raise BundleError(
            f"'{dest}' is a non-empty folder that is not a bundle; refusing to replace it. "
            "Choose an empty or new folder."
        )


def _swap_into_place(tmp: Path, dest: Path) -> None:
    """Rename ``tmp`` to ``dest``; an existing ``dest`` is moved aside first and removed after."""
    old = None
    if dest.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
        os.replace(dest, old / dest.name)
    os.replace(tmp, dest)
    with contextlib.suppress(OSError):
        fd = os.open(dest.parent, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value
