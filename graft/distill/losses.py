"""Distillation losses, each with its formula; all reduce to a scalar (mean over the batch).

Notation: ``s`` student, ``t`` teacher, ``B`` batch size, ``T`` temperature, ``softmax`` over classes.

- :func:`kd_loss` (Hinton et al. 2015): ``KL(softmax(t/T) || softmax(s/T)) * T^2``, averaged over the batch.
- :func:`mse_loss` (FitNets hints, Romero et al. 2015): ``mean((s - t)^2)`` over every element.
- :func:`cosine_loss`: ``mean(1 - cos(s_i, t_i))`` over positions ``i``, the cosine taken along channels.
- :func:`attention_loss` (Zagoruyko & Komodakis 2017): attention map ``a = normalize(sum_c |F_c|^p)``
  (spatial map flattened, unit L2 norm per sample), loss ``mean((a_s - a_t)^2)`` over batch and positions,
  as in the authors' reference code.
- :func:`total_loss`: ``CE(labels) + alpha * KD + beta * sum(feature losses)``.

Example:
    >>> import torch
    >>> s = torch.tensor([[1.0, 0.0]]); t = torch.tensor([[0.0, 1.0]])
    >>> round(kd_loss(s, t, temperature=1.0).item(), 4)
    0.4621
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from graft.errors import ConfigError, raise_unknown

DEFAULT_TEMPERATURE = 4.0
DEFAULT_AT_POWER = 2.0


def kd_loss(
    student_logits: Tensor, teacher_logits: Tensor, temperature: float = DEFAULT_TEMPERATURE
) -> Tensor:
    """Hinton's logit distillation: ``KL(softmax(t/T) || softmax(s/T)) * T^2``, mean over the batch.

    The ``T^2`` factor keeps the gradient scale independent of ``T``.

    Example:
        >>> import torch
        >>> z = torch.randn(4, 10)
        >>> float(kd_loss(z, z))  # identical logits: no loss
        0.0
    """
    if temperature <= 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}; typical values are 1-8.")
    if student_logits.shape != teacher_logits.shape:
        raise ConfigError(
            f"logit KD needs the same number of classes: student {tuple(student_logits.shape)} against "
            f"teacher {tuple(teacher_logits.shape)}. Use a teacher fine-tuned on the same classes, or "
            "set alpha=0 to distill features only."
        )
    log_p_s = F.log_softmax(student_logits.float() / temperature, dim=-1)
    log_p_t = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    kl = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True)
    return kl * temperature**2


def mse_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """FitNets hint loss: ``mean((s - t)^2)`` over all elements (shapes must match).

    Example:
        >>> import torch
        >>> float(mse_loss(torch.zeros(1, 2, 1, 1), torch.ones(1, 2, 1, 1)))
        1.0
    """
    _check_same(student, teacher, "mse")
    return F.mse_loss(student.float(), teacher.float())


def cosine_loss(student: Tensor, teacher: Tensor, eps: float = 1e-8) -> Tensor:
    """``mean(1 - cos(s_i, t_i))`` over positions; the cosine is along channels (dim 1 of ``B,C,H,W``,
    the last dim of ``B,N,D`` tokens or ``B,D`` vectors).

    Example:
        >>> import torch
        >>> float(cosine_loss(torch.ones(2, 3), -torch.ones(2, 3)))
        2.0
    """
    _check_same(student, teacher, "cosine")
    dim = 1 if student.dim() == 4 else -1
    cos = F.cosine_similarity(student.float(), teacher.float(), dim=dim, eps=eps)
    return (1.0 - cos).mean()


def attention_map(features: Tensor, p: float = DEFAULT_AT_POWER) -> Tensor:
    """Spatial attention ``normalize(sum_c |F_c|^p)`` of a ``B,C,H,W`` map, flattened to ``B,H*W``
    with unit L2 norm per sample (the sum is a mean over channels; the normalisation cancels the 1/C)."""
    if features.dim() != 4:
        raise ConfigError(
            f"attention transfer needs B,C,H,W feature maps, got shape {tuple(features.shape)}"
        )
    a = features.float().abs().pow(p).mean(dim=1).flatten(1)
    return F.normalize(a, dim=1)


def attention_loss(student: Tensor, teacher: Tensor, p: float = DEFAULT_AT_POWER) -> Tensor:
    """Attention transfer: ``mean((a_s - a_t)^2)`` with ``a = attention_map(F, p)``.

    Channels may differ; the spatial sizes must match.

    Example:
        >>> import torch
        >>> x = torch.rand(2, 8, 4, 4)
        >>> float(attention_loss(x, x.repeat(1, 2, 1, 1)))  # same map, more channels
        0.0
    """
    if student.shape[-2:] != teacher.shape[-2:]:
        raise ConfigError(
            f"attention transfer needs equal spatial sizes, got {tuple(student.shape[-2:])} and "
            f"{tuple(teacher.shape[-2:])}; align them first (graft.distill.adapters)."
        )
    return (attention_map(student, p) - attention_map(teacher, p)).pow(2).mean()


FEATURE_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "mse": mse_loss,
    "cosine": cosine_loss,
    "at": attention_loss,
}


def feature_loss_fn(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    """The feature loss called ``name`` (``mse``, ``cosine`` or ``at``)."""
    if name not in FEATURE_LOSSES:
        raise_unknown(
            "feature loss", name, FEATURE_LOSSES, "Pass feature_loss='mse', 'cosine' or 'at'."
        )
    return FEATURE_LOSSES[name]


def total_loss(
    ce: Tensor,
    kd: Tensor | None = None,
    features: Sequence[Tensor] = (),
    alpha: float = 1.0,
    beta: float = 1.0,
) -> Tensor:
    """``CE + alpha * KD + beta * sum(features)``; a missing KD term or an empty list adds nothing.

    Example:
        >>> import torch
        >>> float(total_loss(torch.tensor(1.0), torch.tensor(2.0), [torch.tensor(3.0)], alpha=0.5, beta=2.0))
        8.0
    """
    loss = ce
    if kd is not None and alpha:
        loss = loss + alpha * kd
    if features and beta:
        loss = loss + beta * torch.stack([f.float() for f in features]).sum()
    return loss


def _check_same(student: Tensor, teacher: Tensor, name: str) -> None:
    if student.shape != teacher.shape:
        raise ConfigError(
            f"{name} feature loss needs equal shapes, got student {tuple(student.shape)} and teacher "
            f"{tuple(teacher.shape)}; graft inserts adapters for this (graft.distill.adapters)."
        )
