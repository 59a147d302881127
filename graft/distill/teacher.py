"""The teacher: a frozen model run in eval + inference mode on the student's batches.

The student's batches are normalised for the student. The teacher gets the same view (the same crop
and augmentation, which KD needs), converted to its own preprocessing: un-normalise with the
student's mean/std, normalise with the teacher's, resize bilinearly to the teacher's input size when
it differs, and repeat a grayscale channel when the teacher wants RGB.

Outputs can be cached across epochs (:class:`TeacherCache`): useful when training inputs are not
randomly augmented, so every epoch shows the teacher the same tensors. Entries are keyed by the
sample index when the caller knows it, else by a digest of the input tensor's bytes, so a cached
entry is always the teacher's output for exactly that input.

Example:
    >>> import timm, torch
    >>> t = Teacher(timm.create_model("test_resnet", num_classes=3),
    ...             {"mean": (0.5,) * 3, "std": (0.5,) * 3, "input_size": (3, 32, 32)},
    ...             {"mean": (0.5,) * 3, "std": (0.5,) * 3, "input_size": (3, 32, 32)})
    >>> logits, feats = t(torch.randn(2, 3, 32, 32))
    >>> tuple(logits.shape)
    (2, 3)
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graft.distill.taps import FeatureTaps
from graft.log import get_logger

log = get_logger("graft.distill")


class TeacherInput(nn.Module):
    """Convert a batch normalised for the student into the teacher's normalisation and size."""

    def __init__(
        self,
        student_cfg: Mapping[str, Any],
        teacher_cfg: Mapping[str, Any],
        size: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        s_mean, s_std = _stat(student_cfg, "mean"), _stat(student_cfg, "std")
        t_mean, t_std = _stat(teacher_cfg, "mean"), _stat(teacher_cfg, "std")
        # x_t = (x * s_std + s_mean - t_mean) / t_std = x * scale + shift
        self.register_buffer("scale", (s_std / t_std).view(1, -1, 1, 1), persistent=False)
        self.register_buffer(
            "shift", ((s_mean - t_mean) / t_std).view(1, -1, 1, 1), persistent=False
        )
        self.channels = int(len(t_mean))
        self.size = tuple(int(v) for v in size) if size else None
        self.identity = bool(
            torch.allclose(self.scale, torch.ones_like(self.scale)) and not self.shift.any()
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] == 1 and self.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        if not self.identity:
            x = x * self.scale.to(x.dtype) + self.shift.to(x.dtype)
        if self.size and tuple(x.shape[-2:]) != self.size:
            down = self.size[0] < x.shape[-2]
            x = F.interpolate(
                x, size=self.size, mode="bilinear", align_corners=False, antialias=down
            )
        return x


class TeacherCache:
    """Teacher outputs per sample, on the CPU, reused across epochs.

    Example:
        >>> cache = TeacherCache()
        >>> cache.get(["a"]) is None
        True
    """

    def __init__(self) -> None:
        self._rows: dict[Hashable, tuple[Tensor, ...]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, keys: Sequence[Hashable]) -> tuple[Tensor, ...] | None:
        """Stacked outputs for ``keys`` when all are cached, else ``None``."""
        rows = [self._rows.get(k) for k in keys]
        if any(r is None for r in rows):
            self.misses += len(keys)
            return None
        self.hits += len(keys)
        return tuple(torch.stack(parts) for parts in zip(*rows, strict=True))

    def put(self, keys: Sequence[Hashable], outputs: Sequence[Tensor]) -> None:
        """Store row ``i`` of every output under ``keys[i]``."""
        cpu = [o.detach().cpu() for o in outputs]
        for i, key in enumerate(keys):
            self._rows[key] = tuple(o[i].clone() for o in cpu)


def input_keys(x: Tensor) -> list[str]:
    """One digest per sample of ``x`` (its bytes, shape and dtype): equal keys mean equal inputs."""
    flat = x.detach().cpu().contiguous()
    return [
        hashlib.blake2b(
            row.numpy().tobytes() + str((tuple(row.shape), row.dtype)).encode(), digest_size=16
        ).hexdigest()
        for row in flat
    ]


class Teacher:
    """A frozen teacher: eval mode, no gradients, its own preprocessing, optional output cache.

    It is deliberately not an ``nn.Module`` child of the training module, so ``.train()`` calls,
    optimizers and checkpoints of the student never reach it.

    Args:
        model: the teacher network (timm contract: ``forward_features`` / ``forward_head``).
        data_config: the teacher's preprocessing (mean, std, input_size).
        student_config: the student's preprocessing, which produced the batches.
        layers: feature layers to tap (see :mod:`graft.distill.taps`).
        image_size: the teacher's input size (``None``: from ``data_config``).
        cache: keep outputs across epochs (only sound when inputs repeat exactly).
    """

    def __init__(
        self,
        model: nn.Module,
        data_config: Mapping[str, Any],
        student_config: Mapping[str, Any],
        layers: Sequence[str] = (),
        image_size: int | Sequence[int] | None = None,
        cache: bool = False,
    ) -> None:
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        size = _size(image_size, data_config)
        self.input = TeacherInput(student_config, data_config, size)
        self.taps = FeatureTaps(self.model, layers, role="teacher")
        self.cache = TeacherCache() if cache else None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: torch.device | str) -> Teacher:
        self.model.to(device)
        self.input.to(device)
        return self

    def __call__(
        self, x: Tensor, keys: Sequence[Hashable] | None = None
    ) -> tuple[Tensor, list[Tensor]]:
        """``(logits, features)`` of the teacher for the student batch ``x`` (plain tensors, no grad)."""
        if self.cache is None:
            return self._compute(x)
        keys = list(keys) if keys is not None else input_keys(x)
        hit = self.cache.get(keys)
        if hit is not None:
            logits, *feats = (t.to(x.device) for t in hit)
            return logits, feats
        logits, feats = self._compute(x)
        self.cache.put(keys, [logits, *feats])
        return logits, feats

    def _compute(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        self.model.eval()
        with torch.inference_mode():
            logits, feats = self.taps(self.input(x.to(self.device)))
        # clone outside inference mode: inference tensors cannot be saved for backward
        return logits.clone(), [f.clone() for f in feats]

    def close(self) -> None:
        """Remove the teacher's feature hooks."""
        self.taps.close()


def _stat(cfg: Mapping[str, Any], key: str) -> Tensor:
    return torch.tensor([float(v) for v in cfg[key]], dtype=torch.float32)


def _size(image_size: int | Sequence[int] | None, cfg: Mapping[str, Any]) -> tuple[int, int] | None:
    if image_size is None:
        shape = cfg.get("input_size")
        return (int(shape[-2]), int(shape[-1])) if shape else None
    if isinstance(image_size, int):
        return (image_size, image_size)
    return (int(image_size[0]), int(image_size[-1]))
