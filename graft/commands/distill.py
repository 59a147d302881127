"""``graft distill DATA --teacher BUNDLE|MODEL --student MODEL``: knowledge distillation.

Every ``graft fit`` option (recipe, schedule, epochs, image size, outputs...) is accepted too; they are
generated from :class:`graft.train.config.FitConfig`, so both commands always take the same ones.

Example:
    $ graft distill data/animals --teacher runs/lite2/bundle --student tv:mobilenet_v2 \\
        --feature-pairs auto --feature-loss at --recipe full --epochs 5 --image-size 96 --out runs/kd
"""

from __future__ import annotations

import argparse

from graft.config import read_yaml

# fit options that distill sets itself or that have their own flag here
_SKIP = {"data", "model"}
# fit options whose distill default differs from fit's (graft.distill.api.NO_GRAD_CLIP)
_HELPS = {
    "grad_clip": "gradient norm clip (default: off for distill; fit's 1.0 throttles the KD term)"
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``distill`` sub-command."""
    from graft.distill.config import DistillConfig
    from graft.train.cli_options import add_config_flags

    p = subparsers.add_parser(
        "distill",
        help="train a small student from a teacher (logit and feature distillation)",
        description="Train --student on DATA from --teacher: loss = CE + alpha * KD(T) * T^2 + "
        "beta * sum(feature losses). Writes a run folder like `graft fit`; bundle/ holds the student.",
    )
    p.add_argument(
        "data", help="image folder (class sub-folders, or train/ val/ test/) or labels CSV"
    )
    p.add_argument(
        "--teacher", help="teacher: a bundle folder from `graft fit`, or a pretrained model name"
    )
    p.add_argument("--student", help="student model name, e.g. tv:mobilenet_v2, efficientnet_lite0")
    p.add_argument("--config", help="YAML file with fit and distill options (flags win)")
    d = p.add_argument_group("distillation")
    add_config_flags(d, skip=("teacher",), cls=DistillConfig)
    f = p.add_argument_group("training (same as graft fit)")
    add_config_flags(f, skip=tuple(_SKIP), helps=_HELPS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``graft distill`` and print the report line."""
    from graft.distill import distill
    from graft.distill.config import DistillConfig
    from graft.train.cli_options import options_from_args
    from graft.train.config import FitConfig

    options = read_yaml(args.config) if args.config else {}
    options.update(options_from_args(args, FitConfig, DistillConfig))
    if args.student:
        options["student"] = args.student
    options.pop("data", None)  # the positional argument wins over a YAML key
    data = args.data
    teacher = options.pop("teacher", None)
    student = options.pop("student", None) or options.pop("model", None)
    result = distill(data, teacher=teacher, student=student, **options)
    print(result.report)
    shown = {k: v for k, v in result.metrics.items() if k in ("val_acc", "test_acc", "fit_seconds")}
    print("student bundle:", result.bundle, " ".join(f"{k}={v:.4g}" for k, v in shown.items()))
    return 0
