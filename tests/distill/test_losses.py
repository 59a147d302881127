"""Distillation losses against hand-computed values, including their default arguments."""

from __future__ import annotations

import math

import pytest
import torch

from graft.distill.losses import (
    DEFAULT_TEMPERATURE,
    attention_loss,
    attention_map,
    cosine_loss,
    feature_loss_fn,
    kd_loss,
    mse_loss,
    total_loss,
)
from graft.errors import ConfigError, UnknownNameError


def _kl(p: list[float], q: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))


def _softmax(z: list[float]) -> list[float]:
    e = [math.exp(v) for v in z]
    return [v / sum(e) for v in e]


def test_kd_loss_temperature_one_golden() -> None:
    s = torch.tensor([[1.0, 0.0]])
    t = torch.tensor([[0.0, 1.0]])
    # softmax([0,1]) = [0.26894, 0.73106]; KL = (0.73106 - 0.26894) * ln(e) = 0.46212
    assert kd_loss(s, t, temperature=1.0).item() == pytest.approx(0.462117, abs=1e-5)


def test_kd_loss_default_temperature_golden() -> None:
    s = torch.tensor([[2.0, 0.0, -2.0], [0.0, 0.0, 0.0]])
    t = torch.tensor([[0.0, 4.0, 0.0], [1.0, 2.0, 3.0]])
    T = DEFAULT_TEMPERATURE
    assert T == 4.0
    expected = 0.0
    for srow, trow in zip(s.tolist(), t.tolist(), strict=True):
        expected += _kl(_softmax([v / T for v in trow]), _softmax([v / T for v in srow]))
    expected = expected / 2 * T**2
    # by hand for the first row: p_t = softmax([0,1,0]) = [0.21194, 0.57612, 0.21194],
    # p_s = softmax([0.5,0,-0.5]) = [0.50648, 0.30720, 0.18632] -> KL = 0.204942;
    # second row: p_t = [0.25428, 0.32650, 0.41923], p_s uniform -> KL = 0.020513
    assert expected == pytest.approx((0.204942 + 0.020513) / 2 * 16, rel=1e-4)
    assert kd_loss(s, t).item() == pytest.approx(expected, rel=1e-5)


def test_kd_loss_zero_for_equal_logits_and_gradient_points_to_teacher() -> None:
    t = torch.tensor([[0.0, 3.0]])
    s = torch.zeros(1, 2, requires_grad=True)
    assert kd_loss(t, t).item() == pytest.approx(0.0, abs=1e-7)
    kd_loss(s, t).backward()
    assert s.grad[0, 1] < 0 < s.grad[0, 0]  # descent raises the teacher's class


def test_kd_loss_rejects_bad_inputs() -> None:
    with pytest.raises(ConfigError, match="temperature"):
        kd_loss(torch.zeros(1, 2), torch.zeros(1, 2), temperature=0)
    with pytest.raises(ConfigError, match="same number of classes"):
        kd_loss(torch.zeros(1, 2), torch.zeros(1, 3))


def test_mse_golden() -> None:
    s = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # 1,2,1,2
    t = torch.zeros_like(s)
    assert mse_loss(s, t).item() == pytest.approx((1 + 4 + 9 + 16) / 4)
    with pytest.raises(ConfigError, match="equal shapes"):
        mse_loss(torch.zeros(1, 2, 2, 2), torch.zeros(1, 3, 2, 2))


def test_cosine_golden_maps_and_tokens() -> None:
    # positions: (1,0)vs(1,0) cos 1; (1,0)vs(0,1) cos 0; (1,1)vs(-1,-1) cos -1 ; (3,4) vs (4,3) cos 24/25
    s = torch.tensor([[1.0, 1.0, 1.0, 3.0], [0.0, 0.0, 1.0, 4.0]]).view(1, 2, 2, 2)
    t = torch.tensor([[1.0, 0.0, -1.0, 4.0], [0.0, 1.0, -1.0, 3.0]]).view(1, 2, 2, 2)
    expected = ((1 - 1) + (1 - 0) + (1 + 1) + (1 - 24 / 25)) / 4
    assert cosine_loss(s, t).item() == pytest.approx(expected, rel=1e-6)
    tokens_s = s.flatten(2).transpose(1, 2)  # B,N,D
    tokens_t = t.flatten(2).transpose(1, 2)
    assert cosine_loss(tokens_s, tokens_t).item() == pytest.approx(expected, rel=1e-6)


def test_attention_map_and_loss_golden_default_p() -> None:
    s = torch.tensor([[1.0, 0.0], [0.0, 0.0]]).view(1, 1, 2, 2)  # |F|^2 = [1,0,0,0]
    t = torch.tensor([[1.0, 1.0], [1.0, 1.0]]).view(1, 1, 2, 2)  # -> [.5,.5,.5,.5] after L2 norm
    assert attention_map(t).tolist() == [[0.5, 0.5, 0.5, 0.5]]
    expected = ((1 - 0.5) ** 2 + 3 * 0.5**2) / 4  # 0.25
    assert attention_loss(s, t).item() == pytest.approx(expected)


def test_attention_loss_p1_and_channel_mean() -> None:
    s = torch.tensor([[[1.0, -3.0]], [[1.0, 1.0]]]).view(1, 2, 1, 2)  # mean_c |F| = [1, 2]
    t = torch.tensor([[[2.0, 0.0]]]).view(1, 1, 1, 2)  # [2, 0] -> [1, 0]
    a_s = [1 / math.sqrt(5), 2 / math.sqrt(5)]
    expected = ((a_s[0] - 1) ** 2 + a_s[1] ** 2) / 2
    assert attention_loss(s, t, p=1).item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ConfigError, match="spatial"):
        attention_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 3, 3))


def test_total_loss_formula_and_defaults() -> None:
    ce, kd, f1, f2 = (torch.tensor(v) for v in (1.0, 2.0, 3.0, 4.0))
    assert total_loss(ce, kd, [f1, f2]).item() == pytest.approx(1 + 2 + 7)  # alpha = beta = 1
    assert total_loss(ce, kd, [f1, f2], alpha=0.5, beta=0.1).item() == pytest.approx(1 + 1 + 0.7)
    assert total_loss(ce).item() == 1.0


def test_feature_loss_lookup() -> None:
    assert feature_loss_fn("at") is attention_loss
    with pytest.raises(UnknownNameError, match="cosine"):
        feature_loss_fn("cosin")
