"""``graft audit DATA``: likely label errors, duplicates, train/test leaks and outliers; every
:class:`graft.auditing.AuditConfig` field is a flag.

Example:
    $ graft audit data/pets --out audit/pets
    $ graft extract data/pets --out feats/pets && graft audit data/pets --features feats/pets
    $ graft audit data/pets --json > audit.json
    $ graft fit audit/pets/clean.csv --out runs/clean
"""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    from graft.auditing.config import AuditConfig
    from graft.train.cli_options import add_config_flags

    p = subparsers.add_parser(
        "audit",
        help="find label errors, near-duplicates, train/test leaks and outliers",
        description="Audit an image dataset with a pretrained backbone's features: exact and near "
        "duplicates (leaks across train/val/test first), likely label errors (confident learning "
        "on out-of-fold probe probabilities), outliers and corrupt files. Writes OUT/audit.json, "
        "issues.csv, clean.csv (for graft fit), audit.html and config.yaml; never moves a file.",
    )
    p.add_argument(
        "data", nargs="?", help="image folder (class sub-folders or train/val/test) or CSV"
    )
    p.add_argument("--config", help="YAML file of options (unknown keys are rejected)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print audit.json's content on stdout (one JSON document) instead of the table",
    )
    add_config_flags(p, cls=AuditConfig, skip=("data",))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graft.auditing.api import audit
    from graft.auditing.config import AuditConfig
    from graft.auditing.outputs import summary_table
    from graft.train.cli_options import options_from_args

    config = None
    if args.config:
        from graft import config as _config

        config = _config.load(AuditConfig, args.config)
    options = options_from_args(args, AuditConfig)
    if args.quiet:
        options.setdefault("progress", False)
    result = audit(args.data, config=config, **options)
    if args.json:
        print(json.dumps(result.to_dict(), default=str))
    else:
        print(summary_table(result))
    return 0
