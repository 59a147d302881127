"""The physical bound of ``bench_serve.py``: the model alone, no server, by batch size.

A server cannot run a model faster than the model runs: if one call on a batch of 32 images
takes as long as 32 calls on one image, batching cannot raise the requests/s, whatever the
server does. :func:`raw_bound` measures the images/s of the served model (the server's own
``Engine``, so the same thread count, memory format and ONNX Runtime session options as
``graft serve``) at batch 1, 8 and 32, on the benchmark's own decoded images, plus the cost of
decoding and preprocessing one JPEG (the other work a request needs). The bound on
"requests/s with batching / without" is then ``max(images/s at batch 8, at batch 32) /
images/s at batch 1``.

Example:
    >>> bound = raw_bound(Path("/tmp/bench_serve/lite0_96"), bodies)  # doctest: +SKIP
    >>> bound["batching bound"]  # doctest: +SKIP
    3.1
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

# torch is imported inside the functions: bench_serve.py sets OMP_WAIT_POLICY=PASSIVE (as
# graft serve does) after importing this module, and the variable only counts before torch loads
# (with spinning OpenMP threads a batch-1 call here took 1.2 s instead of about 50 ms)
BATCHES = (1, 8, 32)


def raw_bound(bundle: Path, bodies: list[tuple[bytes, str]], rounds: int = 2) -> dict:
    """Images/s (and per CPU-second) of the model alone at each of :data:`BATCHES`, decode cost.

    Every batch size runs 32 images per round (32 calls of 1, 4 of 8, 1 of 32), in ``rounds``
    interleaved rounds after two warm-up calls each, so that load from other processes falls on
    all batch sizes alike.
    """
    import torch

    from graft.serving.config import ServeConfig
    from graft.serving.engine import Engine

    engine = Engine.load(ServeConfig(bundle=str(bundle)))
    try:
        start, cpu = time.perf_counter(), time.process_time()
        images = [engine.decode(body, f"img{i}") for i, (body, _) in enumerate(bodies)]
        decode_wall, decode_cpu = time.perf_counter() - start, time.process_time() - cpu
        x = torch.stack([images[i % len(images)] for i in range(max(BATCHES))])
        wall, cpu_s = dict.fromkeys(BATCHES, 0.0), dict.fromkeys(BATCHES, 0.0)
        for b in BATCHES:  # warm-up: the first calls of a shape allocate and pick kernels
            engine.probabilities(x[:b])
            engine.probabilities(x[:b])
        for _ in range(rounds):
            for b in BATCHES:
                t, c = time.perf_counter(), time.process_time()
                for _ in range(max(BATCHES) // b):
                    engine.probabilities(x[:b])
                wall[b] += time.perf_counter() - t
                cpu_s[b] += time.process_time() - c
    finally:
        engine.close()
    n = rounds * max(BATCHES)
    img_s = {b: n / wall[b] for b in BATCHES}
    img_cpu_s = {b: n / max(cpu_s[b], 1e-9) for b in BATCHES}
    best = max(BATCHES[1:], key=lambda b: img_s[b])
    return {
        "img/s": img_s,
        "img/CPU-s": img_cpu_s,
        "best batch": best,
        "batching bound": img_s[best] / img_s[1],
        "batching bound, per CPU-s": max(img_cpu_s[b] for b in BATCHES[1:]) / img_cpu_s[1],
        "decode ms/img": 1e3 * decode_wall / len(bodies),
        "decode CPU-ms/img": 1e3 * decode_cpu / len(bodies),
    }


def model_costs(bundles: dict[tuple[int, str], Path], rounds: int = 3) -> list[dict]:
    """Model time per image (wall and CPU ms) by batch size, through the server's own Engine (no
    HTTP), in interleaved rounds: how much a bigger batch saves on this CPU."""
    import torch

    from graft.serving.config import ServeConfig
    from graft.serving.engine import Engine

    rows = []
    for (size, backend), bundle in bundles.items():
        engine = Engine.load(ServeConfig(bundle=str(bundle)))
        x = torch.randn(3, size, size)
        times: dict[int, list[tuple[float, float]]] = {b: [] for b in (1, 4, 8, 16, 32)}
        for _ in range(rounds):
            for b in times:
                batch = x[None].repeat(b, 1, 1, 1)
                engine.probabilities(batch)
                calls = max(1, 32 // b)
                wall, cpu = time.perf_counter(), time.process_time()
                for _ in range(calls):
                    engine.probabilities(batch)
                n = calls * b
                times[b].append(((time.perf_counter() - wall) / n, (time.process_time() - cpu) / n))
        row = {"size": size, "backend": backend}
        for b, values in times.items():
            row[b] = (1e3 * statistics.median(w for w, _ in values),
                      1e3 * statistics.median(c for _, c in values))  # fmt: skip
        rows.append(row)
        print(f"  {size} px {backend}: " + ", ".join(
            f"b{b} {row[b][0]:.1f} ms ({row[b][1]:.1f} CPU)" for b in times), flush=True)  # fmt: skip
    return rows
