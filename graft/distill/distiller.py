"""``Distiller``: the student, its adapters and the frozen teacher, and the distillation terms.

The student and the adapters are sub-modules (they train); the teacher is held outside the module
tree (see :class:`graft.distill.teacher.Teacher`). Feature shapes are discovered by a dry run of both
models on one batch, and one :class:`~graft.distill.adapters.FeatureAdapter` is built per layer pair.

The cross-entropy on labels stays with the training engine (label smoothing, mixup targets);
:meth:`Distiller.terms` returns the student logits plus the KD and feature terms, and
:func:`graft.distill.losses.total_loss` combines them.

Example:
    >>> import timm, torch
    >>> cfg = {"mean": (0.5,) * 3, "std": (0.5,) * 3, "input_size": (3, 32, 32)}
    >>> teacher = Teacher(timm.create_model("test_efficientnet", num_classes=3), cfg, cfg, ["features"])
    >>> d = Distiller(timm.create_model("test_resnet", num_classes=3), teacher, [("features", "features")],
    ...               sample=torch.randn(2, 3, 32, 32))
    >>> out = d.terms(torch.randn(2, 3, 32, 32))
    >>> tuple(out.logits.shape), len(out.features)
    ((2, 3), 1)
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from graft.distill.adapters import FeatureAdapter, Spatial
from graft.distill.losses import DEFAULT_TEMPERATURE, feature_loss_fn, kd_loss
from graft.distill.taps import FeatureTaps
from graft.distill.teacher import Teacher
from graft.log import get_logger

log = get_logger("graft.distill")


@dataclass
class Terms:
    """What one distillation step computed: student logits, KD term (or None), feature terms."""

    logits: Tensor
    kd: Tensor | None
    features: list[Tensor] = field(default_factory=list)


class Distiller(nn.Module):
    """Student + adapters (trainable) + teacher (frozen) for one set of layer pairs.

    Args:
        student: the model being trained (timm contract).
        teacher: a :class:`Teacher` whose ``layers`` are the teacher side of ``pairs``.
        pairs: ``(student_layer, teacher_layer)`` pairs (may be empty: logit KD only).
        sample: one student-normalised batch for the dry run that discovers feature shapes.
        feature_loss: ``mse``, ``cosine`` or ``at``.
        temperature: KD temperature; ``logit_kd=False`` skips the KD term.
        spatial, normalize: adapter options (see :class:`FeatureAdapter`).
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: Teacher,
        pairs: Sequence[tuple[str, str]],
        sample: Tensor,
        feature_loss: str = "mse",
        temperature: float = DEFAULT_TEMPERATURE,
        logit_kd: bool = True,
        spatial: Spatial = "interpolate",
        normalize: bool = False,
    ) -> None:
        super().__init__()
        self.student = student
        self._teacher = [teacher]  # a list: keeps the teacher out of the module tree
        self.pairs = [tuple(p) for p in pairs]
        self.feature_loss = feature_loss
        self._loss_fn = feature_loss_fn(feature_loss)
        self.temperature = float(temperature)
        self.logit_kd = logit_kd
        self.taps = FeatureTaps(student, [s for s, _ in self.pairs], role="student")
        self.adapters = nn.ModuleList(self._build_adapters(sample, spatial, normalize))

    @property
    def teacher(self) -> Teacher:
        return self._teacher[0]

    def forward(self, x: Tensor) -> Tensor:
        """Student logits (what evaluation and the saved bundle use)."""
        return self.student(x)

    def terms(self, x: Tensor, keys: Sequence[Hashable] | None = None) -> Terms:
        """Student logits and the distillation terms for batch ``x`` (``keys``: sample ids for the cache)."""
        logits, s_feats = self.taps(x)
        t_logits, t_feats = self.teacher(x, keys)
        kd = kd_loss(logits, t_logits.to(logits.dtype), self.temperature) if self.logit_kd else None
        feats = [
            self._loss_fn(*adapter(s, t.to(s.dtype)))
            for adapter, s, t in zip(self.adapters, s_feats, t_feats, strict=True)
        ]
        return Terms(logits, kd, feats)

    def _build_adapters(
        self, sample: Tensor, spatial: Spatial, normalize: bool
    ) -> list[FeatureAdapter]:
        if not self.pairs:
            return []
        was_training = self.student.training
        self.student.eval()
        with torch.no_grad():
            _, s_feats = self.taps(sample)
            _, t_feats = self.teacher._compute(sample)
        self.student.train(was_training)
        adapters = []
        project = self.feature_loss != "at"  # attention transfer sums over channels
        for (s_name, t_name), s, t in zip(self.pairs, s_feats, t_feats, strict=True):
            adapter = FeatureAdapter(
                s.shape,
                t.shape,
                spatial=spatial,
                project=project,
                normalize=normalize,
                student_prefix=_prefix_hint(self.student, s),
                teacher_prefix=_prefix_hint(self.teacher.model, t),
            )
            log.info(
                "feature pair %s -> %s: student %s, teacher %s, adapter %s",
                s_name,
                t_name,
                tuple(s.shape[1:]),
                tuple(t.shape[1:]),
                adapter,
            )
            adapters.append(adapter)
        return adapters

    def close(self) -> None:
        """Remove all hooks (student and teacher)."""
        self.taps.close()
        self.teacher.close()


def _prefix_hint(model: nn.Module, feature: Tensor) -> int | None:
    """timm ViTs say how many prefix tokens they carry; other models leave it to inference."""
    if feature.dim() != 3:
        return None
    value = getattr(model, "num_prefix_tokens", None)
    return int(value) if isinstance(value, int) else None
