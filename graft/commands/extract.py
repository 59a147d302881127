"""``graft extract DATA --model NAME``: features of every image into a resumable feature store.

Example:
    $ graft extract data/pets --model efficientnet_lite0 --image-size 128 --out feats/pets
    $ graft extract data/pets --model resnet50 --pool none --image-size 256 --layer 4 --out feats/maps
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "extract",
        help="extract backbone features into a feature store",
        description="Run a pretrained backbone over an image dataset once and store its features "
        "(safetensors shards + manifest.json). Interrupted runs resume; unchanged images are reused.",
    )
    p.add_argument("data", help="ImageFolder, folder with train/val/test, or CSV of path,label")
    p.add_argument(
        "--model", default="efficientnet_lite0", help="backbone (default efficientnet_lite0)"
    )
    p.add_argument(
        "--layer",
        default=None,
        help="stage index (0 = stem ... last) or module name; default: the last stage",
    )
    p.add_argument(
        "--pool",
        default="avg",
        choices=["avg", "max", "none"],
        help="pool maps to vectors (avg: the model's own pre-logits; max) or keep them (none)",
    )
    p.add_argument("--image-size", type=int, default=None, help="input size (default: the model's)")
    p.add_argument(
        "--out", default=None, help="feature store folder (default: DATA name + '-features')"
    )
    p.add_argument("--batch-size", type=int, default=64, help="images per batch (default 64)")
    p.add_argument(
        "--workers", type=int, default=None, help="decoding processes (default: cores-1, max 4)"
    )
    p.add_argument("--no-resume", action="store_true", help="ignore features already in --out")
    p.add_argument(
        "--random-init", action="store_true", help="random weights instead of pretrained"
    )
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from graft.features import extract

    out = args.out or f"{Path(args.data).resolve().name}-features"
    f = extract(
        args.data,
        model=args.model,
        layer=args.layer,
        pool=args.pool,
        image_size=args.image_size,
        batch_size=args.batch_size,
        workers=args.workers,
        out=out,
        resume=not args.no_resume,
        pretrained=not args.random_init,
        device=args.device,
        progress=not args.quiet,
    )
    counts = ", ".join(f"{s} {f.splits.count(s)}" for s in f.split_names)
    print(
        f"{len(f)} images ({counts}), features {tuple(f.features.shape[1:])}, {len(f.classes)} classes"
    )
    print(f"feature store: {out}", file=sys.stderr)
    return 0
