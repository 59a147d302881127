"""``graft data sample NAME DEST``: write a real sample dataset (animals, digits) as an ImageFolder.

Example:
    $ graft data sample animals data/animals
    $ graft data sample digits data/digits --per-class 50
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "data", help="dataset utilities (sample datasets)", description="Dataset utilities."
    )
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    s = sub.add_parser(
        "sample",
        help="write a sample dataset (animals, digits) with train/ and test/ folders",
        description="Write a real sample dataset that installs offline as an ImageFolder with train/ and "
        "test/ (stratified 80/20). animals: 10 classes of 28x28 grayscale animal silhouettes from the "
        "animal-mnist package, exact duplicates removed. digits: scikit-learn's 8x8 digits upscaled to 32x32. "
        "Reuses DEST when it already holds the same sample.",
    )
    s.add_argument("name", help="animals or digits")
    s.add_argument("dest", help="folder to create")
    s.add_argument(
        "--per-class",
        type=int,
        default=None,
        help="keep at most N images per class (small subsets)",
    )
    s.add_argument(
        "--seed", type=int, default=0, help="seed of the subset and train/test split (default 0)"
    )
    s.set_defaults(func=run_sample)


def run_sample(args: argparse.Namespace) -> int:
    from graft.data.samples import MARKER, sample_dataset
    from graft.io import read_json

    root = sample_dataset(args.name, args.dest, seed=args.seed, per_class=args.per_class)
    counts = read_json(root / MARKER)["counts"]
    for split, per_class in counts.items():
        print(f"{split}: {sum(per_class.values())} images in {len(per_class)} classes")
    print(f"written to {root}")
    return 0
