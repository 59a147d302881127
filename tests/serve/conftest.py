"""Fixtures for the server tests: a tiny bundle, generated images, and a live server on loopback.

The server runs in a thread of the test process (uvicorn on ``127.0.0.1``, port chosen by the OS);
requests are sent with httpx to that address only.
"""

from __future__ import annotations

import io
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from bundle_support import CLASSES, tiny_bundle  # noqa: F401  (test_api imports CLASSES here)
from PIL import Image

DATA_CONFIG = {
    "input_size": (3, 32, 32),
    "interpolation": "bilinear",
    "crop_pct": 0.875,
    "mean": (0.5, 0.5, 0.5),
    "std": (0.25, 0.25, 0.25),
}


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve")
    return tiny_bundle(root / "bundle", DATA_CONFIG)


def image_bytes(seed: int, size: tuple[int, int] = (40, 30), fmt: str = "PNG") -> bytes:
    """A random-looking RGB image of ``size`` (width, height) encoded as ``fmt``."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    arr[: size[1] // 2] = (rng.integers(0, 256, 3)).astype(np.uint8)  # some structure
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="session")
def image_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Six images on disk (PNG and JPEG, several sizes) for comparisons with graft predict."""
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for i in range(6):
        fmt = "PNG" if i % 2 else "JPEG"
        path = folder / f"img{i}.{fmt.lower().replace('jpeg', 'jpg')}"
        path.write_bytes(image_bytes(i, (40 + 7 * i, 30 + 5 * i), fmt))
        paths.append(path)
    return paths


@dataclass
class LiveServer:
    url: str
    app: object
    thread: threading.Thread
    server: object

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def start_server(preload: bool = True, **options) -> LiveServer:
    """Start ``create_app(ServeConfig(**options))`` with uvicorn on 127.0.0.1:<free port>.

    ``preload=False`` lets the app load the model itself at start-up (``/ready`` waits for it).
    """
    import uvicorn

    from graft.serving.app import create_app
    from graft.serving.config import ServeConfig
    from graft.serving.engine import Engine

    cfg = ServeConfig(**options)
    app = create_app(cfg, Engine.load(cfg) if preload else None)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            api_key = cfg.api_key or os.environ.get("GRAFT_API_KEY")
            key = {"X-API-Key": api_key} if api_key else {}
            if httpx.get(url + "/ready", headers=key, timeout=5).status_code == 200:
                return LiveServer(url, app, thread, server)
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    server.should_exit = True
    raise RuntimeError("the test server did not become ready within 60 s")


@pytest.fixture(scope="module")
def live(bundle_dir: Path) -> Iterator[LiveServer]:
    """A server with batching and Grad-CAM on, small limits for the bad-input tests."""
    server = start_server(bundle=str(bundle_dir), max_batch_size=8, batch_timeout=20.0,
                          gradcam=True, max_body_mb=1.0, max_pixels=1_000_000, max_images=8)  # fmt: skip
    yield server
    server.stop()
