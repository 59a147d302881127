"""Allocator tuning: applied once, idempotent, opt-out by argument and by environment."""

from __future__ import annotations

import sys

import pytest

from graft import runtime


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Reset the module state and record mallopt calls instead of making them."""
    calls: list[tuple[int, int]] = []

    def fake_mallopt(param: int, value: int) -> int:
        calls.append((param, value))
        return 1

    monkeypatch.setattr(runtime, "_state", {"applied": False})
    monkeypatch.setattr(runtime, "_glibc_mallopt", lambda: fake_mallopt)
    monkeypatch.delenv(runtime.OPT_OUT_ENV, raising=False)
    return calls


def test_tuning_sets_three_thresholds_once(fresh: list) -> None:
    assert runtime.tune_allocator() is True
    assert runtime.tune_allocator() is True
    assert [p for p, _ in fresh] == [
        runtime.M_MMAP_THRESHOLD,
        runtime.M_TRIM_THRESHOLD,
        runtime.M_TOP_PAD,
    ]
    assert dict(fresh)[runtime.M_MMAP_THRESHOLD] == 32 * runtime.MIB
    assert runtime.allocator_tuned()


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_env_opt_out(fresh: list, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(runtime.OPT_OUT_ENV, value)
    assert runtime.tune_allocator() is False
    assert fresh == []


def test_env_zero_does_not_opt_out(fresh: list, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runtime.OPT_OUT_ENV, "0")
    assert runtime.tune_allocator() is True


def test_argument_opt_out(fresh: list) -> None:
    assert runtime.tune_allocator(enable=False) is False
    assert fresh == []


def test_no_op_without_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_state", {"applied": False})
    monkeypatch.setattr(runtime.sys, "platform", "darwin")
    assert runtime._glibc_mallopt() is None
    assert runtime.tune_allocator() is False


def test_rejected_setting_is_reported(fresh: list, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setattr(
        runtime, "_glibc_mallopt", lambda: lambda p, v: 0 if p == runtime.M_TOP_PAD else 1
    )
    with caplog.at_level("WARNING", logger="graft.runtime"):
        assert runtime.tune_allocator() is True
    assert "M_TOP_PAD" in caplog.text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_real_mallopt_accepts_the_values(monkeypatch: pytest.MonkeyPatch) -> None:
    mallopt = runtime._glibc_mallopt()
    if mallopt is None:
        pytest.skip("not glibc")
    monkeypatch.setattr(runtime, "_state", {"applied": False})
    monkeypatch.delenv(runtime.OPT_OUT_ENV, raising=False)
    assert runtime.tune_allocator() is True
    assert all(mallopt(param, value) == 1 for _, param, value in runtime.SETTINGS)
