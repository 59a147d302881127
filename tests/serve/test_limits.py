"""Bad requests: each gets a 4xx JSON reply with a reason, and the server goes on serving."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from .conftest import image_bytes

PNG = {"Content-Type": "image/png"}
MULTIPART = {"Content-Type": "multipart/form-data; boundary=zz"}
FORM_NO_FILE = b'--zz\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--zz--\r\n'


def _big_png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(buf, format="PNG")
    return buf.getvalue()


def _truncated() -> bytes:
    data = image_bytes(5, (64, 64))
    return data[: len(data) // 2]


def _chunks(total: int, size: int = 64 * 1024):
    sent = 0
    while sent < total:
        yield b"\0" * min(size, total - sent)
        sent += size


BAD = {
    "body too large (Content-Length)": (
        dict(content=b"\0" * (1024 * 1024 + 10), headers=PNG), 413, "body_too_large"),
    "body too large (streamed, no length)": (
        dict(content=_chunks(3 * 1024 * 1024), headers=PNG), 413, "body_too_large"),
    "too many pixels": (dict(content=_big_png(1200, 1000), headers=PNG), 413, "too_many_pixels"),
    "not an image": (dict(content=b"hello, world" * 10, headers=PNG), 422, "undecodable_image"),
    "truncated image": (dict(content=_truncated(), headers=PNG), 422, "undecodable_image"),
    "wrong content type": (
        dict(content=b'{"image": "x"}', headers={"Content-Type": "application/json"}),
        415, "unsupported_content_type"),
    "no content type": (dict(content=image_bytes(1)), 415, "unsupported_content_type"),
    "empty body": (dict(content=b"", headers=PNG), 400, "empty_body"),
    "form without files": (dict(content=FORM_NO_FILE, headers=MULTIPART), 400, "empty_body"),
    "empty multipart body": (dict(content=b"", headers=MULTIPART), 400, "empty_body"),
    "broken multipart": (dict(content=b"--zz\r\nnonsense", headers=MULTIPART), 400, "empty_body"),
    "multipart without boundary": (
        dict(content=FORM_NO_FILE, headers={"Content-Type": "multipart/form-data"}), 400,
        "bad_multipart"),
    "too many images": (
        dict(files=[("file", (f"{i}.png", image_bytes(i))) for i in range(9)]), 413, "bad_multipart"),
    "top_k not a number": (
        dict(content=image_bytes(1), headers=PNG, params={"top_k": "x"}), 422, "invalid_parameter"),
    "top_k zero": (dict(content=image_bytes(1), headers=PNG, params={"top_k": 0}), 422,
                   "invalid_parameter"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_bad_request_is_refused_then_server_keeps_serving(live, case: str) -> None:
    kwargs, status, code = BAD[case]
    with live.client() as client:
        r = client.post("/predict", **kwargs)
        assert r.status_code == status, r.text
        body = r.json()
        assert body["error"] == code and body["status"] == status
        assert len(body["reason"]) > 20  # says what is wrong and what to send
        good = client.post("/predict", content=image_bytes(2), headers=PNG)
    assert good.status_code == 200
    assert good.json()["predictions"][0]["label"]


def test_an_empty_part_among_good_ones_names_the_image(live) -> None:
    files = [("file", ("good.png", image_bytes(1))), ("file", ("empty.png", b""))]
    with live.client() as client:
        r = client.post("/predict", files=files)
    assert r.status_code == 400 and "empty.png" in r.json()["reason"]


def test_unknown_route_and_method(live) -> None:
    with live.client() as client:
        assert client.get("/nope").json()["error"] == "not_found"
        r = client.get("/predict")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


def test_errors_are_counted_in_metrics(live) -> None:
    with live.client() as client:
        client.post("/predict", content=b"", headers=PNG)
        text = client.get("/metrics").text
    line = [
        x
        for x in text.splitlines()
        if x.startswith('graft_request_errors_total{reason="empty_body"}')
    ]
    assert line and float(line[0].split()[-1]) >= 1


def test_decode_pixel_limit_is_checked_before_decoding(bundle_dir) -> None:
    from graft.serving.config import ServeConfig
    from graft.serving.engine import Engine, RequestError

    engine = Engine.load(ServeConfig(bundle=str(bundle_dir), max_pixels=100))
    with pytest.raises(RequestError) as e:
        engine.decode(_big_png(11, 10), "x.png")
    assert e.value.status == 413 and "110 pixels" in e.value.reason.replace(",", "")
    x = engine.decode(_big_png(10, 10), "ok.png")
    assert tuple(x.shape) == (3, 32, 32) and np.isfinite(x.numpy()).all()
