"""Benchmark: ``graft serve`` under a bounded load on localhost, against ``graft predict``.

Model: EfficientNet-Lite0 with the shipped ImageNet weights and a 10-class head
(``graft.create_model("efficientnet_lite0", num_classes=10)``) saved as a bundle at 96 px and at
224 px, and each exported once to ONNX (``graft export``). Images: ``--images`` generated 320x240
JPEGs (the same files for the server and for ``graft predict``).

For each size and backend (torch, onnx) two servers run side by side as separate processes
(``python -m graft serve BUNDLE --port 0``, on 127.0.0.1): batching on (``--max-batch-size 32
--batch-timeout 5``) and off (``--max-batch-size 1``). An asyncio client (plain HTTP/1.1 over
asyncio streams: httpx's own CPU cost capped the rate on 2 shared cores) sends a fixed
number of single-image requests (raw JPEG bodies, over keep-alive connections) at concurrency 1,
8 and 32; the two servers are
measured in alternating rounds so that load from other processes falls on both alike. Reported:
requests/s, requests per CPU-second of the server process (robust to load from other
processes), p50 and p99 latency and failed requests. ``graft predict`` (the Python function, batch
size 32, same images, same backend, decoding in the calling process) gives the images/s to compare
with; it is measured before and after the server runs of its size and backend, and averaged.

Bad inputs during load: at concurrency 32 against the batching server, every fourth request is a
bad one (body over ``--max-body-mb``, a 36-megapixel PNG over ``--max-pixels``, bytes that are not
an image, a truncated JPEG, a JSON content type, an empty body); every bad request must get its 4xx
and every good request a 200.

The model alone (``serve_bound.py``, before each size and backend's servers): images/s at batch
1, 8 and 32 with no server, which bounds what batching can give (printed next to the servers'
numbers, with the mean batch size each server formed, from its ``/metrics``).

Request counts (defaults): concurrency 1: 24, 8: 64, 32: 128 requests per server, plus 8 warm-up
requests each; bad-input phase: 128 good + 42 bad per size and backend.

Run: ``.venv/bin/python bench/bench_serve.py [--work /tmp/bench_serve] [--sizes 96 224]
[--backends torch onnx] [--max-batch-size 32]``
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image
from serve_bound import BATCHES, model_costs, raw_bound

ROOT = Path(__file__).resolve().parents[1]
# as graft serve does: idle OpenMP threads sleep (graft predict in this process gets the same)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
COUNTS = {1: 24, 8: 64, 32: 128}
WARMUP = 8
ROUNDS = 2
BATCHING = {
    "on": ["--max-batch-size", "32", "--batch-timeout", "5"],
    "off": ["--max-batch-size", "1"],
}
LIMITS = ["--max-body-mb", "2", "--max-pixels", "20000000"]


def make_images(folder: Path, n: int) -> list[Path]:
    """``n`` 320x240 JPEGs with smooth structure and noise (realistic decode cost)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:240, 0:320]
    paths = []
    for i in range(n):
        base = np.stack(
            [np.sin(xx / (9 + i % 7)), np.cos(yy / (11 + i % 5)), np.sin((xx + yy) / 17)], -1
        )
        arr = np.clip(128 + 90 * base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        path = folder / f"img{i:03d}.jpg"
        Image.fromarray(arr).save(path, quality=90)
        paths.append(path)
    return paths


def make_bundles(work: Path, size: int) -> dict[str, Path]:
    """Lite0 bundle at ``size`` px (shipped ImageNet weights, 10-class head) and its ONNX export."""
    from graft.bundle import save_bundle
    from graft.data import resolve_data_config
    from graft.export import export_model
    from graft.models import create_model

    torch_dir, onnx_dir = work / f"lite0_{size}", work / f"lite0_{size}_onnx"
    if not (torch_dir / "model.json").exists():
        model = create_model("efficientnet_lite0", num_classes=10).eval()
        save_bundle(torch_dir, model, [f"c{i}" for i in range(10)],
                    resolve_data_config(model, image_size=size))  # fmt: skip
    if not (onnx_dir / "model.json").exists():
        export_model(torch_dir, out=onnx_dir)
    return {"torch": torch_dir, "onnx": onnx_dir}


# ------------------------------------------------------------------------------------- servers


class Server:
    """``python -m graft serve`` in a child process on 127.0.0.1 with an OS-chosen port."""

    def __init__(self, bundle: Path, flags: list[str]) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "graft", "serve", str(bundle), "--port", "0", *LIMITS, *flags]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
        self.log: list[str] = []
        for line in self.proc.stderr:
            self.log.append(line)
            match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if match:
                self.url = match.group(1)
                threading.Thread(
                    target=lambda: self.log.extend(self.proc.stderr), daemon=True
                ).start()
                return
        raise RuntimeError("graft serve did not start:\n" + "".join(self.log))

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (all its threads)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def batch_stats(self) -> tuple[float, float]:
        """(images, model calls) so far, from the server's ``graft_batch_size`` histogram."""
        import urllib.request

        text = urllib.request.urlopen(self.url + "/metrics", timeout=30).read().decode()
        values = dict(re.findall(r"^graft_batch_size_(sum|count) ([0-9.e+]+)$", text, re.M))
        return float(values.get("sum", 0)), float(values.get("count", 0))

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(timeout=120)


async def load(url: str, bodies: list[tuple[bytes, str]], concurrency: int) -> dict:
    """Send every body once with at most ``concurrency`` in flight; latencies and statuses.

    ``concurrency`` keep-alive connections, each a minimal asyncio HTTP/1.1 client (a request
    costs the client ~0.1 ms of CPU, where httpx costs several: on 2 shared cores httpx itself
    capped the measured rate).
    """
    host, port = url.removeprefix("http://").split(":")
    queue: asyncio.Queue = asyncio.Queue()
    for i, item in enumerate(bodies):
        queue.put_nowait((i, item))
    results: list = [None] * len(bodies)

    async def worker() -> None:
        conn = None
        while not queue.empty():
            i, (body, ctype) = queue.get_nowait()
            start = time.perf_counter()
            try:
                conn = conn or await asyncio.open_connection(host, int(port))
                status, close = await post(conn, host, body, ctype)
                if close:
                    conn[1].close()
                    conn = None
            except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                status, conn = type(e).__name__, None
            results[i] = (status, time.perf_counter() - start)
        if conn:
            conn[1].close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"wall": time.perf_counter() - start, "results": results}


async def post(conn: tuple, host: str, body: bytes, ctype: str) -> tuple[int, bool]:
    """One ``POST /predict``; (status, whether the server closes the connection)."""
    reader, writer = conn
    head = (f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")  # fmt: skip
    writer.write(head.encode() + body)
    await writer.drain()
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
    payload = await reader.readexactly(int(headers.get("content-length", 0)))
    if status == 200:
        json.loads(payload)["predictions"][0]["label"]  # a real answer, not just a status
    return status, headers.get("connection", "").lower() == "close"


def summarize(runs: list[dict]) -> dict:
    latencies = [t for run in runs for s, t in run["results"] if s == 200]
    failed = sum(1 for run in runs for s, _ in run["results"] if s != 200)
    n = sum(len(run["results"]) for run in runs)
    wall = sum(run["wall"] for run in runs)
    return {
        "requests": n,
        "failed": failed,
        "req_s": n / wall,
        "p50_ms": 1e3 * statistics.median(latencies) if latencies else None,
        "p99_ms": 1e3 * float(np.percentile(latencies, 99)) if latencies else None,
    }


def serve_runs(bundle: Path, bodies: list[tuple[bytes, str]]) -> dict:
    """Batching on and off, each concurrency, in alternating rounds."""
    servers = {name: Server(bundle, flags) for name, flags in BATCHING.items()}
    out: dict = {}
    try:
        for server in servers.values():  # warm-up: first calls allocate
            asyncio.run(load(server.url, bodies[:WARMUP], 4))
        for concurrency, count in COUNTS.items():
            runs: dict = {name: [] for name in servers}
            per_round = count // ROUNDS
            cpu = dict.fromkeys(servers, 0.0)
            stats = {name: server.batch_stats() for name, server in servers.items()}
            for r in range(ROUNDS):
                chunk = [bodies[(r * per_round + i) % len(bodies)] for i in range(per_round)]
                for name, server in servers.items():
                    before = server.cpu_seconds()
                    runs[name].append(asyncio.run(load(server.url, chunk, concurrency)))
                    cpu[name] += server.cpu_seconds() - before
            for name in servers:
                row = summarize(runs[name])
                row["req_cpu_s"] = row["requests"] / max(cpu[name], 1e-9)
                images, calls = np.subtract(servers[name].batch_stats(), stats[name])
                row["mean_batch"] = images / max(calls, 1)
                out[f"batching {name}, c={concurrency}"] = row
                print(f"    batching {name:<3} c={concurrency:<2}: {row['req_s']:6.1f} req/s  "
                      f"{row['req_cpu_s']:6.1f} req/CPU-s  p50 {row['p50_ms']:7.1f} ms  p99 "
                      f"{row['p99_ms']:7.1f} ms  failed {row['failed']}  mean batch "
                      f"{row['mean_batch']:.1f}", flush=True)  # fmt: skip
        out["bad inputs during load"] = bad_input_run(servers["on"].url, bodies)
    finally:
        out["exit codes"] = {name: server.stop() for name, server in servers.items()}
    return out


def bad_bodies() -> list[tuple[bytes, str, int]]:
    """(body, content type, expected status) for each kind of bad request."""
    bomb = io.BytesIO()
    Image.new("L", (6000, 6000)).save(bomb, format="PNG")  # 36 MP, ~40 kB compressed
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(jpeg, format="JPEG")
    return [
        (b"\xff" * (3 * 1024 * 1024), "image/jpeg", 413),  # body over --max-body-mb 2
        (bomb.getvalue(), "image/png", 413),  # pixels over --max-pixels
        (b"this is not an image" * 20, "image/jpeg", 422),
        (jpeg.getvalue()[:200], "image/jpeg", 422),  # truncated
        (b'{"image": "cat.jpg"}', "application/json", 415),
        (b"", "image/jpeg", 400),
    ]


def bad_input_run(url: str, bodies: list[tuple[bytes, str]], good: int = 128) -> dict:
    bad = bad_bodies()
    mixed, expected = [], []
    for i in range(good):
        mixed.append(bodies[i % len(bodies)])
        expected.append(200)
        if i % 3 == 2:  # every fourth request is a bad one
            body, ctype, status = bad[(i // 3) % len(bad)]
            mixed.append((body, ctype))
            expected.append(status)
    run = asyncio.run(load(url, mixed, 32))
    statuses = [s for s, _ in run["results"]]
    good_failed = sum(1 for s, e in zip(statuses, expected, strict=True) if e == 200 and s != 200)
    bad_wrong = sum(1 for s, e in zip(statuses, expected, strict=True) if e != 200 and s != e)
    row = {"good": expected.count(200), "bad": len(expected) - expected.count(200),
           "good_failed": good_failed, "bad_wrong_status": bad_wrong}  # fmt: skip
    print(f"    bad inputs during load: {row}", flush=True)
    return row


# ------------------------------------------------------------------------------ graft predict


def predict_rate(bundle: Path, paths: list[Path]) -> tuple[float, float]:
    """Images/s and images per CPU-second of ``graft.predict`` on ``paths`` (batch size 32),
    after a warm-up call."""
    from graft.bundle import load_bundle
    from graft.inference import predict

    loaded = load_bundle(bundle)
    predict(loaded, [str(p) for p in paths[:8]], batch_size=32)
    start, cpu = time.perf_counter(), time.process_time()
    preds = predict(loaded, [str(p) for p in paths], batch_size=32)
    assert len(preds) == len(paths)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return len(paths) / wall, len(paths) / cpu


def run_size(work: Path, size: int, paths: list[Path], bodies: list, backends: list[str]) -> dict:
    bundles = make_bundles(work, size)
    out = {}
    for backend in backends:
        bundle = bundles[backend]
        print(f"  {size} px, {backend}", flush=True)
        bound = raw_bound(bundle, bodies)
        print("    model alone: " + ", ".join(f"batch {b} {bound['img/s'][b]:.1f} img/s"
              for b in BATCHES) + f"; bound {bound['batching bound']:.2f}x; decode "
              f"{bound['decode ms/img']:.1f} ms/img", flush=True)  # fmt: skip
        before = predict_rate(bundle, paths)
        serve = serve_runs(bundle, bodies)
        after = predict_rate(bundle, paths)
        predict_img_s = (before[0] + after[0]) / 2
        predict_cpu = (before[1] + after[1]) / 2
        on32, off32 = serve["batching on, c=32"], serve["batching off, c=32"]
        serve["predict img/s"] = {"before": before[0], "after": after[0], "mean": predict_img_s}
        serve["predict img/CPU-s"] = predict_cpu
        serve["ratios"] = {
            "batching on / off at c=32": on32["req_s"] / off32["req_s"],
            "served c=32 / predict": on32["req_s"] / predict_img_s,
            "batching on / off at c=32, per CPU-s": on32["req_cpu_s"] / off32["req_cpu_s"],
            "served c=32 / predict, per CPU-s": on32["req_cpu_s"] / predict_cpu,
            # the server against the model alone (which decodes nothing and answers no HTTP)
            "on c=32 / model best batch": on32["req_s"] / bound["img/s"][bound["best batch"]],
            "off c=32 / model batch 1": off32["req_s"] / bound["img/s"][1],
        }
        serve["model alone"] = bound
        print(f"    graft predict {predict_img_s:.1f} img/s; ratios {serve['ratios']}", flush=True)
        out[backend] = serve
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", default="/tmp/bench_serve")
    p.add_argument("--sizes", type=int, nargs="+", default=[96, 224])
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--backends", nargs="+", default=["torch", "onnx"], choices=["torch", "onnx"])
    p.add_argument("--max-batch-size", type=int, default=32,
                   help="--max-batch-size of the batching-on server")  # fmt: skip
    p.add_argument("--out", default=None, help="JSON results (default: WORK/results.json)")
    p.add_argument("--model-costs", action="store_true",
                   help="only measure model time per image by batch size (no server)")  # fmt: skip
    args = p.parse_args()
    work = Path(args.work)
    BATCHING["on"][1] = str(args.max_batch_size)
    if args.model_costs:
        bundles = {(size, backend): bundle for size in args.sizes
                   for backend, bundle in make_bundles(work, size).items()}  # fmt: skip
        rows = model_costs(bundles)
        print("| size | backend | " + " | ".join(f"batch {b}" for b in (1, 4, 8, 16, 32)) + " |")
        print("|---|---|" + "---|" * 5)
        for r in rows:
            cells = " | ".join(f"{r[b][0]:.1f} ({r[b][1]:.1f})" for b in (1, 4, 8, 16, 32))
            print(f"| {r['size']} | {r['backend']} | {cells} |")
        return
    paths = make_images(work / "images", args.images)
    bodies = [(path.read_bytes(), "image/jpeg") for path in paths]
    started = datetime.now(timezone.utc)
    results = {"date": started.strftime("%Y-%m-%d %H:%M UTC"), "load_before": os.getloadavg(),
               "counts": COUNTS, "images": args.images, "batching": BATCHING,
               "sizes": {}}  # fmt: skip
    for size in args.sizes:
        results["sizes"][str(size)] = run_size(work, size, paths, bodies, args.backends)
    results["load_after"] = os.getloadavg()
    out = Path(args.out or work / "results.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(markdown(results))
    print(f"results: {out}")


def markdown(results: dict) -> str:
    lines = ["| size | backend | batching | concurrency | req/s | req/CPU-s | p50 ms | p99 ms | failed |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    summary = ["| size | backend | graft predict img/s (img/CPU-s) | batching on/off at c=32: wall "
               "(CPU) | served c=32 / predict: wall (CPU) | bad inputs: good failed / bad with wrong "
               "status |", "|---|---|---|---|---|---|"]  # fmt: skip
    for size, backends in results["sizes"].items():
        for backend, serve in backends.items():
            for key, row in serve.items():
                if key.startswith("batching"):
                    batching, conc = key.removeprefix("batching ").split(", c=")
                    lines.append(f"| {size} | {backend} | {batching} | {conc} | {row['req_s']:.1f} | "
                                 f"{row['req_cpu_s']:.1f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
                                 f"{row['failed']} |")  # fmt: skip
            r, bad = serve["ratios"], serve["bad inputs during load"]
            summary.append(f"| {size} | {backend} | {serve['predict img/s']['mean']:.1f} "
                           f"({serve['predict img/CPU-s']:.1f}) | "
                           f"{r['batching on / off at c=32']:.2f}x ({r['batching on / off at c=32, per CPU-s']:.2f}x) | "
                           f"{r['served c=32 / predict']:.2f}x ({r['served c=32 / predict, per CPU-s']:.2f}x) | "
                           f"{bad['good_failed']} of {bad['good']} / {bad['bad_wrong_status']} of {bad['bad']} |")  # fmt: skip
    return "\n".join(lines) + "\n\n" + "\n".join(summary) + "\n\n" + bound_table(results)


def bound_table(results: dict) -> str:
    """The model alone against the servers, per size and backend (see serve_bound.py)."""
    lines = ["| size | backend | model alone img/s: batch " + " / ".join(map(str, BATCHES)) +
             " | bound: best batch / batch 1, wall (CPU) | decode ms/img (CPU) | served on/off at "
             "c=32 | share of the bound | on c=32 / model best batch | off c=32 / model batch 1 | "
             "mean batch on, c=32 |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for size, backends in results["sizes"].items():
        for backend, serve in backends.items():
            m, r = serve["model alone"], serve["ratios"]
            rates = " / ".join(f"{m['img/s'][b]:.1f}" for b in BATCHES)
            on_off = r["batching on / off at c=32"]
            lines.append(f"| {size} | {backend} | {rates} | {m['batching bound']:.2f}x "
                         f"({m['batching bound, per CPU-s']:.2f}x) | {m['decode ms/img']:.1f} "
                         f"({m['decode CPU-ms/img']:.1f}) | {on_off:.2f}x | "
                         f"{on_off / m['batching bound']:.0%} | {r['on c=32 / model best batch']:.0%} | "
                         f"{r['off c=32 / model batch 1']:.0%} | "
                         f"{serve['batching on, c=32']['mean_batch']:.1f} |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
