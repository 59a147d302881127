"""graft.distributed: rank queries, sharding, exact reductions over 2 gloo processes."""

from __future__ import annotations

import pytest

from graft import distributed
from graft.errors import ConfigError

from .workers import read, reduce_values


def test_single_process_defaults(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS", "LOCAL_RANK", "NODE_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert (distributed.rank(), distributed.world_size(), distributed.is_rank_zero()) == (
        0,
        1,
        True,
    )
    assert distributed.all_reduce_sum([1, 2]) == [1, 2]
    assert distributed.all_gather_object("x") == ["x"]
    assert distributed.init_from_env() is False


def test_rank_from_launcher_environment(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setenv("SLURM_PROCID", "3")
    monkeypatch.setenv("SLURM_NTASKS", "8")
    assert (distributed.rank(), distributed.world_size(), distributed.is_rank_zero()) == (
        3,
        8,
        False,
    )
    monkeypatch.setenv("RANK", "oops")
    with pytest.raises(ConfigError, match="RANK='oops'"):
        distributed.rank()


def test_init_from_env_names_missing_rendezvous(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(ConfigError, match="MASTER_ADDR, MASTER_PORT.*torchrun"):
        distributed.init_from_env()


@pytest.mark.parametrize("n,world", [(0, 1), (5, 2), (7, 3), (2, 4), (100, 7)])
def test_shards_cover_items_in_order(n, world):
    items = list(range(n))
    parts = [distributed.shard(items, r, world) for r in range(world)]
    assert sum(parts, []) == items
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_shard_rejects_bad_rank():
    with pytest.raises(ConfigError, match="rank=2, world=2"):
        distributed.shard([1, 2], 2, 2)
    with pytest.raises(ConfigError, match="at least 1"):
        distributed.spawn(print, 0)


@pytest.mark.slow  # spawns 2 processes: 2 min on the loaded 2-core machine
def test_two_gloo_processes_reduce_exactly(tmp_path):
    distributed.spawn(reduce_values, 2, str(tmp_path))
    results = [read(tmp_path / f"rank{r}.json") for r in range(2)]
    for r, res in enumerate(results):
        assert res["world"] == 2
        assert res["zero"] is (r == 0)
        assert res["ints"] == [3, 3 * 2**40, -6]
        assert res["floats"] == pytest.approx([0.1 + 0.2, 2e-12], rel=1e-15)
        assert int(res["huge"]) == 2 * 2**70 + 1  # beyond int64: still exact
        assert res["gathered"] == [{"rank": 0}, {"rank": 1}]
    assert results[0]["shard"] + results[1]["shard"] == list(range(7))


def test_sync_batchnorm_plugin_keeps_timm_activations():
    import timm
    import torch
    from timm.layers.norm_act import BatchNormAct2d, SyncBatchNormAct

    torch.manual_seed(0)
    model = timm.create_model("test_efficientnet", num_classes=3).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
    keys = list(model.state_dict())
    n_bn = sum(isinstance(m, BatchNormAct2d) for m in model.modules())
    assert n_bn > 0
    plugin = distributed.sync_batchnorm_plugin()
    synced = plugin.apply(model)
    assert sum(isinstance(m, SyncBatchNormAct) for m in synced.modules()) == n_bn
    with torch.no_grad():  # eval mode: running statistics, no process group needed
        assert torch.equal(synced(x), before)
    reverted = plugin.revert(synced)
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in reverted.modules())
    assert sum(type(m) is BatchNormAct2d for m in reverted.modules()) == n_bn
    assert list(reverted.state_dict()) == keys
    with torch.no_grad():
        assert torch.equal(reverted(x), before)
    # what Lightning's default converter does instead: the activation disappears
    plain = torch.nn.SyncBatchNorm.convert_sync_batchnorm(
        timm.create_model("test_efficientnet", num_classes=3)
    )
    assert not any(isinstance(m, SyncBatchNormAct) for m in plain.modules())


def test_rank_of_processes_started_by_lightning(monkeypatch):
    for name in ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("NODE_RANK", "0")
    assert (distributed.rank(), distributed.is_rank_zero()) == (1, False)
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("NODE_RANK", "1")
    assert distributed.is_rank_zero() is False
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert distributed.rank() == 6
