"""``graft audit DATA``: likely label errors, duplicates, train/test leaks and outliers; every
:class:`graft.auditing.AuditConfig` field is a flag.

Example:
    $ graft audit data/pets --out audit/pets
    $ graft extract data/pets --out feats/pets && graft audit data/pets --features feats/pets
    $ graft audit data/pets --accelerator cpu --devices 2 --json > audit.json
    $ graft fit audit/pets/clean.csv --out runs/clean
"""

from __future__ import annotations

import argparse

from graft.auditing.config import AuditConfig
from graft.commands._common import add_parser, emit, note
from graft.commands.extract import add_hardware_deprecations, hardware_of
from graft.options import kwargs_of, resolve

OPTIONS = {"audit": AuditConfig}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_parser(
        subparsers,
        "audit",
        AuditConfig,
        help="find label errors, near-duplicates, train/test leaks and outliers",
        description="Audit an image dataset with a pretrained backbone's features: exact and near "
        "duplicates (leaks across train/val/test first), likely label errors (confident learning "
        "on out-of-fold probe probabilities), outliers and corrupt files. Writes OUT/audit.json, "
        "issues.csv, clean.csv (for graft fit), audit.html and config.yaml; never moves a file.",
    )
    add_hardware_deprecations(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graft.auditing.api import audit
    from graft.auditing.outputs import summary_table

    opts = resolve(args, AuditConfig, **hardware_of(args, {}))
    if args.quiet and getattr(args, "progress", None) is None:
        opts.progress = False
    result = audit(**kwargs_of(opts))  # writes OUT/config.yaml with the other outputs
    emit(args, result.to_dict(), summary_table(result))  # the table names the files written
    if args.json:
        note(f"audit written to {opts.out}")
    return 0
