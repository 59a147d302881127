"""Model bundles: a folder with safetensors weights and a ``model.json``; loading never unpickles.

A bundle is what ``graft fit`` leaves behind and what ``graft predict``, ``graft evaluate`` and
``graft export`` read::

    bundle/
      model.safetensors   weights (safetensors: plain tensors, no code)
      model.json          {"format": "graft-bundle", "format_version": 1, "kind": "classifier", "spec",
                           "classes", "data_config", "recipe", "metrics", "weights_sha256", ...}

The whole folder is written into a temporary sibling and renamed into place, so a crash never leaves
a half-written bundle. Loading checks the format, the version and the sha256 of every file before
reading a single tensor. Other kinds of bundle (``probe``, ``onnx``, ``ensemble``) plug in with
:func:`register_kind` (the registry is :mod:`graft.bundle_kinds`).

Example:
    >>> import timm, tempfile
    >>> model = timm.create_model("test_efficientnet", num_classes=3)
    >>> path = save_bundle(tempfile.mkdtemp() + "/b", model, ["a", "b", "c"],
    ...                    {"input_size": (3, 32, 32), "mean": (0.5,) * 3, "std": (0.5,) * 3},
    ...                    spec={"name": "test_efficientnet", "num_classes": 3})  # doctest: +SKIP
    >>> load_bundle(path).classes  # doctest: +SKIP
    ['a', 'b', 'c']
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from graft.bundle_checks import check_head, check_meta
from graft.bundle_kinds import loader_for, register_kind
from graft.bundle_kinds import registered_kinds as registered_kinds  # re-exported
from graft.errors import GraftError, UnsafeFileError
from graft.io import file_mode, make_temp_dir, read_json, sha256_file, write_json
from graft.log import get_logger

FORMAT = "graft-bundle"
FORMAT_VERSION = 1
META_FILE = "model.json"
WEIGHTS_FILE = "model.safetensors"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin")

log = get_logger("graft.bundle")


class BundleError(GraftError, ValueError):
    """A bundle folder is missing, incomplete, corrupt or of an unsupported format."""


@dataclass
class Bundle:
    """A loaded bundle.

    ``model`` maps a normalised float batch ``(B, C, H, W)`` to logits ``(B, num_classes)`` (a torch
    module in eval mode, or a runtime wrapper such as the ONNX backend); ``data_config`` holds the
    preprocessing (input size, interpolation, crop fraction, mean, std) that produced its inputs.
    """

    model: Any
    classes: list[str]
    data_config: dict[str, Any]
    meta: dict[str, Any]
    kind: str
    path: Path
    device: str = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits for a preprocessed batch, on the CPU as float32."""
        with torch.inference_mode():
            out = self.model(batch.to(self.device))
        return out.detach().float().cpu()


# ----------------------------------------------------------------------------------------- saving


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
        full = _header(meta)
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


def _header(meta: Mapping[str, Any]) -> dict[str, Any]:
    from graft import __version__

    head = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": meta.get("kind", "classifier"),
        "graft_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return {**head, **{k: v for k, v in meta.items() if k not in head}}


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


# ---------------------------------------------------------------------------------------- loading


def load_bundle(path: str | os.PathLike, device: str = "cpu") -> Bundle:
    """Load a bundle folder (or its ``model.json``) after checking format, version and checksums.

    Pickle files (``.pt``, ``.pth``, ``.ckpt``, ...) are refused without being opened: unpickling
    can run arbitrary code.

    Example:
        >>> b = load_bundle("runs/x/bundle")  # doctest: +SKIP
        >>> b.kind, b.classes[:2]  # doctest: +SKIP
        ('classifier', ['cat', 'dog'])
    """
    folder = _bundle_folder(Path(path))
    meta = read_meta(folder)
    verify_files(folder, meta)
    loader = loader_for(meta.get("kind", "classifier"), str(folder / META_FILE))
    return loader(folder, meta, device)


def read_meta(folder: Path) -> dict[str, Any]:
    """Read and check ``model.json``: format name, version, and the keys every bundle has."""
    meta_path = folder / META_FILE
    if not meta_path.exists():
        found = sorted(p.name for p in folder.iterdir())[:10]
        raise BundleError(
            f"'{folder}' is not a complete graft bundle: {META_FILE} is missing (found: {found or 'nothing'}). "
            "A bundle is written by `graft fit` or graft.save_bundle; an interrupted save leaves no bundle."
        )
    meta = read_json(meta_path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise BundleError(
            f"{meta_path} is not a graft bundle description (format={got!r}, expected '{FORMAT}')."
        )
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"{meta_path} has format_version {version!r}; this graft reads version {FORMAT_VERSION}. "
            "Re-export the bundle with a matching graft version."
        )
    for key in ("kind", "classes", "data_config"):
        if key not in meta:
            raise BundleError(f"{meta_path} lacks '{key}'; the bundle is damaged. Save it again.")
    check_meta(meta, str(meta_path))
    return meta


def verify_files(folder: Path, meta: Mapping[str, Any]) -> None:
    """Check that every file listed in ``model.json`` exists and matches its sha256."""
    sums = dict(meta.get("files") or {})
    if not sums:
        raise BundleError(
            f"{folder / META_FILE} lists no files; the bundle is damaged. Save it again."
        )
    for name, expected in sums.items():
        file = folder / name
        if Path(name).name != name:
            raise UnsafeFileError(
                f"{folder / META_FILE} names a file outside the bundle ('{name}'); refusing it."
            )
        if not file.exists():
            raise BundleError(
                f"bundle '{folder}' is incomplete: {name} is missing. Copy the whole folder."
            )
        actual = sha256_file(file)
        if actual != expected:
            raise UnsafeFileError(
                f"{file} does not match the sha256 recorded in {META_FILE} "
                f"(expected {expected[:12]}..., got {actual[:12]}...): it is corrupt, truncated or was "
                "replaced. Copy the bundle again or re-create it."
            )


def _bundle_folder(path: Path) -> Path:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise UnsafeFileError(
            f"refusing to load '{path}': {path.suffix} files are Python pickles, and unpickling a file "
            "can run arbitrary code from whoever made it. graft loads bundles (a folder with "
            "model.safetensors + model.json) only; re-save trusted weights as a bundle with "
            "graft.save_bundle after loading them yourself with torch.load(..., weights_only=True)."
        )
    if path.is_file() and (path.parent / META_FILE).is_file():  # model.json or a weights file
        path = path.parent
    if not path.exists():
        raise BundleError(
            f"bundle '{path}' does not exist. Pass the folder written by `graft fit` (it holds model.json)."
        )
    if not path.is_dir():
        raise BundleError(
            f"'{path}' is a file; a bundle is a folder with model.json and its weights. Pass the folder."
        )
    return path


def load_classifier(folder: Path, meta: dict[str, Any], device: str = "cpu") -> Bundle:
    """Loader for ``kind="classifier"``: rebuild from ``spec`` and read the safetensors weights."""
    model = build_from_spec(meta["spec"])
    check_head(getattr(model, "num_classes", None), meta["classes"], str(folder / META_FILE))
    load_weights(model, folder / WEIGHTS_FILE)
    model.to(device).eval()
    return Bundle(
        model=model,
        classes=list(meta["classes"]),
        data_config=dict(meta["data_config"]),
        meta=meta,
        kind=meta["kind"],
        path=folder,
        device=device,
    )


def build_from_spec(spec: Mapping[str, Any]) -> nn.Module:
    """Rebuild an architecture from a bundle's ``spec`` without downloading or loading weights."""
    from graft.models import create_model

    try:
        return create_model(**dict(spec), pretrained=False)
    except TypeError as e:
        raise BundleError(f"model.json has a spec this graft cannot build ({spec}): {e}") from e


def load_weights(model: nn.Module, path: Path) -> None:
    """Load safetensors weights into ``model`` strictly, with a clear error on a mismatch."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    try:
        load_model(model, str(path), strict=True)
    except SafetensorError as e:
        raise BundleError(
            f"{path} is not a readable safetensors file ({e}); the bundle is damaged."
        ) from e
    except RuntimeError as e:
        raise BundleError(
            f"the weights in {path} do not fit the architecture in model.json ({str(e)[:300]}); "
            "the bundle was edited or written by an incompatible version."
        ) from e


register_kind("classifier", load_classifier)
