"""Offline: with the network unreachable, everything that uses shipped weights works, and asking
for hub weights fails within seconds with instructions.

Two ways of being offline are tested: the environment says so (``GRAFT_OFFLINE=1`` /
``HF_HUB_OFFLINE=1``), and the environment says nothing while every socket connection and DNS
lookup fails (a machine without network).
"""

from __future__ import annotations

import errno
import socket
import time
from pathlib import Path

import pytest
import torch

from .conftest import assert_clean_exit, clean_folder, run_cli

HUB_SECONDS = 10.0  # the weights search probes the network for at most ~3 s


@pytest.fixture(params=["env-offline", "sockets-blocked"])
def offline(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Block every connection and DNS lookup; record attempts. ``env-offline`` also sets the
    variables, ``sockets-blocked`` removes them (graft must find out by itself, quickly)."""
    attempts: list[str] = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args[1:] or args)[:80])
        raise OSError(errno.ENETUNREACH, "Network is unreachable (blocked by the test)")

    def no_dns(*args, **kwargs):
        attempts.append(f"dns {args[:1]}")
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (blocked by the test)")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    if request.param == "env-offline":
        monkeypatch.setenv("GRAFT_OFFLINE", "1")
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.delenv("GRAFT_OFFLINE", raising=False)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return attempts


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clean_folder(tmp_path_factory.mktemp("offline") / "data", per_class=4, size=16)


def test_shipped_weights_load_without_network(offline: list[str]) -> None:
    from graft.models import create_model

    model = create_model("efficientnet_lite0", num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 3)
    assert tuple(model.pretrained_cfg["mean"]) == (0.5, 0.5, 0.5)  # the shipped Lite0 weights' own
    assert offline == []  # shipped weights never touch the network


def test_commands_with_shipped_weights_work_without_network(
    offline: list[str], data: Path, tmp_path: Path
) -> None:
    r = run_cli("extract", data, "--model", "efficientnet_lite0", "--image-size", "32",
                "--workers", "0", "--out", tmp_path / "feats")  # fmt: skip
    assert_clean_exit(r, allowed=(0,))
    assert "12 images" in r.out and "(1280,)" in r.out, r.out
    r = run_cli("stats", data, "--model", "efficientnet_lite0", "--no-progress")
    assert_clean_exit(r, allowed=(0,))
    assert offline == []


@pytest.mark.parametrize("name", ["resnet18", "tv:resnet18"])
def test_hub_weights_fail_fast_with_instructions(offline: list[str], name: str) -> None:
    from graft.errors import WeightsNotFoundError
    from graft.models import create_model

    started = time.monotonic()
    with pytest.raises(WeightsNotFoundError) as info:
        create_model(name, num_classes=3)
    assert time.monotonic() - started < HUB_SECONDS
    message = str(info.value)
    assert f"no pretrained weights found for model '{name}'" in message
    for hint in ("--weights PATH", "graft models --available", "pretrained=False"):
        assert hint in message, message


def test_cli_asking_for_hub_weights_fails_fast(
    offline: list[str], data: Path, tmp_path: Path
) -> None:
    started = time.monotonic()
    r = run_cli(
        "extract", data, "--model", "resnet18", "--image-size", "32", "--out", tmp_path / "f"
    )
    assert time.monotonic() - started < HUB_SECONDS
    assert_clean_exit(r, allowed=(2,))
    assert "no pretrained weights found for model 'resnet18'" in r.err and "Fix:" in r.err, r.err
    assert not (tmp_path / "f").exists()  # stopped before any work
