"""``graft serve`` as a process: it binds 127.0.0.1, logs each request, and on SIGTERM lets the
request in flight finish, then exits 0. Also: a bad bundle is one error line and exit code 2."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from graft.cli import main

from .conftest import image_bytes

ROOT = Path(__file__).resolve().parents[2]


def _start(bundle: Path, *flags: str) -> tuple[subprocess.Popen, str, list[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "graft", "serve", str(bundle), "--port", "0", *flags],
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    lines: list[str] = []
    for line in proc.stderr:  # bounded: the server prints this line once it listens, or exits
        lines.append(line)
        match = re.search(r"listening on (http://[\d.]+:\d+)", line)
        if match:
            threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True).start()
            return proc, match.group(1), lines
    proc.wait(timeout=30)
    raise AssertionError("graft serve exited before listening:\n" + "".join(lines))


def _in_flight(url: str) -> float:
    text = httpx.get(url + "/metrics", timeout=10).text
    line = [
        x for x in text.splitlines() if x.startswith('graft_requests_in_flight{route="/predict"}')
    ]
    return float(line[0].split()[-1]) if line else 0.0


def test_sigterm_finishes_the_request_in_flight_then_exits_0(bundle_dir: Path) -> None:
    proc, url, lines = _start(bundle_dir, "--batch-timeout", "3000", "--max-batch-size", "64")
    try:
        assert url.startswith("http://127.0.0.1:")  # the default host
        result: dict = {}

        def request() -> None:
            r = httpx.post(url + "/predict", content=image_bytes(1),
                           headers={"Content-Type": "image/png"}, timeout=60)  # fmt: skip
            result["status"], result["body"] = r.status_code, r.json()

        thread = threading.Thread(target=request)
        thread.start()
        deadline = time.monotonic() + 30
        while _in_flight(url) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _in_flight(url) >= 1  # the request waits in the batcher (3 s batch timeout)
        proc.send_signal(signal.SIGTERM)
        thread.join(timeout=60)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert result["status"] == 200 and result["body"]["predictions"][0]["label"]
    log = "".join(lines)
    assert "SIGTERM: finishing requests in flight" in log
    assert re.search(r"POST /predict 200 \d+\.\d ms", log)
    assert "graft serve: stopped" in log


def test_bad_bundle_is_one_error_line_and_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["serve", str(tmp_path / "missing"), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("graft serve: error:")


def test_bad_option_is_exit_2(bundle_dir: Path, capsys) -> None:
    assert main(["serve", str(bundle_dir), "--max-batch-size", "0"]) == 2
    assert "--max-batch-size must be at least 1" in capsys.readouterr().err


def test_json_is_one_document_on_stdout_once_ready(bundle_dir: Path) -> None:
    """`--json`: url, host, port, model, backend, classes on stdout when requests are accepted;
    the request log stays on stderr and nothing else reaches stdout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "graft", "serve", str(bundle_dir), "--port", "0", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        text = ""
        for line in proc.stdout:  # bounded: the document comes once ready, or the process exits
            text += line
            if line.rstrip() == "}":
                break
        doc = json.loads(text)
        assert set(doc) == {"url", "host", "port", "model", "backend", "classes"}
        assert doc["url"] == f"http://127.0.0.1:{doc['port']}" and doc["port"] > 0
        assert (doc["host"], doc["model"], doc["backend"]) == ("127.0.0.1", "test_efficientnet",
                                                               "torch")  # fmt: skip
        assert doc["classes"] == ["blue", "green", "red"]
        assert httpx.get(doc["url"] + "/ready", timeout=10).status_code == 200  # ready, as said
        r = httpx.post(doc["url"] + "/predict", content=image_bytes(2),
                       headers={"Content-Type": "image/png"}, timeout=60)  # fmt: skip
        assert r.status_code == 200
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out == ""  # exactly one JSON document on stdout
    assert "listening on" in err and re.search(r"POST /predict 200", err)
