"""The HTTP API on a live loopback server: /predict equals graft predict, /info, /health, /ready,
/metrics, OpenAPI, the request log."""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import graft
from graft.inference import predict

from .conftest import CLASSES, image_bytes


def _probs(rows: list[dict]) -> np.ndarray:
    """Probabilities per image in class order, from top-k rows that cover every class."""
    out = np.zeros((len(rows), len(CLASSES)))
    for i, row in enumerate(rows):
        for t in row["top_k"]:
            out[i, CLASSES.index(t["label"])] = t["prob"]
    return out


def test_raw_body_equals_graft_predict(live, bundle_dir: Path, image_files: list[Path]) -> None:
    expected = predict(bundle_dir, [str(p) for p in image_files], top_k=3)
    got = []
    with live.client() as client:
        for path in image_files:
            ctype = "image/png" if path.suffix == ".png" else "image/jpeg"
            r = client.post("/predict?top_k=3", content=path.read_bytes(),
                            headers={"Content-Type": ctype})  # fmt: skip
            assert r.status_code == 200, r.text
            (row,) = r.json()["predictions"]
            got.append(row)
    assert [r["label"] for r in got] == [r["label"] for r in expected]
    np.testing.assert_allclose(_probs(got), _probs(list(expected)), atol=1e-5)
    assert [[t["label"] for t in r["top_k"]] for r in got] == [
        [t["label"] for t in r["top_k"]] for r in expected
    ]


def test_multipart_several_images_in_order(live, bundle_dir: Path, image_files: list[Path]) -> None:
    expected = predict(bundle_dir, [str(p) for p in image_files], top_k=3)
    files = [("file", (p.name, p.read_bytes(), "application/octet-stream")) for p in image_files]
    with live.client() as client:
        r = client.post("/predict", params={"top_k": 3}, files=files)
    assert r.status_code == 200, r.text
    rows = r.json()["predictions"]
    assert [row["name"] for row in rows] == [p.name for p in image_files]
    np.testing.assert_allclose(_probs(rows), _probs(list(expected)), atol=1e-5)


def test_top_k_caps_and_default(live) -> None:
    with live.client() as client:
        one = client.post(
            "/predict?top_k=1", content=image_bytes(7), headers={"Content-Type": "image/png"}
        )
        many = client.post("/predict?top_k=50", content=image_bytes(7), headers={"Content-Type": "image/png"})  # fmt: skip
    assert len(one.json()["predictions"][0]["top_k"]) == 1
    top = many.json()["predictions"][0]["top_k"]
    assert len(top) == len(CLASSES)  # capped at the number of classes
    assert [t["prob"] for t in top] == sorted((t["prob"] for t in top), reverse=True)
    assert sum(t["prob"] for t in top) == pytest.approx(1.0, abs=1e-5)


def test_gradcam_overlay_is_a_png(live) -> None:
    import base64
    import io

    from PIL import Image

    with live.client() as client:
        r = client.post("/predict?gradcam=1", content=image_bytes(3), headers={"Content-Type": "image/png"})  # fmt: skip
        plain = client.post("/predict", content=image_bytes(3), headers={"Content-Type": "image/png"})  # fmt: skip
    assert r.status_code == 200, r.text
    uri = r.json()["predictions"][0]["gradcam"]
    assert uri.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert image.format == "PNG" and image.width > image.height > 0  # input | overlay side by side
    assert plain.json()["predictions"][0]["gradcam"] is None
    assert r.json()["predictions"][0]["top_k"] == plain.json()["predictions"][0]["top_k"]


def test_health_ready_info(live, bundle_dir: Path) -> None:
    with live.client() as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/ready").json()["ready"] is True
        info = client.get("/info").json()
    assert info["classes"] == CLASSES
    assert info["model"] == "test_efficientnet"
    assert info["input_size"] == [3, 32, 32]
    assert info["graft_version"] == graft.__version__
    assert (
        info["bundle_hash"] == hashlib.sha256((bundle_dir / "model.json").read_bytes()).hexdigest()
    )
    assert info["backend"] == "torch" and info["gradcam"] is True


def test_openapi_schema_lists_routes_and_bodies(live) -> None:
    with live.client() as client:
        schema = client.get("/openapi.json").json()
    assert {"/predict", "/health", "/ready", "/info", "/metrics"} <= set(schema["paths"])
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert {"image/*", "multipart/form-data", "application/octet-stream"} <= set(body)
    assert "413" in schema["paths"]["/predict"]["post"]["responses"]


def test_concurrent_requests_are_batched_and_metrics_count_them(live) -> None:
    def one(seed: int) -> dict:
        with live.client() as client:
            r = client.post("/predict", content=image_bytes(seed), headers={"Content-Type": "image/png"})  # fmt: skip
            assert r.status_code == 200
            return r.json()["predictions"][0]

    with ThreadPoolExecutor(8) as pool:
        concurrent = list(pool.map(one, range(100, 116)))
    sizes = live.app.app.state.serve["batcher"].batch_sizes
    assert max(sizes) > 1  # requests that arrived together ran as one batch
    assert max(sizes) <= 8  # --max-batch-size
    alone = [one(seed) for seed in range(100, 104)]
    np.testing.assert_allclose(_probs(concurrent[:4]), _probs(alone), atol=1e-5)
    with live.client() as client:
        text = client.get("/metrics").text
    assert 'graft_requests_total{route="/predict",status="200"}' in text
    assert "graft_batch_size_bucket" in text and "graft_request_latency_seconds_bucket" in text
    count = _metric(text, "graft_batch_size_count")
    total = _metric(text, "graft_batch_size_sum")
    assert total > count  # more images than batches: batching happened
    assert _metric(text, "graft_images_total") == total


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_request_log_lines_have_latency(live) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("graft.serve")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with live.client() as client:
            client.post("/predict", content=image_bytes(1), headers={"Content-Type": "image/png"})
            client.post("/predict", content=b"", headers={"Content-Type": "image/png"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    lines = [r.getMessage() for r in records]
    ok = [m for m in lines if m.startswith("POST /predict 200 ")]
    bad = [m for m in lines if m.startswith("POST /predict 400 ")]
    assert ok and ok[0].endswith(" ms") and float(ok[0].split()[3]) > 0
    assert bad and bad[0].endswith("empty_body")
