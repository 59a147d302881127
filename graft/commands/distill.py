"""``graft distill DATA --teacher BUNDLE|MODEL --student MODEL``: knowledge distillation.

Every ``graft fit`` option (recipe, schedule, epochs, image size, outputs...) is accepted too; they are
generated from :class:`graft.train.config.FitConfig`, so both commands always take the same ones.

Example:
    $ graft distill data/animals --teacher runs/lite2/bundle --student tv:mobilenet_v2 \\
        --feature-pairs auto --feature-loss at --recipe full --epochs 5 --image-size 96 --out runs/kd
"""

from __future__ import annotations

import argparse

from graft.commands._common import add_parser, emit
from graft.config import read_yaml
from graft.distill.config import DistillConfig
from graft.options import combine, options_from_args
from graft.train.config import FitConfig

# options whose distill default differs from fit's (graft.distill.api.NO_GRAD_CLIP, DEFAULT_OUT)
_HELPS = {
    "grad_clip": "gradient norm clip (default: off for distill; fit's 1.0 throttles the KD term)",
    "out": "run folder: checkpoints, metrics, bundle/ with the student (default: runs/distill)",
}
# the student is distill's model; the rest of fit's options apply as they are
DistillCommand = combine(
    "DistillCommand", DistillConfig, FitConfig, skip=("data", "model"), helps=_HELPS
)
OPTIONS = {"distill": DistillCommand}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``distill`` sub-command."""
    p = add_parser(
        subparsers,
        "distill",
        DistillCommand,
        help="train a small student from a teacher (logit and feature distillation)",
        description="Train --student on DATA from --teacher: loss = CE + alpha * KD(T) * T^2 + "
        "beta * sum(feature losses). Writes a run folder like `graft fit`; bundle/ holds the "
        "student. Every graft fit option applies.",
    )
    p.add_argument(
        "data", help="image folder (class sub-folders, or train/ val/ test/) or labels CSV"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``graft distill`` and print the report line."""
    from graft.distill import distill_model

    options = read_yaml(args.config) if args.config else {}
    options.update(options_from_args(args, DistillCommand))
    options.pop("data", None)  # the positional argument wins over a YAML key
    teacher = options.pop("teacher", None)
    student = options.pop("student", None) or options.pop("model", None)
    result = distill_model(args.data, teacher=teacher, student=student, **options)
    shown = {k: v for k, v in result.metrics.items() if k in ("val_acc", "test_acc", "fit_seconds")}
    text = f"{result.report}\nstudent bundle: {result.bundle} " + " ".join(
        f"{k}={v:.4g}" for k, v in shown.items()
    )
    data = {
        "run_dir": str(result.run_dir),
        "bundle": str(result.bundle),
        "metrics": result.metrics,
        "teacher": vars(result.teacher),
        "student": vars(result.student),
        "report": result.report,
    }
    emit(args, data, text)
    return 0
