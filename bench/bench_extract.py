"""Bench: ``graft extract`` images/s versus a plain PyTorch forward, with and without allocator tuning.

On >= 2,000 real PNG files (the animals sample, 28x28 silhouettes upscaled by the transform), same
model (``efficientnet_lite0``, shipped weights), resolution and batch size, each in a fresh process:

  (a) plain forward, default settings: images decoded and transformed to tensors beforehand, then
      ``with torch.no_grad(): model(batch)`` over the batches; the allocator is NOT tuned
      (``GRAFT_NO_MALLOC_TUNING=1``: the setting is process-wide, so (a) runs in its own process);
  (b) the same forward with the allocator tuned (graft.runtime.tune_allocator), the practical limit;
  (c) ``graft.extract`` on the folder (model loading, scanning, hashing, decoding, batching, workers
      and store writes included; Python imports done before the clock starts, as in (a) and (b)).

Target of the issue: (c) >= 0.9 x (b). (b) and then (c) run in ONE process each round, so both see
the same tuned allocator and machine state; (a) needs its own process (the tuning is process-wide). The whole is
repeated ``--rounds`` times and the median of each is reported (the machine is shared: look at
ratios within one run).

Run:  .venv/bin/python bench/bench_extract.py --images 2000 --image-size 96 --batch-size 64
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--images", type=int, default=2000, help="images to process (>= 2000 for the issue)"
    )
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--workers", type=int, default=None, help="graft extract workers (default: graft's)"
    )
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--data", default="bench-out/extract/animals")
    p.add_argument("--out", default="bench-out/extract")
    p.add_argument("--child", choices=["plain", "tuned"], help=argparse.SUPPRESS)
    return p.parse_args()


def files_for(args: argparse.Namespace) -> list[str]:
    from graft.data import sample_dataset, scan_dataset

    per_class = -(-args.images // 8) + 2  # 80% of each class lands in train/
    root = sample_dataset("animals", args.data, per_class=per_class)
    splits = scan_dataset(root, verify=False)
    files = [p for p, _ in splits.all_samples()]
    if len(files) < args.images:
        raise SystemExit(f"only {len(files)} images in {root}; raise --images or per-class")
    return files[: args.images]


def child(args: argparse.Namespace) -> list[dict]:
    """Measurements in this (fresh) process: (a) alone, or (b) and (c) alternately; prints JSON."""
    import torch

    from graft.data import build_transforms, load_image, resolve_data_config
    from graft.models import create_model

    if args.child == "tuned":
        from graft.runtime import tune_allocator

        tune_allocator()
    model = create_model(args.model, num_classes=0).eval()
    transform = build_transforms(
        resolve_data_config(model.pretrained_cfg, args.image_size), train=False
    )
    images = torch.stack([transform(load_image(f, "RGB")) for f in files_for(args)])
    batches = list(images.split(args.batch_size))

    def forward() -> dict:
        with torch.no_grad():
            model(batches[0])  # warm-up
            start = time.perf_counter()
            for x in batches:
                model(x)
            seconds = time.perf_counter() - start
        return {"variant": args.child, "images": len(images), "seconds": seconds}

    if args.child == "plain":
        return [forward()]
    return [forward(), child_graft(args)]


def child_graft(args: argparse.Namespace) -> dict:
    import shutil

    import graft

    files = files_for(args)
    folder = Path(args.out) / "subset"
    if not folder.exists():  # a flat ImageFolder of exactly --images files (copies)
        for f in files:
            dest = folder / Path(f).parent.name / f"{Path(f).parent.parent.name}_{Path(f).name}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dest)
    store = Path(args.out) / "store"
    shutil.rmtree(store, ignore_errors=True)
    # graft imports lazily: load the modules before the clock starts, as (a) and (b) import torch
    # before theirs (about 18 s of one-time interpreter work on this machine, not extraction)
    import graft.features.extraction  # noqa: F401

    start = time.perf_counter()
    f = graft.extract(
        folder,
        model=args.model,
        image_size=args.image_size,
        batch_size=args.batch_size,
        workers=args.workers,
        out=store,
        progress=False,
    )
    seconds = time.perf_counter() - start
    return {"variant": "graft", "images": len(f), "seconds": seconds}


def run_child(args: argparse.Namespace, variant: str) -> list[dict]:
    env = dict(os.environ, GRAFT_OFFLINE="1")
    if variant == "plain":
        env["GRAFT_NO_MALLOC_TUNING"] = "1"
    cmd = [sys.executable, __file__, "--child", variant]
    for key in ("images", "model", "image_size", "batch_size", "data", "out"):
        cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    if args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    results = json.loads(out.stdout.strip().splitlines()[-1])
    for result in results:
        result["img_per_s"] = result["images"] / result["seconds"]
        print(
            f"  {result['variant']:<6} {result['img_per_s']:7.1f} img/s ({result['seconds']:.1f} s)",
            flush=True,
        )
    return results


def main() -> None:
    args = parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    files_for(args)  # write the sample once, before timing
    runs: dict[str, list[float]] = {"plain": [], "tuned": [], "graft": []}
    for r in range(args.rounds):
        print(
            f"round {r + 1}/{args.rounds}: {args.model} {args.image_size}px batch {args.batch_size}, {args.images} images"
        )
        for variant in ("plain", "tuned"):
            for result in run_child(args, variant):
                runs[result["variant"]].append(result["img_per_s"])
    med = {k: statistics.median(v) for k, v in runs.items()}
    summary = {
        "model": args.model,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "images": args.images,
        "img_per_s": med,
        "runs": runs,
        "graft_vs_tuned": med["graft"] / med["tuned"],
        "graft_vs_plain": med["graft"] / med["plain"],
        "tuned_vs_plain": med["tuned"] / med["plain"],
        "load_average": os.getloadavg(),
    }
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "bench_extract.json").write_text(json.dumps(summary, indent=2))
    print(
        f"(a) plain {med['plain']:.1f} img/s, (b) tuned {med['tuned']:.1f} img/s, "
        f"(c) graft extract {med['graft']:.1f} img/s: {summary['graft_vs_tuned']:.2f}x of (b), "
        f"{summary['graft_vs_plain']:.2f}x of (a); tuning alone {summary['tuned_vs_plain']:.2f}x"
    )


if __name__ == "__main__":
    main()
