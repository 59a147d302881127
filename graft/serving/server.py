"""``graft.serve``: run a bundle behind the HTTP API with uvicorn until SIGTERM or Ctrl-C.

On SIGTERM (or SIGINT) the server stops accepting connections, lets the requests in flight finish
(up to ``graceful_timeout`` seconds), stops the batcher and returns normally (exit code 0).

Example:
    >>> graft.serve("runs/pets/bundle", port=8000, max_batch_size=16)  # doctest: +SKIP
    graft serve: listening on http://127.0.0.1:8000 (torch backend, 37 classes)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from graft.errors import ConfigError, GraftError
from graft.log import get_logger
from graft.serving.config import ServeConfig, check

log = get_logger("graft.serve")
INSTALL_HINT = "pip install graft-vision[serve]"


class MissingServeDeps(GraftError, ImportError):
    """The optional server dependencies (FastAPI, uvicorn, ...) are not installed."""


def require_deps() -> None:
    """Raise :class:`MissingServeDeps` naming ``pip install graft-vision[serve]`` if needed."""
    missing = []
    for package, modules in (("fastapi", ("fastapi",)), ("uvicorn", ("uvicorn",)),
                             ("python-multipart", ("python_multipart", "multipart")),
                             ("prometheus-client", ("prometheus_client",))):  # fmt: skip
        if not any(_importable(m) for m in modules):
            missing.append(package)
    if missing:
        raise MissingServeDeps(
            f"graft serve needs {', '.join(missing)}, which are not installed. "
            f"Install the server extra: {INSTALL_HINT}"
        )


def passive_omp() -> None:
    """Let idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``).

    A server calls the model in bursts and decodes images in other threads between them; spinning
    torch threads then take the cores from that work, and on a machine whose cores are shared
    they made Lite0 at batch 1 ~20x slower (measured: 1.1 s vs 49 ms). It only takes effect
    before torch is imported (``graft serve`` sets it first); a value set by the user is kept.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def serve(
    bundle: str | os.PathLike,
    config: ServeConfig | None = None,
    on_ready: Callable[[dict[str, Any]], None] | None = None,
    **options: Any,
) -> None:
    """Serve ``bundle`` over HTTP until stopped; ``options`` are :class:`ServeConfig` fields.

    ``on_ready`` is called once the server accepts requests, with ``{"url", "host", "port",
    "model", "backend", "classes"}`` (``graft serve --json`` prints it).

    Example:
        >>> serve("runs/pets/bundle", port=0, api_key="a-long-random-key",
        ...       on_ready=print)  # doctest: +SKIP
        {'url': 'http://127.0.0.1:41234', 'host': '127.0.0.1', 'port': 41234, ...}
    """
    require_deps()
    passive_omp()
    base = asdict(config) if config is not None else {}
    known = set(ServeConfig.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        from graft.errors import raise_unknown

        raise_unknown("serve option", unknown[0], sorted(known))
    cfg = check(ServeConfig(**{**base, **options, "bundle": os.fspath(bundle)}))
    if cfg.workers > 1:
        _serve_workers(cfg, on_ready)
    else:
        _serve_one(cfg, on_ready)


def _serve_one(cfg: ServeConfig, on_ready: Callable[[dict[str, Any]], None] | None) -> None:
    import uvicorn

    from graft.serving.app import create_app
    from graft.serving.engine import Engine, model_name

    engine = Engine.load(cfg)  # errors in the bundle or options surface here, before binding
    app = create_app(cfg, engine)
    sock = _bind(cfg.host, cfg.port)
    port = sock.getsockname()[1]
    classes = list(engine.bundle.classes)

    def started() -> None:
        _announce(cfg, port, engine.backend, len(classes))
        if on_ready is not None:
            on_ready(ready_document(cfg, port, model_name(engine.bundle.meta), engine.backend,
                                    classes))  # fmt: skip

    server = graceful_server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=cfg.graceful_timeout),
                             on_started=started)  # fmt: skip
    server.run(sockets=[sock])
    print("graft serve: stopped", file=sys.stderr, flush=True)


def _serve_workers(cfg: ServeConfig, on_ready: Callable[[dict[str, Any]], None] | None) -> None:
    """``--workers N``: uvicorn's process manager, each worker builds the app from the environment."""
    import uvicorn

    from graft.serving.app import CONFIG_ENV

    if cfg.port == 0:
        raise ConfigError("--workers > 1 needs a fixed --port (0 would give each worker its own)")
    os.environ[CONFIG_ENV] = json.dumps(asdict(cfg))
    _announce(cfg, cfg.port, cfg.backend, None)
    if on_ready is not None:  # the workers load the model: ready once one of them answers
        threading.Thread(target=_when_healthy, args=(cfg, on_ready), daemon=True).start()
    uvicorn.run("graft.serving.app:app_from_env", factory=True, host=cfg.host, port=cfg.port,
                workers=cfg.workers, log_level="warning", access_log=False,
                timeout_graceful_shutdown=cfg.graceful_timeout)  # fmt: skip


def graceful_server(config: Any, on_started: Callable[[], None] | None = None) -> Any:
    """A uvicorn server whose SIGTERM/SIGINT mean "finish in-flight requests, then return".

    ``on_started`` runs once the application has started and the server accepts connections.
    """
    import uvicorn

    class GracefulServer(uvicorn.Server):
        async def startup(self, sockets: list | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and not self.should_exit and on_started is not None:
                on_started()

        def handle_exit(self, sig: int, frame: Any) -> None:
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True  # a second Ctrl-C: stop now
                return
            log.warning("%s: finishing requests in flight, then stopping", signal.Signals(sig).name)
            self.should_exit = True  # uvicorn would re-raise the signal; we return instead

    return GracefulServer(config)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {e.strerror}. Choose another --port (0: any free "
            "port) or stop the process that uses it"
        ) from e
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _announce(cfg: ServeConfig, port: int, backend: str, classes: int | None) -> None:
    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    what = f"{backend} backend" + (f", {classes} classes" if classes else "")
    auth = ", API key required" if cfg.api_key or os.environ.get("GRAFT_API_KEY") else ""
    print(f"graft serve: listening on http://{host}:{port} ({what}{auth})", file=sys.stderr,
          flush=True)  # fmt: skip


def ready_document(
    cfg: ServeConfig, port: int, model: str | None, backend: str, classes: list[str]
) -> dict[str, Any]:
    """What ``graft serve --json`` prints once the server is ready.

    Example:
        >>> ready_document(ServeConfig(bundle="b"), 8000, "test_vit", "torch", ["a", "b"])["url"]
        'http://127.0.0.1:8000'
    """
    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    return {"url": f"http://{host}:{port}", "host": cfg.host, "port": port, "model": model,
            "backend": backend, "classes": list(classes)}  # fmt: skip


def _when_healthy(cfg: ServeConfig, on_ready: Callable[[dict[str, Any]], None]) -> None:
    """Poll ``/health`` until a worker answers, then call ``on_ready`` with the bundle's summary."""
    import urllib.request
    from pathlib import Path

    from graft.bundle import read_meta
    from graft.serving.engine import model_name

    path = Path(cfg.bundle)
    meta = read_meta(path.parent if path.is_file() else path)
    backend = (
        cfg.backend if cfg.backend != "auto" else ("onnx" if meta["kind"] == "onnx" else "torch")
    )
    local = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(cfg.host, cfg.host)
    url = f"http://{f'[{local}]' if ':' in local else local}:{cfg.port}/health"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 (our own server)
                if reply.status == 200:
                    break
        except OSError:
            time.sleep(0.2)
    on_ready(ready_document(cfg, cfg.port, model_name(meta), backend, list(meta["classes"])))
