"""``graft fit DATA``: fine-tune a pretrained model; every FitConfig field is a flag.

Example:
    $ graft fit data/pets --epochs 6 --out runs/pets
    $ graft fit --resume --out runs/pets
    $ graft fit data/pets --epochs 6 --dry-run      # the plan and its time estimate, no training
    $ graft fit --config runs/pets/config.yaml --out runs/again   # the same run again
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from graft.train.cli_options import add_config_flags

    p = subparsers.add_parser(
        "fit",
        help="fine-tune a pretrained model on an image folder",
        description="Fine-tune a pretrained model. Options come from --config YAML, then flags.",
    )
    p.add_argument(
        "data", nargs="?", help="image folder (class sub-folders or train/val/test) or CSV"
    )
    p.add_argument("--config", help="YAML file of options (unknown keys are rejected)")
    add_config_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graft.train.cli_options import options_from_args
    from graft.train.config import FitConfig
    from graft.train.fitting import fit

    config = FitConfig.load(args.config) if args.config else None
    result = fit(args.data, config=config, **options_from_args(args))
    from graft.distributed import is_rank_zero

    if not is_rank_zero():  # under DDP only rank 0 reports
        return 0
    if result.plan_text:  # --dry-run: the plan and its estimate are the result
        print(result.plan_text)
        return 0
    shown = {
        k: v for k, v in result.metrics.items() if k.endswith(("acc", "loss")) or k == "fit_seconds"
    }
    print(f"run folder: {result.run_dir}")
    print(f"bundle:     {result.bundle}")
    if (result.run_dir / "report.html").is_file():
        print(f"report:     {result.run_dir / 'report.html'}")
    print("metrics:    " + ", ".join(f"{k}={v:.4g}" for k, v in shown.items()))
    return 0
