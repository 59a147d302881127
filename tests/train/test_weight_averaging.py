"""Weight arithmetic (graft.train.averaging): averages, WiSE-FT interpolation and its alpha choice,
greedy soups, BatchNorm recomputation. Exact equalities, small models, no training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from graft.errors import ConfigError
from graft.train.averaging import (
    accuracy,
    average_states,
    bn_buffers_differ,
    greedy_soup,
    interpolate_states,
    recompute_bn,
)
from graft.train.improve import ALPHAS, choose_alpha


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_interpolation_ends_are_exact_and_middle_is_linear():
    torch.manual_seed(1)
    start, end = _state(_net()), _state(_net())
    end["1.num_batches_tracked"] = torch.tensor(7)
    one, zero = interpolate_states(start, end, 1.0), interpolate_states(start, end, 0.0)
    assert all(torch.equal(one[k], end[k]) for k in end)
    assert all(torch.equal(zero[k], start[k]) for k in start if k != "1.num_batches_tracked")
    half = interpolate_states(start, end, 0.5)
    assert torch.allclose(half["0.weight"], (start["0.weight"] + end["0.weight"]) / 2)
    assert half["1.num_batches_tracked"].item() == 7  # integers come from the end point
    with pytest.raises(ConfigError, match="between 0 and 1"):
        interpolate_states(start, end, 1.5)


def test_average_of_identical_checkpoints_returns_them():
    state = _state(_net())
    averaged = average_states([state, {k: v.clone() for k, v in state.items()}, state])
    assert all(torch.equal(averaged[k], state[k]) for k in state)


def test_average_is_the_mean_and_refuses_mismatched_checkpoints():
    a, b = {"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([3.0, 6.0])}
    assert average_states([a, b])["w"].tolist() == [2.0, 4.0]
    with pytest.raises(ConfigError, match="differ"):
        average_states([a, {"v": torch.zeros(2)}])
    with pytest.raises(ConfigError, match="at least one"):
        average_states([])


def _separable() -> list[tuple[torch.Tensor, torch.Tensor]]:
    x = torch.tensor([[2.0, 0.0], [0.0, 2.0], [3.0, 0.5], [0.5, 3.0]])
    return [(x, torch.tensor([0, 1, 0, 1]))]


def test_choose_alpha_picks_the_best_on_validation_and_leaves_those_weights():
    model = nn.Linear(2, 2, bias=False)
    good = {"weight": torch.eye(2)}  # class = larger coordinate: 100 % on the data
    bad = {"weight": -torch.eye(2)}  # the opposite: 0 %
    val = _separable()
    alpha, curve = choose_alpha(good, bad, model, lambda m: accuracy(m, val))
    assert [a for a, _ in curve] == list(ALPHAS)
    assert curve[0][1] == 1.0 and curve[-1][1] == 0.0
    assert alpha == max(a for a, s in curve if s == 1.0)  # ties go to the larger alpha
    assert alpha < 0.5
    assert torch.equal(model.weight.detach(), interpolate_states(good, bad, alpha)["weight"])
    alpha, _ = choose_alpha(bad, good, model, lambda m: accuracy(m, val))
    assert alpha == 1.0 and torch.equal(model.weight.detach(), good["weight"])  # fine-tuned exactly


def test_greedy_soup_adds_only_what_does_not_lower_validation():
    states = [{"w": torch.tensor([v])} for v in (0.0, 2.0, 10.0)]
    target = 1.0  # the score peaks when the soup's weight is 1.0

    def score(s):
        return -abs(s["w"].item() - target)

    soup, kept, curve = greedy_soup(states, [0.2, 0.9, 0.5], score)
    assert kept == [1, 0]  # 2.0 first (best), 10.0 rejected (soup 6.0), 0.0 accepted (soup 1.0)
    assert soup["w"].item() == 1.0 and len(curve) == 3


def test_recompute_bn_measures_the_datas_statistics():
    model = _net()
    assert torch.equal(model[1].running_mean, torch.zeros(4))
    torch.manual_seed(0)
    batches = [
        (torch.randn(64, 2) * 0.1 + 5.0, torch.zeros(64, dtype=torch.long)) for _ in range(4)
    ]
    expected = torch.cat([model[0](x) for x, _ in batches]).mean(0).detach()
    assert recompute_bn(model, [*batches, None])  # a None batch (unreadable images) is skipped
    assert torch.allclose(model[1].running_mean, expected, atol=1e-4)
    assert not recompute_bn(nn.Linear(2, 2), batches)  # no BatchNorm: nothing to do


def test_bn_buffers_differ_only_when_statistics_changed():
    model = _net()
    a = _state(model)
    b = {k: v.clone() for k, v in a.items()}
    b["0.weight"] += 1  # weights differ, statistics do not
    assert not bn_buffers_differ(model, [a, b])
    b["1.running_mean"] += 1
    assert bn_buffers_differ(model, [a, b])


def test_accuracy_with_tta_averages_the_mirror():
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2, bias=False))
    model[1].weight.data = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    batch = [(torch.tensor([[[[3.0, 1.2]]]]), torch.tensor([1]))]
    # alone: logits [3, 2.4] -> class 0; mirrored [1.2, 3] -> logits [1.2, 6], far more sure of 1
    assert accuracy(model, batch) == 0.0
    assert accuracy(model, batch, tta=True) == 1.0
