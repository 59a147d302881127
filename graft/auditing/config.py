"""``AuditConfig``: every option of ``graft audit`` / :func:`graft.audit`, with its help text.

The CLI flags, the YAML config (``--config``), the Python keyword arguments, the docs' option
table and the saved ``config.yaml`` all come from this one dataclass (``graft.options.option``
fields). ``device=`` (a torch device string) is the old spelling of ``accelerator`` / ``devices``,
accepted by :func:`graft.audit` for one release.

Example:
    >>> cfg = AuditConfig(data="photos/", near_pixel=0.99)
    >>> cfg.model, cfg.folds
    ('efficientnet_lite0', 5)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from graft.errors import ConfigError
from graft.options import ACCELERATOR_HELP, DEVICES_HELP, option

LabelMethod = Literal["confident-learning", "prune-by-noise-rate"]


@dataclass
class AuditConfig:
    """Options of ``graft audit`` and keyword arguments of :func:`graft.audit`."""

    data: str | None = option(
        None,
        "ImageFolder, folder with train/ val/ test/, or a path,label CSV (or the data of --config)",
        positional=True,
        nargs="?",
    )
    model: str = option(
        "efficientnet_lite0", "backbone whose features compare the images (see `graft models`)"
    )
    weights: str = option(
        "pretrained",
        "pretrained (shipped/offline weights), none (random init) or a weights file; with random "
        "weights only the pixel evidence (duplicates) is meaningful",
    )
    image_size: int | None = option(
        None,
        "input size of the backbone in pixels; smaller is faster, e.g. 96 for small images",
        default_text="the weights' own",
    )
    features: str | None = option(
        None,
        "feature store folder to reuse or fill (a `graft extract --out` folder)",
        default_text="OUT/features",
    )
    batch_size: int = option(64, "images per extraction batch (per process)")
    workers: int | None = option(
        None, "image decoding processes", default_text="cores - 1, at most 4"
    )
    accelerator: str = option("auto", ACCELERATOR_HELP)
    devices: str = option(
        "auto",
        DEVICES_HELP + "; several processes share the feature extraction, the rest runs in one",
    )
    bundle: str | None = option(
        None,
        "a fitted bundle whose predicted probabilities replace the cross-validated probe "
        "(in-sample on its own training images: less sensitive)",
        default_text="the probe",
    )
    folds: int = option(
        5,
        "cross-validation folds of the probe that gives out-of-fold probabilities; more folds: "
        "slower, slightly sharper",
    )
    label_method: LabelMethod = option(
        "prune-by-noise-rate",
        "confident learning rule: confident-learning (every off-diagonal entry of the confident "
        "joint) or prune-by-noise-rate (per class pair, the estimated number of errors, largest "
        "margins first; fewer false alarms)",
    )
    near_pixel: float = option(
        0.985,
        "correlation of two images' aligned 64x64 grey thumbnails (best shift up to 6 px) at or "
        "above which they are near duplicates (re-encoded, resized, shifted copies); raise it for "
        "fewer groups",
    )
    near_cosine: float = option(
        0.97,
        "feature cosine similarity at or above which two images are near duplicates when their "
        "perceptual hashes also agree (--hash-distance)",
    )
    hash_distance: int = option(
        8,
        "largest Hamming distance (of 64 bits) between the perceptual hashes of near duplicates "
        "found by --near-cosine; 0 accepts only identical hashes",
    )
    neighbors: int = option(
        10, "nearest neighbours looked at per image, for near duplicates and the outlier score"
    )
    outlier_iqr: float = option(
        3.0,
        "an image is an outlier when its k-NN distance exceeds Q3 + this many interquartile "
        "ranges of all images' distances; lower flags more",
    )
    drop_labels: bool = option(
        True, "leave suspected label errors of train/val out of the clean split"
    )
    drop_outliers: bool = option(
        False, "leave outliers of train/val out of the clean split (off: listed for review only)"
    )
    thumbnails: int = option(24, "groups or images shown per section of audit.html")
    seed: int = option(0, "seed of the cross-validation folds")
    out: str = option(
        "audit", "output folder: audit.json, issues.csv, clean.csv, audit.html, config.yaml"
    )
    progress: bool = option(True, "show progress bars on stderr")

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
