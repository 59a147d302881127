"""graft.distributed: rank queries, sharding, exact reductions over 2 gloo processes."""

from __future__ import annotations

import pytest

from graft import distributed
from graft.errors import ConfigError

from .workers import read, reduce_values


def test_single_process_defaults(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS", "LOCAL_RANK"):
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
