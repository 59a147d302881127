"""``graft data sample NAME DEST``: write a real sample dataset (animals, digits) as an ImageFolder.

Example:
    $ graft data sample animals data/animals
    $ graft data sample digits data/digits --per-class 50
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Literal

from graft.commands._common import add_parser, emit, note
from graft.options import option, resolve


@dataclass
class DataSampleOptions:
    """Options of ``graft data sample`` (and keyword arguments of :func:`graft.sample_dataset`)."""

    name: Literal["animals", "digits"] = option(None, "which sample", positional=True)
    dest: str = option(None, "folder to create (reused when it holds the same sample)",
                       positional=True)  # fmt: skip
    per_class: int | None = option(
        None, "keep at most N images per class (small subsets)", default_text="all"
    )
    seed: int = option(0, "seed of the subset and of the train/test split")


OPTIONS = {"data sample": DataSampleOptions}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "data", help="dataset utilities (sample datasets)", description="Dataset utilities."
    )
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    s = add_parser(
        sub,
        "sample",
        DataSampleOptions,
        config=False,
        help="write a sample dataset (animals, digits) with train/ and test/ folders",
        description="Write a real sample dataset that installs offline as an ImageFolder with "
        "train/ and test/ (stratified 80/20). animals: 10 classes of 28x28 grayscale animal "
        "silhouettes from the animal-mnist package, exact duplicates removed. digits: "
        "scikit-learn's 8x8 digits upscaled to 32x32. Reuses DEST when it already holds the same "
        "sample.",
    )
    s.set_defaults(func=run_sample)


def run_sample(args: argparse.Namespace) -> int:
    from graft.data.samples import MARKER, sample_dataset
    from graft.io import read_json

    opts = resolve(args, DataSampleOptions)
    root = sample_dataset(opts.name, opts.dest, seed=opts.seed, per_class=opts.per_class)
    counts = read_json(root / MARKER)["counts"]
    lines = [
        f"{split}: {sum(per_class.values())} images in {len(per_class)} classes"
        for split, per_class in counts.items()
    ]
    emit(args, {"dest": str(root), "counts": counts}, "\n".join(lines))
    note(f"written to {root}")
    return 0
