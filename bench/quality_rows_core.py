"""Rows of bench/bench_quality.py for ``auto`` and its levers: WiSE-FT, weight averaging, presets.

Every row is one ``graft.fit`` run on the same split and seed (so rows that differ only in what
happens after training share the same training trajectory), timed end to end (data scan, caching,
training, the post-training step, final evaluation).
"""

from __future__ import annotations

import time
from pathlib import Path

from bench_quality import protocol


def _fit(data: Path, seed: int, work: Path, **options) -> dict:
    from graft.train import fit

    p = protocol()
    started = time.perf_counter()
    result = fit(str(data), out=str(work / "run"), seed=seed, model=p["model"], image_size=p["image_size"],
                 epochs=p["epochs"], flip=p["flip"], batch_size=p["batch_size"], workers=0,
                 progress=False, report=False, **options)  # fmt: skip
    seconds = time.perf_counter() - started
    m = result.metrics
    out = {"test_acc": m.get("test_acc_tta", m["test_acc"]), "seconds": round(seconds, 1),
           "val_acc": m.get("val_acc_tta", m.get("val_acc"))}  # fmt: skip
    if "test_acc_tta" in m:
        out["test_acc_no_tta"] = m["test_acc"]
    for key in ("wise_alpha", "average_n"):
        if key in m:
            out[key] = m[key]
    return out


ROWS = {
    "auto": lambda d, s, w: _fit(d, s, w),
    "auto+wise": lambda d, s, w: _fit(d, s, w, wise=True),
    "auto+swa": lambda d, s, w: _fit(d, s, w, average="swa"),
    "auto+top-k": lambda d, s, w: _fit(d, s, w, average="top-k", average_k=2),
    "auto+greedy-soup": lambda d, s, w: _fit(d, s, w, average="greedy-soup"),
    "preset-fast": lambda d, s, w: _fit(d, s, w, preset="fast"),
    "preset-best": lambda d, s, w: _fit(d, s, w, preset="best"),
}
