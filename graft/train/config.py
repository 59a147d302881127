"""``FitConfig``: every option of ``graft fit`` in one typed dataclass.

Built from keyword arguments, a YAML file (``--config``) and CLI flags through :mod:`graft.config`
(unknown keys are rejected with a suggestion); the resolved config is written as ``config.yaml`` in
the run folder, and ``FitConfig.from_yaml(run / "config.yaml")`` rebuilds it.

Example:
    >>> cfg = FitConfig(data="photos/", recipe="head", epochs=3)
    >>> cfg.optimizer, cfg.schedule
    ('adamw', 'cosine')
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Literal

from graft import config as _config
from graft.errors import ConfigError
from graft.options import (
    ACCELERATOR_HELP,
    DEVICES_HELP,
    NUM_NODES_HELP,
    STRATEGY_HELP,
    option,
)
from graft.train.config_checks import check_fit_options

Recipe = Literal["auto", "head", "full", "freeze-upto", "progressive"]
BnPolicy = Literal["auto", "frozen", "eval", "train"]


@dataclass
class FitConfig:
    """Options of :func:`graft.fit` / ``graft fit`` (``None`` means: chosen automatically)."""

    preset: Literal["fast", "balanced", "best"] | None = option(
        None,
        "fast (linear probe on frozen features), balanced (recipe auto), best (auto + TTA at "
        "evaluation + an ensemble: --model's fit averaged with a longer fit of it, see "
        "--ensemble-models); explicit options win (docs/how-to/more-accuracy.md)",
        default_text="none",
    )
    ensemble_models: list[str] | None = option(
        None,
        "--preset best: the members averaged with --model's fit, comma-separated: 'long' (--model "
        "again, 3x the epochs after its head phase) and backbone names (fit like --model: same "
        "data, split, seed, image size, epochs); an empty value ('') fits --model alone",
        default_text="long (graft.ensembling.members)",
    )
    # data
    data: str | None = option(
        None, "ImageFolder root (class sub-folders, or train/ val/ test/ folders) or a labels CSV"
    )
    val_split: float = option(
        0.1, "fraction of train held out for validation when there is no val/ folder"
    )
    balance: Literal["none", "sampler", "weights"] = option(
        "none", "class imbalance: none, sampler (balanced batches) or weights (weighted loss)"
    )
    cache_images: bool = option(
        False, "keep decoded images in memory between epochs (small datasets, slow disks)"
    )
    workers: int | None = option(None, "data loader processes", default_text="by CPU count")
    # model
    model: str = option("efficientnet_lite0", "backbone name (see `graft models`)")
    weights: str = option(
        "pretrained", "pretrained (shipped/offline weights), none (random init) or a weights file"
    )
    in_chans: int = option(
        3, "input channels; 1 for grayscale, >3 for multispectral (the stem is adapted)"
    )
    head: str = option(
        "linear", "classifier head: linear, or mlp (one hidden layer) for a harder task"
    )
    model_args: dict[str, Any] = option(
        {},
        "extra model argument, YAML value, repeatable (hybrids: fusion=gated, proj_dim=128, "
        "'pretrained={cnn: true, vit: false}')",
        flag="--model-arg",
    )
    dropout: float = option(0.0, "dropout before the classifier (0: the model's default)")
    image_size: int | None = option(
        None,
        "input size in pixels",
        default_text="from the training images: 112 when their median shorter side is below "
        "96 px, else the weights' own size; graft.data.image_size",
    )
    normalization: str = option(
        "pretrained",
        "input mean/std: pretrained (the weights'), dataset (measured on train) or MEAN:STD",
    )
    augment: Literal["none", "light", "standard"] = option(
        "light", "training augmentation strength (none for tiny or already varied data)"
    )
    flip: bool = option(
        True, "random horizontal flips (turn off when left/right matters, e.g. digits)"
    )
    # recipe
    recipe: Recipe = option(
        "auto", "auto (head, then all with spread LRs), head, full, freeze-upto, progressive"
    )
    freeze_upto: int | None = option(
        None, "recipe freeze-upto: groups [0, K) stay frozen", default_text="none"
    )
    unfreeze: str | None = option(
        None,
        "recipe progressive: schedule '2:+2,4:all' or '5:blocks.4-5,10:blocks.0-'",
        default_text="none",
    )
    lr_decay: float = option(
        0.5, "progressive: learning-rate factor applied at each unfreezing step"
    )
    epochs: int | None = option(
        None,
        "total epochs, every phase included (auto splits them: the head gets 0.4 N rounded, "
        "1 to 8, the full phase the rest)",
        default_text="from the dataset size",
    )
    head_epochs: int | None = option(
        None,
        "recipe auto: epochs of the head-only phase, out of --epochs",
        default_text="0.4 x epochs, rounded, 1 to 8",
    )
    bn: BnPolicy = option(
        "auto",
        "BatchNorm: auto, frozen (frozen parts eval), eval (all eval), train (all batch stats)",
    )
    cache_frozen: bool | None = option(
        None,
        "compute frozen backbone outputs once and train on them",
        default_text="on for auto and head when it applies",
    )
    # optimisation
    batch_size: int = option(32, "images per training batch (per process)")
    lr: float | None = option(
        None, "head learning rate (see `graft lr-find`)", default_text="the recipe's"
    )
    full_lr: float | None = option(
        None,
        "recipe auto: head learning rate of the full phase",
        default_text="--lr if given, else 1e-3 for AdamW, 1e-2 for SGD",
    )
    lr_mult: float = option(10.0, "head LR / stem LR (geometric spread between)")
    optimizer: Literal["adamw", "sgd"] = option(
        "adamw", "adamw (decoupled weight decay), or sgd (Nesterov, with --momentum)"
    )
    momentum: float = option(0.9, "SGD momentum (not used by adamw)")
    weight_decay: float = option(0.01, "weight decay (never applied to norms and biases)")
    schedule: Literal["cosine", "onecycle", "step", "constant"] = option(
        "cosine", "learning-rate schedule within each phase"
    )
    warmup: float = option(
        0.1, "fraction of each phase spent ramping the learning rate up (0.1 = 10%)"
    )
    label_smoothing: float = option(0.1, "cross-entropy label smoothing (0: off)")
    mixup: float = option(0.0, "mixup alpha (0: off; 0.2 for small noisy datasets)")
    cutmix: float = option(0.0, "cutmix alpha (0: off)")
    wise: bool | None = option(
        None,
        "recipe auto: WiSE-FT, mix the head-phase and fine-tuned weights with the alpha (0..1) "
        "best on validation (alpha 1 = plain fine-tuning)",
        default_text="off (docs/benchmarks/quality.md)",
    )
    average: Literal["none", "swa", "top-k", "greedy-soup"] = option(
        "none",
        "average the weights of the last phase's epochs: swa (all), top-k (--average-k best on "
        "val), greedy-soup (added while val does not drop); BatchNorm statistics recomputed "
        "when they differ between the epochs",
    )
    average_k: int = option(3, "--average top-k: how many epochs to average")
    tta: bool = option(
        False,
        "also report val/test accuracy with test-time augmentation (image + mirror averaged; "
        "off with --no-flip); predict/evaluate take --tta",
    )
    ema: bool = option(False, "also keep an exponential moving average of the weights")
    ema_decay: float = option(0.998, "EMA decay per step (closer to 1: slower average)")
    grad_clip: float | None = option(1.0, "gradient norm clip (0 or none: off)")
    early_stop: int | None = option(
        None, "stop after N epochs without improvement of --monitor", default_text="off"
    )
    monitor: str = option(
        "val_loss", "metric for the best checkpoint and early stopping (val_loss, val_acc)"
    )
    # parameter-efficient fine-tuning (peft)
    peft: Literal["none", "lora", "dora"] = option(
        "none",
        "train low-rank adapters instead of the backbone's weights: lora, or dora (LoRA with a "
        "learned magnitude); the head trains fully and the bundle holds merged weights. Needs "
        "pip install 'graft[peft]'",
    )
    peft_rank: int = option(8, "--peft: rank of each adapter (4-16; higher trains more weights)")
    peft_alpha: float | None = option(
        None,
        "--peft: adapter scale numerator (update = B A x alpha / rank)",
        default_text="2 x rank",
    )
    peft_targets: str | None = option(
        None,
        "--peft: comma-separated layer names or globs to adapt (qkv,fc1 or blocks.*.mlp.fc1)",
        default_text="ViTs: attention qkv/proj and MLP fc1/fc2; CNNs: every dense Conv2d "
        "(depthwise skipped) and Linear outside the stem and the head",
    )
    peft_save_adapter: bool = option(
        False, "--peft: also write the adapters and head alone (bundle/adapter.safetensors)"
    )
    # hardware
    precision: Literal["32", "bf16-mixed", "16-mixed", "64"] = option(
        "32", "numeric precision (bf16-mixed on recent GPUs and CPUs is faster)"
    )
    accelerator: str = option("auto", ACCELERATOR_HELP)
    devices: str = option("auto", DEVICES_HELP)
    strategy: str = option("auto", STRATEGY_HELP)
    num_nodes: int = option(1, NUM_NODES_HELP)
    sync_bn: bool = option(
        False, "DDP: compute BatchNorm statistics over all processes (small per-process batches)"
    )
    channels_last: bool = option(False, "channels-last memory format (faster convolutions on GPU)")
    # reproducibility and outputs
    seed: int = option(0, "random seed (split, initialisation, augmentation, order)")
    deterministic: bool = option(False, "deterministic algorithms only (reproducible, slower)")
    out: str = option("runs/fit", "run folder (checkpoints, metrics, bundle/, config.yaml)")
    resume: bool = option(False, "continue the run in --out from its last checkpoint")
    resume_force: bool = option(
        False,
        "with --resume: continue although the data, model or options differ from the run's "
        "(each difference is named in a warning instead of an error); the recipe's plan must "
        "still match",
    )
    progress: bool = option(True, "show progress bars (on stderr)")
    report: bool = option(
        True, "write OUT/report.html at the end (curves, confusion, mistakes, Grad-CAM)"
    )
    logger: str = option(
        "csv",
        "experiment loggers, comma-separated: csv (always on), tensorboard (OUT/tensorboard), "
        "mlflow (local store OUT/mlruns); the last two need pip install 'graft[tracking]'",
    )
    dry_run: bool = option(
        False,
        "print the resolved plan and its time estimate, then stop without training "
        "(nothing is written)",
    )

    def __post_init__(self) -> None:
        _check_range("val_split", self.val_split, 0.0, 0.9)
        _check_range("warmup", self.warmup, 0.0, 1.0)
        _check_range("label_smoothing", self.label_smoothing, 0.0, 0.99)
        for name in ("batch_size", "num_nodes", "in_chans"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("epochs", "head_epochs"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(f"{name} must be >= 0 (or unset for automatic), got {value}")
        if self.full_lr is not None and self.full_lr <= 0:
            raise ConfigError(f"full_lr must be positive, got {self.full_lr}; try 1e-3.")
        if self.lr is not None and self.lr <= 0:
            raise ConfigError(
                f"lr must be positive, got {self.lr}; try 1e-3 or run `graft lr-find`."
            )
        if self.lr_mult < 1:
            raise ConfigError(f"lr_mult is head LR / stem LR and must be >= 1, got {self.lr_mult}")
        if self.average_k < 1:
            raise ConfigError(f"average_k must be at least 1, got {self.average_k}")
        if self.wise and self.recipe != "auto":
            raise ConfigError(
                f"--wise mixes the head-phase and fine-tuned weights of recipe 'auto'; recipe "
                f"{self.recipe!r} has no head phase. Use --recipe auto, or drop --wise."
            )
        if self.recipe == "freeze-upto" and self.freeze_upto is None:
            raise ConfigError(
                "recipe 'freeze-upto' needs freeze_upto=K (--freeze-upto K): groups [0, K) stay frozen."
            )
        if self.recipe == "progressive" and not self.unfreeze:
            raise ConfigError(
                "recipe 'progressive' needs an unfreezing schedule, e.g. --unfreeze 2:+2,4:all "
                "(epoch:groups to add) or --unfreeze 5:blocks.5-6,10:blocks.0-"
            )
        check_fit_options(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "options") -> FitConfig:
        """Build from a mapping; unknown keys raise :class:`graft.errors.ConfigError`."""
        return _config.from_dict(cls, data, where)

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, **overrides: Any) -> FitConfig:
        """YAML file ``path`` (optional) with ``overrides`` on top (``None`` values are ignored)."""
        return _config.load(cls, path, overrides)

    def replace(self, **changes: Any) -> FitConfig:
        """A copy with ``changes`` applied (validated)."""
        return self.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        """A plain YAML-ready dict."""
        return _config.to_dict(self)

    def save(self, path: str | os.PathLike) -> None:
        """Write as YAML, atomically."""
        _config.save(self, path)


def field_names() -> list[str]:
    """Names of all options, in declaration order."""
    return [f.name for f in dataclasses.fields(FitConfig)]


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
