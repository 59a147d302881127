"""``graft fit DATA``: fine-tune a pretrained model; every FitConfig field is a flag.

Example:
    $ graft fit data/pets --epochs 6 --out runs/pets
    $ graft fit --resume --out runs/pets
    $ graft fit data/pets --epochs 6 --dry-run      # the plan and its time estimate, no training
    $ graft fit --config runs/pets/config.yaml --out runs/again   # the same run again
"""

from __future__ import annotations

import argparse

from graft.commands._common import add_parser, emit
from graft.train.config import FitConfig

OPTIONS = {"fit": FitConfig}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_parser(
        subparsers,
        "fit",
        FitConfig,
        skip=("data",),
        help="fine-tune a pretrained model on an image folder",
        description="Fine-tune a pretrained model. Options come from --config YAML, then flags; the "
        "resolved options are saved as OUT/config.yaml.",
    )
    p.add_argument(
        "data", nargs="?", help="image folder (class sub-folders or train/val/test) or CSV"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graft.distributed import is_rank_zero
    from graft.train.cli_options import options_from_args
    from graft.train.fitting import fit

    config = FitConfig.load(args.config) if args.config else None
    result = fit(args.data, config=config, **options_from_args(args))
    if not is_rank_zero():  # under DDP only rank 0 reports
        return 0
    if result.plan_text:  # --dry-run: the plan and its estimate are the result
        emit(args, {"dry_run": True, "plan": result.plan_text}, result.plan_text)
        return 0
    report = result.run_dir / "report.html"
    shown = {
        k: v for k, v in result.metrics.items() if k.endswith(("acc", "loss")) or k == "fit_seconds"
    }
    text = [f"run folder: {result.run_dir}", f"bundle:     {result.bundle}"]
    if report.is_file():
        text.append(f"report:     {report}")
    text.append("metrics:    " + ", ".join(f"{k}={v:.4g}" for k, v in shown.items()))
    data = {
        "run_dir": str(result.run_dir),
        "bundle": str(result.bundle),
        "report": str(report) if report.is_file() else None,
        "metrics": result.metrics,
    }
    emit(args, data, "\n".join(text))
    return 0
