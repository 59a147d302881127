"""Cost measurement: exact parameter/MAC counts, sane and repeatable latency, peak memory."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from graft.errors import ConfigError
from graft.select.cost import count_macs, count_params, measure_cost, peak_memory_mb, time_forward


def _small_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 16 * 16, 5),
    )


def test_params_and_macs_match_hand_count() -> None:
    net = _small_net()
    assert count_params(net) == 8 * 3 * 9 + 8 * 16 * 16 * 5 + 5
    # conv: one MAC per output element per kernel tap; linear: in * out
    assert count_macs(net, (3, 16, 16)) == 8 * 16 * 16 * 3 * 9 + 8 * 16 * 16 * 5


def test_latency_sane_and_repeatable() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1))
    # medians of back-to-back runs agree within a factor of 2; on a busy shared CPU a burst of
    # load can hit one run, so up to three pairs are measured and one must agree
    for _ in range(3):
        first = time_forward(net, (3, 64, 64), batch=1, warmup=3, repeats=15)
        second = time_forward(net, (3, 64, 64), batch=1, warmup=3, repeats=15)
        if 0.5 < first.median_ms / second.median_ms < 2.0:
            break
    assert 0.5 < first.median_ms / second.median_ms < 2.0
    assert 0.01 < first.median_ms < 2000
    assert first.p25_ms <= first.median_ms <= first.p75_ms
    # 16 times the work takes clearly longer than 1x (the clock measures the computation; the
    # margin is loose because on a shared CPU a batch-1 call is dominated by scheduling delays)
    big = time_forward(net, (3, 64, 64), batch=16, warmup=1, repeats=5)
    assert big.median_ms > 1.5 * min(first.median_ms, second.median_ms)


def test_measure_cost_fields_and_memory() -> None:
    net = _small_net()
    cost = measure_cost(net, (3, 16, 16), batch=4, warmup=1, repeats=3)
    assert cost.params == count_params(net) and cost.macs == count_macs(net, (3, 16, 16))
    assert cost.latency_ms > 0 and cost.throughput > 0 and cost.batch == 4
    assert cost.peak_mem_mb is not None and cost.peak_mem_mb >= count_params(net) * 4 / 2**20
    assert cost.to_dict()["input_size"] == [3, 16, 16]


def test_peak_memory_grows_with_batch() -> None:
    net = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1))
    small, method = peak_memory_mb(net, (3, 64, 64), batch=1)
    large, _ = peak_memory_mb(net, (3, 64, 64), batch=64)  # ~64 MiB of activations
    assert "VmHWM" in method
    assert large > small + 30


def test_bad_device_and_counts_raise() -> None:
    with pytest.raises(ConfigError, match="Valid: cpu, cuda"):
        measure_cost(_small_net(), (3, 16, 16), device="gpu")
    with pytest.raises(ConfigError, match="repeats"):
        time_forward(_small_net(), (3, 16, 16), repeats=0)


@pytest.mark.slow
def test_peak_memory_in_a_fresh_process_from_graft_spec() -> None:
    from graft.models import create_model

    model = create_model("test_resnet", num_classes=0, pretrained=False)
    small, method = peak_memory_mb(model, (3, 64, 64), batch=1)
    large, _ = peak_memory_mb(model, (3, 64, 64), batch=128)
    assert method == "fresh process VmHWM - VmRSS"
    assert count_params(model) * 4 / 2**20 < small < large
