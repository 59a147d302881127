#!/usr/bin/env bash
# GPU check for graft: training images/s with bf16-mixed + channels_last versus fp32 on the same
# model, and extraction images/s (model only, and graft.extract end to end from an image folder).
#
# Usage (on a machine with a CUDA GPU, from the repository root):
#   bash bench/gpu_check.sh                      # defaults: efficientnet_lite0, 224 px, batch 128
#   MODEL=resnet50 BATCH=256 STEPS=30 bash bench/gpu_check.sh
# Environment: PYTHON (default .venv/bin/python, else python3), MODEL, SIZE, BATCH, STEPS (timed
# steps per setting), IMAGES (images in the generated folder for graft.extract), OUT (folder for
# gpu_check.json; default bench-out/gpu_check, or $OUT when the launcher sets it).
#
# Self-checks (exit 1 when one fails): finite losses; bf16 logits close to fp32 logits on the same
# weights; the loss decreases over the timed fp32 steps on a fixed batch; graft.extract returns one
# finite feature row per image. Exits 2 with a message and no numbers when CUDA is not available.
# Paste the printed Markdown section into docs/benchmarks/gpu.md (it carries the date and hardware).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export GRAFT_OFFLINE="${GRAFT_OFFLINE:-1}"
exec "$PYTHON" - "$@" <<'PY'
import datetime
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

MODEL = os.environ.get("MODEL", "efficientnet_lite0")
SIZE = int(os.environ.get("SIZE", "224"))
BATCH = int(os.environ.get("BATCH", "128"))
STEPS = int(os.environ.get("STEPS", "20"))
IMAGES = int(os.environ.get("IMAGES", "1024"))
OUT = Path(os.environ.get("OUT") or "bench-out/gpu_check")
WARMUP = 5
if min(SIZE, BATCH, STEPS, IMAGES) < 1:
    sys.exit(f"gpu_check: SIZE, BATCH, STEPS and IMAGES must be positive, got {SIZE}, {BATCH}, {STEPS}, {IMAGES}")
failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(f"  check {'ok  ' if ok else 'FAIL'} {what}", flush=True)
    if not ok:
        failures.append(what)


if not torch.cuda.is_available():
    print("gpu_check: CUDA is not available on this machine (torch "
          f"{torch.__version__}, built for CUDA {torch.version.cuda}); nothing measured.", file=sys.stderr)
    sys.exit(2)

import graft  # noqa: E402  (after the CUDA check: a clear exit first)

device = torch.device("cuda")
gpu = torch.cuda.get_device_name(0)
bf16_ok = torch.cuda.is_bf16_supported()
print(f"gpu_check: {gpu}, torch {torch.__version__}, CUDA {torch.version.cuda}, model {MODEL}, "
      f"{SIZE} px, batch {BATCH}, {STEPS} timed steps", flush=True)
torch.backends.cudnn.benchmark = True


def make_model(channels_last: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    model = graft.create_model(MODEL, num_classes=10, pretrained=False).to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def batch(channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator(device="cpu").manual_seed(1)
    x = torch.randn(BATCH, 3, SIZE, SIZE, generator=g).to(device)
    y = torch.randint(0, 10, (BATCH,), generator=g).to(device)
    return (x.contiguous(memory_format=torch.channels_last) if channels_last else x), y


def train_rate(precision: str, channels_last: bool) -> dict:
    """Images/s of forward + backward + AdamW step, as graft fit runs them (Lightning's autocast)."""
    torch.cuda.reset_peak_memory_stats()
    model = make_model(channels_last).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = batch(channels_last)
    dtype = torch.bfloat16 if precision == "bf16-mixed" else None
    losses = []
    for step in range(WARMUP + STEPS):
        if step == WARMUP:
            torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))  # synchronises: honest per-step timing
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    label = f"train {precision}{' + channels_last' if channels_last else ''}"
    check(all(math.isfinite(v) for v in losses), f"{label}: finite losses")
    check(losses[-1] < losses[0], f"{label}: loss decreases on a fixed batch ({losses[0]:.3f} -> {losses[-1]:.3f})")
    return {"setting": label, "images_per_s": round(BATCH * STEPS / seconds, 1),
            "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}


def logits_agree() -> None:
    model = make_model(False).eval()
    x, _ = batch(False)
    with torch.inference_mode():
        ref = model(x[:16]).float()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            low = model.to(memory_format=torch.channels_last)(x[:16].contiguous(memory_format=torch.channels_last)).float()
    rel = float((low - ref).norm() / ref.norm().clamp_min(1e-12))
    check(rel < 0.05, f"bf16 + channels_last logits within 5% of fp32 (relative error {rel:.4f})")


def extract_rate(channels_last: bool) -> dict:
    """Images/s of the backbone alone (pooled features), inference mode."""
    model = graft.create_model(MODEL, num_classes=0, pretrained=False).to(device).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    x, _ = batch(channels_last)
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=channels_last):
        for step in range(WARMUP + STEPS):
            if step == WARMUP:
                torch.cuda.synchronize()
                start = time.perf_counter()
            feats = model(x)
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    label = f"extract model-only {'bf16 + channels_last' if channels_last else 'fp32'}"
    check(bool(torch.isfinite(feats.float()).all()), f"{label}: finite features")
    return {"setting": label, "images_per_s": round(BATCH * STEPS / seconds, 1)}


def extract_folder_rate() -> dict:
    """graft.extract end to end (JPEG decode, resize, normalize, forward) on a generated folder."""
    from PIL import Image

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="graft-gpu-check-") as tmp:
        for i in range(IMAGES):
            folder = Path(tmp) / f"class{i % 4}"
            folder.mkdir(exist_ok=True)
            pixels = rng.integers(0, 256, (SIZE + 32, SIZE + 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", quality=90)
        workers = min(8, os.cpu_count() or 1)
        graft.extract(tmp, model=MODEL, weights="none", image_size=SIZE, accelerator="gpu", devices=1,
                      batch_size=BATCH, workers=workers, progress=False)  # warm-up (workers, cuDNN)
        start = time.perf_counter()
        f = graft.extract(tmp, model=MODEL, weights="none", image_size=SIZE, accelerator="gpu", devices=1,
                          batch_size=BATCH, workers=workers, progress=False)
        seconds = time.perf_counter() - start
    check(len(f) == IMAGES and bool(np.isfinite(f.features).all()),
          f"graft.extract: {IMAGES} finite feature rows (got {len(f)})")
    return {"setting": f"graft.extract fp32, JPEG folder, {workers} workers",
            "images_per_s": round(IMAGES / seconds, 1)}


rows = [train_rate("32", False)]
if bf16_ok:
    rows.append(train_rate("bf16-mixed", True))
    logits_agree()
else:
    print("  note: this GPU has no bf16 support; only fp32 measured", flush=True)
rows += [extract_rate(False)] + ([extract_rate(True)] if bf16_ok else []) + [extract_folder_rate()]
if bf16_ok:
    speedup = rows[1]["images_per_s"] / rows[0]["images_per_s"]
    print(f"  bf16-mixed + channels_last trains {speedup:.2f}x as many images/s as fp32", flush=True)

today = datetime.date.today().isoformat()
hardware = f"{gpu}, {os.cpu_count()} CPU cores, torch {torch.__version__}, CUDA {torch.version.cuda}"
OUT.mkdir(parents=True, exist_ok=True)
(OUT / "gpu_check.json").write_text(json.dumps(
    {"date": today, "hardware": hardware, "host": platform.node(), "model": MODEL, "size": SIZE,
     "batch": BATCH, "steps": STEPS, "rows": rows, "failed_checks": failures}, indent=2))
print(f"\n### {today}: {hardware}\nmodel {MODEL}, {SIZE} px, batch {BATCH}, {STEPS} timed steps\n")
print("| setting | images/s | peak GPU memory (GiB) |\n|---|---:|---:|")
for r in rows:
    print(f"| {r['setting']} | {r['images_per_s']} | {r.get('peak_mem_gib', '')} |")
if failures:
    print(f"\ngpu_check: {len(failures)} check(s) FAILED: {failures}", file=sys.stderr)
    sys.exit(1)
print("\ngpu_check: all checks passed", flush=True)
PY
