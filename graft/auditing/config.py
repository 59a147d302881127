"""``AuditConfig``: every option of ``graft audit`` / :func:`graft.audit`, with its help text.

The CLI flags, the YAML config (``--config``), the Python keyword arguments and the saved
``config.yaml`` all come from this one dataclass.

Example:
    >>> cfg = AuditConfig(data="photos/", near_pixel=0.99)
    >>> cfg.model, cfg.folds
    ('efficientnet_lite0', 5)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from graft.errors import ConfigError

LabelMethod = Literal["confident-learning", "prune-by-noise-rate"]


@dataclass
class AuditConfig:
    """Options of :func:`graft.audit` (``None`` means: chosen automatically)."""

    data: str | None = field(
        default=None,
        metadata={"help": "ImageFolder, folder with train/ val/ test/, or a path,label CSV"},
    )
    model: str = field(
        default="efficientnet_lite0",
        metadata={"help": "backbone whose features compare the images (see `graft models`)"},
    )
    weights: str = field(
        default="pretrained",
        metadata={"help": "pretrained (shipped/offline weights), none (random init) or a weights "
                  "file; with random weights only the pixel evidence (duplicates) is meaningful"},
    )  # fmt: skip
    image_size: int | None = field(
        default=None,
        metadata={"help": "input size of the backbone (default: the weights' own); smaller is "
                  "faster, e.g. 96 for small images"},
    )  # fmt: skip
    features: str | None = field(
        default=None,
        metadata={"help": "feature store folder to reuse or fill (a `graft extract --out` folder); "
                  "default OUT/features"},
    )  # fmt: skip
    batch_size: int = field(default=64, metadata={"help": "images per extraction batch"})
    workers: int | None = field(
        default=None,
        metadata={"help": "image decoding processes (default: cores - 1, at most 4)"},
    )
    device: str = field(default="cpu", metadata={"help": "torch device for the extraction"})
    bundle: str | None = field(
        default=None,
        metadata={"help": "a fitted bundle whose predicted probabilities replace the "
                  "cross-validated probe (in-sample on its own training images: less sensitive)"},
    )  # fmt: skip
    folds: int = field(
        default=5,
        metadata={"help": "cross-validation folds of the probe that gives out-of-fold "
                  "probabilities; more folds: slower, slightly sharper"},
    )  # fmt: skip
    label_method: LabelMethod = field(
        default="prune-by-noise-rate",
        metadata={"help": "confident learning rule: confident-learning (every off-diagonal "
                  "entry of the confident joint) or prune-by-noise-rate (per class pair, the "
                  "estimated number of errors, largest margins first; fewer false alarms)"},
    )  # fmt: skip
    near_pixel: float = field(
        default=0.985,
        metadata={"help": "correlation of two images' aligned 64x64 grey thumbnails (best shift "
                  "up to 6 px) at or above which they are near duplicates (re-encoded, resized, "
                  "shifted copies); raise it for fewer groups"},
    )  # fmt: skip
    near_cosine: float = field(
        default=0.97,
        metadata={"help": "feature cosine similarity at or above which two images are near "
                  "duplicates when their perceptual hashes also agree (--hash-distance)"},
    )  # fmt: skip
    hash_distance: int = field(
        default=8,
        metadata={"help": "largest Hamming distance (of 64 bits) between the perceptual hashes of "
                  "near duplicates found by --near-cosine; 0 accepts only identical hashes"},
    )  # fmt: skip
    neighbors: int = field(
        default=10,
        metadata={"help": "nearest neighbours looked at per image, for near duplicates and for the "
                  "outlier score"},
    )  # fmt: skip
    outlier_iqr: float = field(
        default=3.0,
        metadata={"help": "an image is an outlier when its k-NN distance exceeds Q3 + this many "
                  "interquartile ranges of all images' distances; lower flags more"},
    )  # fmt: skip
    drop_labels: bool = field(
        default=True,
        metadata={"help": "leave suspected label errors of train/val out of the clean split"},
    )
    drop_outliers: bool = field(
        default=False,
        metadata={"help": "leave outliers of train/val out of the clean split (default: listed "
                  "for review only)"},
    )  # fmt: skip
    thumbnails: int = field(
        default=24,
        metadata={"help": "groups or images shown per section of audit.html"},
    )
    seed: int = field(default=0, metadata={"help": "seed of the cross-validation folds"})
    out: str = field(
        default="audit",
        metadata={
            "help": "output folder: audit.json, issues.csv, clean.csv, audit.html, config.yaml"
        },
    )
    progress: bool = field(default=True, metadata={"help": "show progress bars on stderr"})

    def __post_init__(self) -> None:
        for name in ("near_cosine", "near_pixel"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ConfigError(
                    f"{name} must be in (0, 1], got {getattr(self, name)}; e.g. 0.97 (1.0: only "
                    "identical images)"
                )
        if not 0 <= self.hash_distance <= 64:
            raise ConfigError(f"hash_distance must be in [0, 64] bits, got {self.hash_distance}")
        for name, low in (("folds", 2), ("neighbors", 1), ("batch_size", 1), ("thumbnails", 0)):
            if getattr(self, name) < low:
                raise ConfigError(f"{name} must be at least {low}, got {getattr(self, name)}")
        if self.outlier_iqr < 0:
            raise ConfigError(f"outlier_iqr must be >= 0, got {self.outlier_iqr}; e.g. 3.0")
