"""``ServeConfig``: every option of ``graft serve``, declared once (flags, YAML, keyword arguments).

Example:
    >>> cfg = ServeConfig(port=9000, max_batch_size=16)
    >>> cfg.host, cfg.batch_timeout
    ('127.0.0.1', 5.0)
    >>> check(cfg) is cfg
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from graft.errors import ConfigError
from graft.options import ACCELERATOR_HELP, option

BACKENDS = ("auto", "torch", "onnx")
MAX_THREADS = 1024  # torch.set_num_threads overflows on absurd values


@dataclass
class ServeConfig:
    """Options of :func:`graft.serve` / ``graft serve BUNDLE``; ``bundle`` is the positional argument."""

    bundle: str = option(
        "", "bundle folder to serve (graft fit, graft probe or graft export writes one)",
        positional=True,
    )  # fmt: skip
    host: str = option(
        "127.0.0.1",
        "address to bind; the default answers this machine only. Use 0.0.0.0 to accept other "
        "machines, behind a proxy with TLS and an --api-key",
    )
    port: int = option(8000, "TCP port to listen on (0: any free port)")
    backend: Literal["auto", "torch", "onnx"] = option(
        "auto",
        "auto: the bundle's own kind; torch: a PyTorch bundle; onnx: onnxruntime (an ONNX bundle, "
        "or a PyTorch bundle exported to ONNX at start-up)",
    )
    max_batch_size: int = option(
        32,
        "most images run through the model at once; concurrent requests are batched up to this. "
        "1 turns batching off",
    )
    batch_timeout: float = option(
        5.0,
        "milliseconds the first image of a batch waits for others to join; more gives bigger "
        "batches under load, at that much extra latency when idle",
    )
    top_k: int = option(5, "classes returned per image unless a request asks ?top_k=N")
    gradcam: bool = option(
        False,
        "allow ?gradcam=1 requests to get a Grad-CAM overlay PNG (PyTorch backend only; costs a "
        "backward pass per image)",
    )
    max_body_mb: float = option(
        20.0, "largest request body in MB; bigger ones get 413 before being read"
    )
    max_pixels: int = option(
        40_000_000,
        "largest image in pixels (width x height), checked from the header before decoding: "
        "decompression bombs get 413",
    )
    max_images: int = option(64, "most images in one multipart request")
    api_key: str | None = option(
        None,
        "require this key (header X-API-Key or 'Authorization: Bearer KEY') on every route but "
        "/health; also read from the GRAFT_API_KEY environment variable",
        default_text="none",
    )
    workers: int = option(
        1,
        "server processes (uvicorn workers), each with its own copy of the model and its own "
        "batches; more than 1 only pays with more cores than one process's threads use",
    )
    threads: int = option(0, "torch / onnxruntime threads per process (0: cores / workers)")
    accelerator: str = option("cpu", ACCELERATOR_HELP + "; the onnx backend runs on the CPU")
    devices: str = option(
        "auto",
        "the GPUs the server processes use, round-robin: N, a list such as 0,2, or auto (every "
        "GPU), as in Lightning; on the CPU the processes are --workers",
    )
    graceful_timeout: float = option(
        30.0, "seconds SIGTERM waits for in-flight requests before closing"
    )


def check(cfg: ServeConfig) -> ServeConfig:
    """Raise :class:`ConfigError` for values that cannot work, saying what is valid."""
    if cfg.backend not in BACKENDS:
        raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}, got {cfg.backend!r}")
    positive = {
        "max_batch_size": cfg.max_batch_size,
        "top_k": cfg.top_k,
        "max_images": cfg.max_images,
        "workers": cfg.workers,
        "max_pixels": cfg.max_pixels,
    }
    for name, value in positive.items():
        if value < 1:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} must be at least 1, got {value}")
    if cfg.batch_timeout < 0 or cfg.max_body_mb <= 0 or cfg.graceful_timeout < 0:
        raise ConfigError(
            "--batch-timeout and --graceful-timeout must be >= 0 and --max-body-mb > 0, got "
            f"{cfg.batch_timeout}, {cfg.graceful_timeout} and {cfg.max_body_mb}"
        )
    if not 0 <= cfg.port <= 65535:
        raise ConfigError(f"--port must be in 0..65535, got {cfg.port}")
    if not 0 <= cfg.threads <= MAX_THREADS:
        raise ConfigError(
            f"--threads must be in 0..{MAX_THREADS} (0: cores / workers), got {cfg.threads}"
        )
    _check_devices(cfg.devices)
    if cfg.api_key is not None and len(cfg.api_key) < 8:
        raise ConfigError("--api-key must have at least 8 characters; use a long random string")
    return cfg


def _check_devices(devices: object) -> None:
    """``auto``, a count >= 1 (-1: every GPU) or a list of GPU indices such as ``0,2``."""
    text = str(devices).strip().lower()
    items = [t.strip() for t in text.split(",") if t.strip()]
    if text in ("auto", "-1"):
        return
    if items and all(t.isdigit() for t in items) and ("," in text or int(text) >= 1):
        return
    raise ConfigError(
        f"--devices must be auto, a number of GPUs or a list such as 0,2 (as in Lightning), "
        f"got {devices!r}"
    )
