"""Flags shared by the commands that run a bundle on images (``graft evaluate``, ``graft predict``)."""

from __future__ import annotations

import argparse


def add_inference_flags(parser: argparse.ArgumentParser) -> None:
    """Add ``--batch-size``, ``--tta``, ``--device`` and ``--workers`` with their defaults.

    Example:
        >>> p = argparse.ArgumentParser(); add_inference_flags(p)
        >>> vars(p.parse_args(["--tta"]))
        {'batch_size': 64, 'tta': True, 'device': 'cpu', 'workers': 0}
    """
    parser.add_argument("--batch-size", type=int, default=64, help="images per batch (default 64)")
    parser.add_argument(
        "--tta", action="store_true", help="average with the horizontally flipped image"
    )
    parser.add_argument(
        "--device", default="cpu", help="torch device for PyTorch bundles (default cpu)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="image decoding processes (default 0: in the main process)",
    )
