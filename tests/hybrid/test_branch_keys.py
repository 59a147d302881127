"""Per-branch option keys: branch name, position or kind (cnn/vit), unknown keys with suggestions."""

from __future__ import annotations

from typing import Any

import pytest
from hybrid_helpers import CNN_SIZE, NAME, VIT_SIZE

import graft
from graft.errors import ConfigError, UnknownNameError
from graft.hybrid import create_hybrid
from graft.hybrid import factory as hybrid_factory
from graft.hybrid.branch_keys import by_name, guess_kind, resolve_branch_keys

NAMES = ["test_efficientnet", "test_vit"]


@pytest.mark.parametrize(
    "mapping",
    [
        {"cnn": True, "vit": False},
        {"test_efficientnet": True, "test_vit": False},
        {0: True, 1: False},
        {"0": True, "1": False},
        {"vit": False},  # a branch left out is unset (None)
    ],
)
def test_every_key_style_resolves_to_the_same_branches(mapping: dict) -> None:
    values = resolve_branch_keys(NAMES, mapping, "pretrained")
    assert values[1] is False
    assert values[0] is (True if len(mapping) == 2 else None)


def test_unknown_branch_key_names_what_is_valid_and_suggests() -> None:
    with pytest.raises(UnknownNameError) as err:
        resolve_branch_keys(NAMES, {"vti": False}, "pretrained")
    msg = str(err.value)
    assert "unknown branch key in pretrained 'vti'" in msg
    assert "Did you mean: vit?" in msg
    assert "test_efficientnet" in msg and "test_vit" in msg and "0 .. 1" in msg
    with pytest.raises(UnknownNameError, match="'2'"):
        resolve_branch_keys(NAMES, {2: False}, "pretrained")


def test_two_keys_for_one_branch_and_repeated_names_are_errors() -> None:
    with pytest.raises(ConfigError, match="twice, as 'vit' and 'test_vit'"):
        resolve_branch_keys(NAMES, {"vit": False, "test_vit": True}, "pretrained")
    with pytest.raises(ConfigError, match="matches 2 branches.*by position"):
        resolve_branch_keys(["test_resnet", "test_resnet"], {"test_resnet": False}, "pretrained")
    repeated = ["test_resnet", "test_resnet", "test_vit"]
    with pytest.raises(ConfigError, match="twice, as 'cnn2' and '1'"):
        resolve_branch_keys(repeated, {"cnn2": 1, "1": 2}, "x")
    assert resolve_branch_keys(repeated, {"cnn2": 7}, "x") == [None, 7, None]
    assert by_name(repeated, [None, 7, None]) == {"1": 7}


def test_guess_kind_by_family() -> None:
    assert [guess_kind(n) for n in ("test_vit", "deit_tiny_patch16_224", "swin_tiny_patch4_window7_224")] == ["vit"] * 3  # fmt: skip
    assert [guess_kind(n) for n in ("test_efficientnet", "tv:resnet18", "convnext_tiny")] == ["cnn"] * 3  # fmt: skip


def _record_branches(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool, dict]]:
    calls: list[tuple[str, bool, dict]] = []
    real = hybrid_factory.create_branch

    def spy(name: str, pretrained: bool, in_chans: int, kwargs: Any) -> Any:
        calls.append((name, pretrained, dict(kwargs)))
        return real(name, False, in_chans, kwargs)  # tiny test models have no offline weights

    monkeypatch.setattr(hybrid_factory, "create_branch", spy)
    return calls


@pytest.mark.parametrize(
    "pretrained",
    [{"cnn": True, "vit": False}, {"test_vit": False}, {1: False}, {"1": False, "cnn": True}],
)
def test_create_hybrid_applies_per_branch_pretrained_in_any_key_style(
    monkeypatch: pytest.MonkeyPatch, pretrained: dict
) -> None:
    calls = _record_branches(monkeypatch)
    model = create_hybrid(
        NAME, num_classes=2, pretrained=pretrained, branch_kwargs={"vit": {"img_size": VIT_SIZE}},
        branch_inputs={0: {"input_size": CNN_SIZE}},
    )  # fmt: skip
    assert calls == [("test_efficientnet", True, {}), ("test_vit", False, {"img_size": VIT_SIZE})]
    assert model.pretrained_cfg["branches"]["cnn"]["input_size"] == [CNN_SIZE, CNN_SIZE]
    # the spec is keyed by branch name, so bundles rebuild the same hybrid
    assert model.graft_spec["branch_kwargs"] == {"test_vit": {"img_size": VIT_SIZE}}
    assert set(model.graft_spec["branch_inputs"]) == set(NAMES)


def test_create_model_takes_cnn_vit_keys_without_fit_translation() -> None:
    model = graft.create_model(
        NAME, num_classes=3, pretrained={"cnn": False, "vit": False}, fusion="gated",
        branch_kwargs={"vit": {"img_size": VIT_SIZE}},
    )  # fmt: skip
    assert model.branch_names == {"cnn": "test_efficientnet", "vit": "test_vit"}
    rebuilt = graft.create_model(**model.graft_spec, pretrained=False)
    assert rebuilt.pretrained_cfg["branches"] == model.pretrained_cfg["branches"]


def test_unknown_branch_key_fails_before_any_branch_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _record_branches(monkeypatch)
    with pytest.raises(UnknownNameError, match="Did you mean: vit"):
        create_hybrid(NAME, num_classes=2, pretrained={"cnn": False, "vitt": False})
    with pytest.raises(UnknownNameError, match="branch key in branch_kwargs 'test_vt'"):
        create_hybrid(NAME, num_classes=2, pretrained=False, branch_kwargs={"test_vt": {}})
    with pytest.raises(ConfigError, match="pretrained for branch test_vit must be true or false"):
        create_hybrid(NAME, num_classes=2, pretrained={"vit": "no"})
    assert calls == []


def test_a_wrong_kind_guess_is_an_error_not_a_mix_up(monkeypatch: pytest.MonkeyPatch) -> None:
    # 'test_vit' is taken for a CNN by a patched guess: the built layout (tokens) contradicts it
    from graft.hybrid import branch_keys

    monkeypatch.setattr(branch_keys, "guess_kind", lambda name: "cnn")
    with pytest.raises(ConfigError, match=r"test_vit \(taken for a cnn, is a vit\)"):
        create_hybrid(
            NAME, num_classes=2, pretrained={"cnn": False, "cnn2": False},
            branch_kwargs={"test_vit": {"img_size": VIT_SIZE}},
        )  # fmt: skip
