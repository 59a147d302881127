"""The model behind the server: a bundle loaded once, images decoded and preprocessed exactly as
``graft predict`` does, batches turned into top-k rows, Grad-CAM overlays on request.

Preprocessing is graft.inference's: :func:`graft.data.images.decode_image` then the bundle's
evaluation transform (:func:`graft.inference.runner.eval_transform`) and
:func:`graft.inference.runner.batch_probabilities`, so the served numbers equal ``graft predict``'s.

Example:
    >>> engine = Engine.load(ServeConfig(bundle="runs/pets/bundle"))  # doctest: +SKIP
    >>> x = engine.decode(open("cat.jpg", "rb").read(), "cat.jpg")  # doctest: +SKIP
    >>> engine.rows(engine.probabilities(x[None]), top_k=3)[0]["label"]  # doctest: +SKIP
    'cat'
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graft.bundle import Bundle, load_bundle
from graft.data.images import ImageError, finish_image, open_image
from graft.errors import ConfigError, GraftError
from graft.inference.runner import batch_probabilities, eval_transform
from graft.log import get_logger
from graft.serving.config import ServeConfig

log = get_logger("graft.serve")


class RequestError(GraftError):
    """A request the server refuses: ``status`` (4xx), a short ``code`` and a ``reason``."""

    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.code, self.reason = status, code, reason


@dataclass
class Engine:
    """A loaded bundle plus everything a request needs from it (see the module docstring)."""

    bundle: Bundle
    backend: str
    config: ServeConfig
    bundle_hash: str
    transform: Any = None
    temp_dir: str | None = None
    channels_last: bool = False  # PyTorch CPU models run NHWC (see :func:`_channels_last`)
    lock: threading.Lock = field(default_factory=threading.Lock)  # one model call at a time

    @classmethod
    def load(cls, cfg: ServeConfig, worker: int = 0) -> Engine:
        """Load ``cfg.bundle`` for ``cfg.backend`` (exporting a PyTorch bundle to ONNX if asked)."""
        if not cfg.bundle:
            raise ConfigError(
                "no bundle to serve: give the bundle folder, e.g. graft serve runs/x/bundle"
            )
        threads = cfg.threads or max(1, (os.cpu_count() or 1) // cfg.workers)
        torch.set_num_threads(threads)
        device = resolve_device(cfg.accelerator, cfg.devices, worker)
        bundle = load_bundle(cfg.bundle, device=device)
        backend = cfg.backend if cfg.backend != "auto" else _backend_of(bundle)
        temp_dir = None
        if backend == "onnx" and bundle.kind != "onnx":
            if device != "cpu":
                raise ConfigError("--backend onnx runs on the CPU; use --accelerator cpu")
            bundle, temp_dir = _export_onnx(bundle)
        elif backend == "torch" and bundle.kind == "onnx":
            raise ConfigError(
                f"{cfg.bundle} is an ONNX bundle; serve it with --backend onnx (or auto), or serve "
                "the PyTorch bundle it was exported from with --backend torch"
            )
        if bundle.kind == "onnx":
            from graft.export.runtime import OnnxModel

            bundle.model = OnnxModel(bundle.model.path, threads=threads)
        engine = cls(bundle, backend, cfg, _bundle_hash(Path(bundle.path)), temp_dir=temp_dir)
        engine.transform = eval_transform(bundle)
        engine.channels_last = _channels_last(bundle.model, device)
        log.info(
            "serving %s (%s backend, %s, %d classes, %d thread(s))",
            cfg.bundle, backend, device, bundle.num_classes, threads,
        )  # fmt: skip
        return engine

    @property
    def channels(self) -> int:
        return int(self.bundle.data_config["input_size"][0])

    def decode(self, data: bytes, name: str = "<upload>") -> torch.Tensor:
        """Image bytes -> normalised ``C,H,W`` tensor; refuses bad bytes with a 4xx RequestError."""
        if not data:
            raise RequestError(400, "empty_image", f"{name}: the image is empty (0 bytes)")
        try:
            image = open_image(data, name)
            width, height = image.size
            if width * height > self.config.max_pixels:
                raise RequestError(
                    413, "too_many_pixels",
                    f"{name}: {width}x{height} = {width * height:,} pixels is more than the "
                    f"{self.config.max_pixels:,} allowed (--max-pixels); send a smaller image",
                )  # fmt: skip
            image = finish_image(image, name, "L" if self.channels == 1 else "RGB")
        except ImageError as e:
            if e.reason == "decompression bomb":
                raise RequestError(413, "too_many_pixels", str(e)) from e
            raise RequestError(
                422, "undecodable_image",
                f"{name} could not be decoded as an image ({e.reason}); send JPEG, PNG, WebP, BMP, "
                "TIFF or GIF bytes",
            ) from e  # fmt: skip
        return self.transform(image)

    def probabilities(self, batch: torch.Tensor) -> np.ndarray:
        """Softmax probabilities of a preprocessed batch (``graft predict``'s function)."""
        if self.channels_last and batch.dim() == 4:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with self.lock:
            return batch_probabilities(self.bundle, batch)

    def rows(self, probs: np.ndarray, top_k: int) -> list[dict[str, Any]]:
        """One ``{"label", "prob", "top_k": [...]}`` per row, sorted like ``graft predict``."""
        classes = self.bundle.classes
        out = []
        for p in probs:
            order = np.argsort(-p, kind="stable")[: min(top_k, len(classes))]
            top = [{"label": classes[j], "prob": float(p[j])} for j in order]
            out.append({"label": top[0]["label"], "prob": top[0]["prob"], "top_k": top})
        return out

    def gradcam_png(self, x: torch.Tensor, target: int) -> str:
        """Grad-CAM overlay (input | map over it) of one image for class ``target``, as a data URI."""
        from graft.report.gradcam import grad_cam
        from graft.report.overlays import overlay

        if not isinstance(self.bundle.model, torch.nn.Module):
            raise RequestError(
                400, "gradcam_unavailable",
                f"Grad-CAM needs a PyTorch model; this server runs the {self.backend} backend",
            )  # fmt: skip
        with self.lock:
            cam = grad_cam(self.bundle.model, x[None].to(self.bundle.device), [target])
        panel = overlay(_pixels(x, self.bundle.data_config), cam.maps[0])
        buf = io.BytesIO()
        panel.save(buf, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")

    def info(self) -> dict[str, Any]:
        """What ``GET /info`` returns."""
        import graft

        meta, cfg = self.bundle.meta, self.config
        return {
            "model": model_name(meta),
            "kind": self.bundle.kind,
            "backend": self.backend,
            "classes": list(self.bundle.classes),
            "num_classes": self.bundle.num_classes,
            "input_size": list(self.bundle.data_config["input_size"]),
            "data_config": {k: _plain(v) for k, v in self.bundle.data_config.items()},
            "bundle": str(cfg.bundle),
            "bundle_hash": self.bundle_hash,
            "graft_version": graft.__version__,
            "bundle_graft_version": meta.get("graft_version"),
            "max_batch_size": cfg.max_batch_size,
            "batch_timeout_ms": cfg.batch_timeout,
            "top_k": cfg.top_k,
            "gradcam": bool(cfg.gradcam and isinstance(self.bundle.model, torch.nn.Module)),
            "limits": {
                "max_body_mb": cfg.max_body_mb,
                "max_pixels": cfg.max_pixels,
                "max_images": cfg.max_images,
            },
        }

    def close(self) -> None:
        if self.temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def model_name(meta: dict[str, Any]) -> str | None:
    """The backbone a bundle's ``model.json`` names (its spec, or the spec it was exported from).

    Example:
        >>> model_name({"kind": "classifier", "spec": {"name": "test_vit"}})
        'test_vit'
    """
    spec = meta.get("spec") or meta.get("source", {}).get("spec") or {}
    return spec.get("name") or spec.get("model") or meta.get("kind")


def resolve_device(accelerator: str, devices: int | str = "auto", worker: int = 0) -> str:
    """Lightning's ``accelerator`` / ``devices`` -> the torch device of server process ``worker``.

    Server processes are spread round-robin over the GPUs ``devices`` names (``auto``: every GPU,
    ``N``: the first N, ``0,2``: those two); on the CPU every process uses the CPU.

    Example:
        >>> resolve_device("cpu", "auto")
        'cpu'
    """
    from graft.distributed import hardware

    hw = hardware(accelerator, devices)
    return hw.device(worker) if hw.kind == "cuda" else hw.kind


def _channels_last(model: Any, device: str) -> bool:
    """Switch a PyTorch model on the CPU to the channels-last (NHWC) memory format, in place.

    Same numbers, faster convolutions: on the 2-core CPU of docs/benchmarks/serve.md,
    EfficientNet-Lite0 ran 1.03x to 1.16x the images per CPU-second at batch 1 and 1.1x to 1.6x
    at batch 32.
    ONNX models and GPU models are left as they are.

    Example:
        >>> _channels_last(torch.nn.Conv2d(3, 4, 3), "cpu")
        True
    """
    if device != "cpu" or not isinstance(model, torch.nn.Module):
        return False
    model.to(memory_format=torch.channels_last)
    return True


def _backend_of(bundle: Bundle) -> str:
    return "onnx" if bundle.kind == "onnx" else "torch"


def _export_onnx(bundle: Bundle) -> tuple[Bundle, str]:
    """Export a PyTorch bundle to ONNX in a temporary folder (removed when the server stops)."""
    from graft.export import export

    temp_dir = tempfile.mkdtemp(prefix="graft-serve-onnx-")
    log.info("exporting %s to ONNX for --backend onnx (export it once with graft export to skip this)",
             bundle.path)  # fmt: skip
    result = export(bundle, out=Path(temp_dir) / "onnx")
    return load_bundle(result.path), temp_dir


def _bundle_hash(folder: Path) -> str:
    """sha256 of ``model.json``, which records the sha256 of every weight file of the bundle."""
    return hashlib.sha256((folder / "model.json").read_bytes()).hexdigest()


def _pixels(x: torch.Tensor, data_config: dict[str, Any]) -> np.ndarray:
    """The normalised input ``C,H,W`` back as ``H,W,3`` uint8 pixels (what the model saw)."""
    channels = x.shape[0]
    mean = torch.tensor(data_config.get("mean") or [0.0] * channels, dtype=torch.float32)
    std = torch.tensor(data_config.get("std") or [1.0] * channels, dtype=torch.float32)
    pixels = (x.detach().cpu().float() * std[:, None, None] + mean[:, None, None]).clamp(0, 1)
    arr = (pixels.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr[:, :, :3]


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
