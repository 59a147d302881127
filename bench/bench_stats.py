"""Throughput of ``graft stats`` against a plain PIL + numpy loop over the same files, in one run.

The folder: 5,000 JPEG "photos" (crops of scikit-image's real photos, 96-320 px, 10 classes),
generated once under ``bench/out/stats-data``. Both sides decode every image and compute the
per-channel mean and std over all pixels; the script checks that they agree and prints images/s and
the ratio (and, for reference, the speed of ``scan_dataset``'s corrupt-file check). graft additionally hashes every file (duplicates), records sizes and modes, and checks
for gray images.

Run:
    .venv/bin/python bench/bench_stats.py [--images 5000] [--workers N] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent / "out" / "stats-data"
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "camera", "coins")


def make_folder(root: Path, n_images: int, seed: int = 0) -> list[str]:
    """Write ``n_images`` JPEG crops of real photos into ``root/class_k/`` (reused when complete)."""
    paths = [root / f"class_{i % 10}" / f"img_{i:05d}.jpg" for i in range(n_images)]
    if all(p.exists() for p in paths):
        return [str(p) for p in paths]
    import skimage.data

    photos = [np.atleast_3d(getattr(skimage.data, name)()) for name in PHOTOS]
    rng = np.random.default_rng(seed)
    jobs = []
    for i, path in enumerate(paths):
        photo = photos[i % len(photos)]
        side = int(rng.integers(96, 321))
        y, x = (int(rng.integers(0, max(1, d - side))) for d in photo.shape[:2])
        jobs.append((photo[y : y + side, x : x + side], path))
    for folder in {p.parent for p in paths}:
        folder.mkdir(parents=True, exist_ok=True)

    def write(job):
        crop, path = job
        img = Image.fromarray(crop.squeeze(-1) if crop.shape[-1] == 1 else crop)
        img.save(path, quality=90)

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(write, jobs))
    return [str(p) for p in paths]


def plain_loop(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """What one writes by hand: decode, to float, accumulate sums and squares per channel."""
    total = np.zeros(3)
    total_sq = np.zeros(3)
    count = 0
    for path in paths:
        arr = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0
        flat = arr.reshape(-1, 3)
        total += flat.sum(axis=0)
        total_sq += (flat * flat).sum(axis=0)
        count += flat.shape[0]
    mean = total / count
    return mean, np.sqrt(total_sq / count - mean**2)


def timed(fn, *args, repeat: int = 1, **kwargs):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=2, help="best of N runs for each side")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from graft.data import dataset_stats

    paths = make_folder(ROOT, args.images)
    print(f"{len(paths)} images in {ROOT}, {os.cpu_count()} CPU cores")
    plain_s, (mean, std) = timed(plain_loop, paths, repeat=args.repeat)
    rows = [("plain PIL + numpy loop", plain_s)]
    for executor in ("serial", "thread", "process"):
        seconds, stats = timed(
            dataset_stats,
            ROOT,
            model=None,
            workers=args.workers,
            progress=False,
            executor=executor,
            repeat=args.repeat,
        )
        np.testing.assert_allclose(stats.mean, mean, atol=1e-6)
        np.testing.assert_allclose(stats.std, std, atol=1e-6)
        rows.append((f"graft stats ({executor})", seconds))
    from graft.data import scan_dataset

    verify_s, _ = timed(scan_dataset, ROOT, workers=args.workers, repeat=args.repeat)
    rows.append(("scan with verify (for reference)", verify_s))
    for name, seconds in rows:
        print(
            f"{name:34s} {seconds:7.2f} s  {len(paths) / seconds:8.0f} images/s  x{plain_s / seconds:.2f}"
        )
    print(
        f"mean {np.round(mean, 4).tolist()} std {np.round(std, 4).tolist()} (both sides agree to 1e-6)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
