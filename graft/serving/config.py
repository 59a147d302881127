"""``ServeConfig``: every option of ``graft serve``, declared once (flags, YAML, keyword arguments).

Example:
    >>> cfg = ServeConfig(port=9000, max_batch_size=16)
    >>> cfg.host, cfg.batch_timeout
    ('127.0.0.1', 5.0)
    >>> check(cfg) is cfg
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from graft.errors import ConfigError

BACKENDS = ("auto", "torch", "onnx")


@dataclass
class ServeConfig:
    """Options of :func:`graft.serve` / ``graft serve BUNDLE``; ``bundle`` is the positional argument."""

    bundle: str = field(
        default="",
        metadata={
            "help": "bundle folder to serve (graft fit, graft probe or graft export writes one)"
        },
    )
    host: str = field(
        default="127.0.0.1",
        metadata={
            "help": "address to bind; the default answers this machine only. Use 0.0.0.0 to accept "
            "other machines, behind a proxy with TLS and an --api-key (default: 127.0.0.1)"
        },
    )
    port: int = field(default=8000, metadata={"help": "TCP port to listen on (0: any free port)"})
    backend: Literal["auto", "torch", "onnx"] = field(
        default="auto",
        metadata={
            "help": "auto: the bundle's own kind; torch: a PyTorch bundle; onnx: onnxruntime (an ONNX "
            "bundle, or a PyTorch bundle exported to ONNX at start-up)"
        },
    )
    max_batch_size: int = field(
        default=32,
        metadata={
            "help": "most images run through the model at once; concurrent requests are batched up "
            "to this. 1 turns batching off"
        },
    )
    batch_timeout: float = field(
        default=5.0,
        metadata={
            "help": "milliseconds the first image of a batch waits for others to join; more gives "
            "bigger batches under load, at that much extra latency when idle"
        },
    )
    top_k: int = field(
        default=5, metadata={"help": "classes returned per image unless a request asks ?top_k=N"}
    )
    gradcam: bool = field(
        default=False,
        metadata={
            "help": "allow ?gradcam=1 requests to get a Grad-CAM overlay PNG (PyTorch backend only; "
            "costs a backward pass per image)"
        },
    )
    max_body_mb: float = field(
        default=20.0,
        metadata={"help": "largest request body in MB; bigger ones get 413 before being read"},
    )
    max_pixels: int = field(
        default=40_000_000,
        metadata={
            "help": "largest image in pixels (width x height), checked from the header before "
            "decoding: decompression bombs get 413"
        },
    )
    max_images: int = field(default=64, metadata={"help": "most images in one multipart request"})
    api_key: str | None = field(
        default=None,
        metadata={
            "help": "require this key (header X-API-Key or 'Authorization: Bearer KEY') on every "
            "route but /health; also read from the GRAFT_API_KEY environment variable (default: none)"
        },
    )
    workers: int = field(
        default=1,
        metadata={
            "help": "server processes, each with its own copy of the model and its own batches; "
            "more than 1 only pays with more cores than one process's threads use"
        },
    )
    threads: int = field(
        default=0,
        metadata={"help": "torch / onnxruntime threads per process (0: cores / workers)"},
    )
    accelerator: str = field(
        default="cpu",
        metadata={
            "help": "cpu, gpu/cuda or auto (Lightning's meaning); the onnx backend is CPU only"
        },
    )
    devices: int = field(
        default=1,
        metadata={"help": "how many GPUs; workers are spread over them round-robin"},
    )
    graceful_timeout: float = field(
        default=30.0,
        metadata={"help": "seconds SIGTERM waits for in-flight requests before closing"},
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
        "devices": cfg.devices,
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
    if cfg.threads < 0:
        raise ConfigError(f"--threads must be >= 0 (0: automatic), got {cfg.threads}")
    if cfg.api_key is not None and len(cfg.api_key) < 8:
        raise ConfigError("--api-key must have at least 8 characters; use a long random string")
    return cfg
