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
from dataclasses import dataclass, field
from typing import Any, Literal

from graft import config as _config
from graft.errors import ConfigError

Recipe = Literal["auto", "head", "full", "freeze-upto", "progressive"]
BnPolicy = Literal["auto", "frozen", "eval", "train"]


@dataclass
class FitConfig:
    """Options of :func:`graft.fit` / ``graft fit`` (``None`` means: chosen automatically)."""

    # data
    data: str | None = None  # ImageFolder root (train/ val/ test/ or class folders) or CSV
    val_split: float = 0.1  # used when the data has no val/ folder
    balance: Literal["none", "sampler", "weights"] = "none"  # class imbalance handling
    cache_images: bool = False  # keep decoded images in memory between epochs
    workers: int | None = None  # data loader processes (None: by CPU count)
    # model
    model: str = "efficientnet_lite0"
    weights: str = "pretrained"  # "pretrained", "none" (random init) or a weights file
    in_chans: int = 3
    head: str = "linear"
    # extra create_model arguments; hybrids: fusion, proj_dim, pretrained={"vit": False}, ...
    model_args: dict[str, Any] = field(default_factory=dict)
    dropout: float = 0.0
    image_size: int | None = field(
        default=None,
        metadata={
            "help": "input size in px (default: from the training images: 112 when their median "
            "shorter side is below 96 px, else the weights' own size; graft.data.image_size)"
        },
    )
    normalization: str = "pretrained"  # "pretrained", "dataset" or "MEAN:STD" (e.g. 0.5:0.25)
    augment: Literal["none", "light", "standard"] = "light"
    flip: bool = True
    # recipe
    recipe: Recipe = "auto"
    freeze_upto: int | None = None  # recipe freeze-upto: groups [0, K) stay frozen
    unfreeze: str | None = None  # recipe progressive: "2:+2,4:all" or "5:blocks.4-5,10:blocks.0-"
    lr_decay: float = 0.5  # progressive: LR factor applied at each unfreezing step
    epochs: int | None = field(
        default=None,
        metadata={
            "help": "total epochs, every phase included (auto splits them: head gets 0.4 N "
            "rounded, 1 to 8, the full phase the rest; default: from the dataset size)"
        },
    )
    head_epochs: int | None = field(
        default=None,
        metadata={
            "help": "auto: epochs of the head-only phase, out of --epochs (default: 0.4 x epochs, rounded, 1 to 8)"
        },
    )
    bn: BnPolicy = "auto"  # BatchNorm: frozen parts eval ("frozen"), all eval ("eval"), all batch stats ("train")
    cache_frozen: bool | None = None  # cache outputs of frozen layers (None: on when it applies)
    # optimisation
    batch_size: int = 32
    lr: float | None = None  # head learning rate (None: recipe default)
    full_lr: float | None = field(
        default=None,
        metadata={
            "help": "auto: head learning rate of the full phase (default: --lr if given, else "
            "1e-3 for AdamW, 1e-2 for SGD)"
        },
    )
    lr_mult: float = 10.0  # head LR / stem LR, geometric in between
    optimizer: Literal["adamw", "sgd"] = "adamw"
    momentum: float = 0.9
    weight_decay: float = 0.01  # never applied to norms and biases
    schedule: Literal["cosine", "onecycle", "step", "constant"] = "cosine"
    warmup: float = 0.1  # fraction of each phase spent warming up
    label_smoothing: float = 0.1
    mixup: float = 0.0  # mixup alpha (0: off)
    cutmix: float = 0.0  # cutmix alpha (0: off)
    ema: bool = False
    ema_decay: float = 0.998
    grad_clip: float | None = 1.0
    early_stop: int | None = None  # patience in epochs (None: off)
    monitor: str = "val_loss"  # metric for the best checkpoint and early stopping
    # hardware
    precision: Literal["32", "bf16-mixed", "16-mixed", "64"] = "32"
    accelerator: str = "auto"
    devices: str = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    sync_bn: bool = False
    channels_last: bool = False
    # reproducibility and outputs
    seed: int = 0
    deterministic: bool = False
    out: str = "runs/fit"
    resume: bool = False
    progress: bool = True
    report: bool = True  # write OUT/report.html (graft report) when training ends
    logger: str = field(
        default="csv",
        metadata={
            "help": "experiment loggers, comma-separated: csv (always on), tensorboard "
            "(OUT/tensorboard), mlflow (local store OUT/mlruns); the last two need "
            "pip install 'graft[tracking]' (default: csv)"
        },
    )
    dry_run: bool = field(
        default=False,
        metadata={
            "help": "print the resolved plan and its time estimate, then stop without training "
            "(nothing is written)"
        },
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
        if self.recipe == "freeze-upto" and self.freeze_upto is None:
            raise ConfigError(
                "recipe 'freeze-upto' needs freeze_upto=K (--freeze-upto K): groups [0, K) stay frozen."
            )
        if self.recipe == "progressive" and not self.unfreeze:
            raise ConfigError(
                "recipe 'progressive' needs an unfreezing schedule, e.g. --unfreeze 2:+2,4:all "
                "(epoch:groups to add) or --unfreeze 5:blocks.5-6,10:blocks.0-"
            )

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
