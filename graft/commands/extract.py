"""``graft extract DATA --model NAME``: features of every image into a resumable feature store.

Example:
    $ graft extract data/pets --model efficientnet_lite0 --image-size 128 --out feats/pets
    $ graft extract data/pets --model resnet50 --pool none --image-size 256 --layer 4 --out feats/maps
    $ graft extract data/pets --model efficientnet_lite0+vit_tiny_patch16_224 \
          --model-arg 'pretrained={cnn: true, vit: false}' --model-arg 'branch_kwargs={vit: {img_size: 64}}'
"""

from __future__ import annotations

import argparse
import sys

from graft.train.cli_options import key_value


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
        "--model-arg",
        dest="model_args",
        action="append",
        type=key_value,
        default=None,
        metavar="KEY=VALUE",
        help="extra model argument, YAML value, repeatable, as in graft fit (hybrids: fusion=gated, "
        "'pretrained={cnn: true, vit: false}', 'branch_kwargs={vit: {img_size: 64}}')",
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
    p.add_argument(
        "--devices",
        type=int,
        default=1,
        help="extract in N local processes (gloo), each a shard of the images; rank 0 writes the "
        "store (default 1). Under torchrun/srun the launcher's processes are used instead",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from graft import distributed
    from graft.errors import ConfigError

    if args.devices < 1:
        raise ConfigError(f"--devices must be at least 1, got {args.devices}")
    out = args.out or f"{Path(args.data).resolve().name}-features"
    if distributed.init_from_env():  # launched by torchrun / srun: one report, from rank 0
        summary = _extract(args, out)
        if not distributed.is_rank_zero():
            return 0
    elif args.devices > 1:
        summary = _spawned_extract(args, out)
    else:
        summary = _extract(args, out)
    print(summary)
    print(f"feature store: {out}", file=sys.stderr)
    return 0


def _extract(args: argparse.Namespace, out: str) -> str:
    """Extract into ``out`` (this rank's shard inside a process group); the one-line summary."""
    from graft import distributed
    from graft.features import extract

    device = args.device
    if device == "cuda" and distributed.world_size() > 1:
        device = f"cuda:{distributed.local_rank()}"  # one GPU per process
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
        device=device,
        progress=not args.quiet,
        model_args=dict(args.model_args or []),
    )
    counts = ", ".join(f"{s} {f.splits.count(s)}" for s in f.split_names)
    shape = tuple(f.features.shape[1:])
    return f"{len(f)} images ({counts}), features {shape}, {len(f.classes)} classes"


def _spawned_extract(args: argparse.Namespace, out: str) -> str:
    """Run :func:`_extract` in ``args.devices`` gloo processes; rank 0 hands back the summary."""
    import tempfile
    from pathlib import Path

    from graft import distributed

    with tempfile.TemporaryDirectory(prefix="graft-extract-") as tmp:
        result = Path(tmp) / "summary.txt"
        distributed.spawn(_rank_extract, args.devices, args, out, str(result))
        return result.read_text()


def _rank_extract(args: argparse.Namespace, out: str, result: str) -> None:
    from graft import distributed
    from graft.io import write_text

    summary = _extract(args, out)
    if distributed.is_rank_zero():
        write_text(result, summary)
