"""Options, API key, the ONNX backend, the batcher on its own, and the missing-extra message."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from graft.errors import ConfigError
from graft.inference import predict
from graft.serving.batcher import Batcher
from graft.serving.config import ServeConfig, check

from .conftest import image_bytes, start_server

PNG = {"Content-Type": "image/png"}


@pytest.mark.parametrize(
    "bad",
    [{"max_batch_size": 0}, {"backend": "tensorrt"}, {"port": 70000}, {"batch_timeout": -1},
     {"api_key": "short"}, {"max_pixels": 0}, {"threads": 10**12}, {"devices": "many"}],
)  # fmt: skip
def test_check_refuses_impossible_values(bad: dict) -> None:
    with pytest.raises(ConfigError) as e:
        check(ServeConfig(bundle="b", **bad))
    assert next(iter(bad)).split("_")[0] in str(e.value).replace("-", "_")


def test_flags_come_from_the_dataclass(tmp_path: Path) -> None:
    from graft.commands import serve as command

    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "b", "--max-batch-size", "4", "--gradcam", "--port", "0"])
    from graft.train.cli_options import options_from_args

    options = options_from_args(args, ServeConfig)
    assert options == {"bundle": "b", "max_batch_size": 4, "gradcam": True, "port": 0}
    help_text = parser._subparsers._group_actions[0].choices["serve"].format_help()
    assert "milliseconds the first image of a batch waits" in help_text
    assert "--api-key" in help_text and "--no-gradcam" in help_text


def test_missing_extra_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from graft.serving.server import MissingServeDeps, require_deps

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now raises ImportError
    with pytest.raises(MissingServeDeps, match=r"pip install graft-vision\[serve\]"):
        require_deps()


def test_unknown_option_gets_a_suggestion(bundle_dir: Path) -> None:
    import graft
    from graft.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="max_batch_size"):
        graft.serve(bundle_dir, max_batch=4)


def test_batcher_respects_max_batch_size_and_keeps_order() -> None:
    async def scenario(max_size: int) -> tuple[list[float], list[int]]:
        batcher = Batcher(lambda x: x.sum(dim=1).numpy(), max_batch_size=max_size, timeout=0.05)
        batcher.start()
        out = await asyncio.gather(*(batcher.submit(torch.full((3,), float(i))) for i in range(10)))
        await batcher.stop()
        return [float(o) for o in out], batcher.batch_sizes

    values, sizes = asyncio.run(scenario(4))
    assert values == [3.0 * i for i in range(10)]
    assert sizes == [4, 4, 2]
    values, sizes = asyncio.run(scenario(1))
    assert values == [3.0 * i for i in range(10)] and sizes == [1] * 10


def test_batcher_passes_a_model_error_to_every_waiting_request() -> None:
    def broken(x: torch.Tensor) -> np.ndarray:
        raise RuntimeError("model exploded")

    async def scenario() -> list:
        batcher = Batcher(broken, max_batch_size=4, timeout=0.01)
        batcher.start()
        out = await asyncio.gather(*(batcher.submit(torch.zeros(2)) for _ in range(3)),
                                   return_exceptions=True)  # fmt: skip
        await batcher.stop()
        return out

    assert all(
        isinstance(e, RuntimeError) and "exploded" in str(e) for e in asyncio.run(scenario())
    )


def test_api_key_on_every_route_but_health(bundle_dir: Path) -> None:
    key = "k" * 24
    server = start_server(bundle=str(bundle_dir), api_key=key)
    try:
        with server.client() as client:
            assert client.get("/health").status_code == 200
            for method, path in [("GET", "/"), ("GET", "/info"), ("GET", "/metrics"),
                                 ("GET", "/openapi.json"), ("POST", "/predict")]:  # fmt: skip
                r = client.request(method, path, content=image_bytes(1), headers=PNG)
                assert r.status_code == 401 and r.json()["error"] == "unauthorized", path
            wrong = client.get("/info", headers={"X-API-Key": "x" * 24})
            assert wrong.status_code == 401
            assert client.get("/info", headers={"X-API-Key": key}).status_code == 200
            assert (
                client.get("/info", headers={"Authorization": f"Bearer {key}"}).status_code == 200
            )
            assert client.get("/", params={"api_key": key}).status_code == 200
            r = client.post("/predict", content=image_bytes(1), headers={**PNG, "X-API-Key": key})
            assert r.status_code == 200
    finally:
        server.stop()


def test_onnx_backend_matches_predict_and_refuses_gradcam(bundle_dir: Path, image_files) -> None:
    server = start_server(bundle=str(bundle_dir), backend="onnx", gradcam=True)
    expected = predict(bundle_dir, [str(p) for p in image_files], top_k=3)
    try:
        with server.client() as client:
            assert client.get("/info").json()["backend"] == "onnx"
            files = [("file", (p.name, p.read_bytes())) for p in image_files]
            rows = client.post("/predict?top_k=3", files=files).json()["predictions"]
            cam = client.post("/predict?gradcam=1", content=image_bytes(1), headers=PNG)
    finally:
        server.stop()
    assert [r["label"] for r in rows] == [r["label"] for r in expected]
    for row, exp in zip(rows, expected, strict=True):
        np.testing.assert_allclose([t["prob"] for t in row["top_k"]],
                                   [t["prob"] for t in exp["top_k"]], atol=1e-4)  # fmt: skip
    assert cam.status_code == 400 and cam.json()["error"] == "gradcam_unavailable"


def test_gradcam_request_without_the_flag_is_refused(bundle_dir: Path) -> None:
    server = start_server(bundle=str(bundle_dir))
    try:
        with server.client() as client:
            r = client.post("/predict?gradcam=1", content=image_bytes(1), headers=PNG)
            ok = client.post("/predict", content=image_bytes(1), headers=PNG)
    finally:
        server.stop()
    assert r.status_code == 400 and "--gradcam" in r.json()["reason"]
    assert ok.status_code == 200


def test_model_loaded_at_start_up_and_key_from_environment(
    bundle_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "env-key-0123456789abcdef"
    monkeypatch.setenv("GRAFT_API_KEY", key)
    server = start_server(preload=False, bundle=str(bundle_dir))  # /ready answered 200 once loaded
    try:
        with server.client() as client:
            assert client.get("/info").status_code == 401
            r = client.post("/predict", content=image_bytes(1), headers={**PNG, "X-API-Key": key})
    finally:
        server.stop()
    assert r.status_code == 200 and r.json()["predictions"][0]["label"]


@pytest.mark.slow
def test_two_worker_processes_answer_and_stop_on_sigterm(bundle_dir: Path) -> None:
    import os
    import signal
    import socket
    import subprocess
    import time

    import httpx

    with socket.socket() as s:  # a free port (--workers needs a fixed one)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "graft", "serve", str(bundle_dir), "--port", str(port),
         "--workers", "2", "--json"], env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        text = ""
        for line in proc.stdout:  # --json: one document once a worker answers
            text += line
            if line.rstrip() == "}":
                break
        doc = json.loads(text)
        assert doc["url"] == url and doc["classes"] == ["blue", "green", "red"]
        assert doc["model"] == "test_efficientnet" and doc["backend"] == "torch"
        deadline, ready = time.monotonic() + 120, False
        while not ready and time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = httpx.get(url + "/ready", timeout=5).status_code == 200
            except httpx.TransportError:
                time.sleep(0.2)
        assert ready
        labels = {
            httpx.post(
                url + "/predict", content=image_bytes(i), headers=PNG, timeout=60
            ).status_code
            for i in range(8)
        }
        assert labels == {200}
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
