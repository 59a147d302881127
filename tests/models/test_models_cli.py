"""``graft models``: names by pattern, weights available offline, JSON, parameter groups."""

from __future__ import annotations

import json

import pytest

from graft.cli import main


def test_available_lists_the_four_shipped_backbones(capsys):
    assert main(["models", "--available"]) == 0
    out = capsys.readouterr().out
    for name, size in [
        ("efficientnet_lite0", "224x224"),
        ("efficientnet_lite1", "240x240"),
        ("efficientnet_lite2", "260x260"),
        ("tv:mobilenet_v2.IMAGENET1K_V1", "224x224"),
    ]:
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert size in line and "package" in line and ".pth" in line


def test_available_json(capsys):
    assert main(["models", "efficientnet_lite*", "--available", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in entries] == [
        "efficientnet_lite0",
        "efficientnet_lite1",
        "efficientnet_lite2",
    ]
    assert set(entries[0]) == {"name", "source", "path", "input_size"}


def test_pattern_lists_timm_torchvision_and_aliases(capsys):
    assert main(["models", "*lite0"]) == 0
    names = capsys.readouterr().out.splitlines()
    assert {"efficientnet_lite0", "tf_efficientnet_lite0"} <= set(names)
    assert main(["models", "tv:vgg1*", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        "tv:vgg11",
        "tv:vgg11_bn",
        "tv:vgg13",
        "tv:vgg13_bn",
        "tv:vgg16",
        "tv:vgg16_bn",
        "tv:vgg19",
        "tv:vgg19_bn",
    ]


def test_no_match_returns_1(capsys):
    assert main(["models", "no_such_model*"]) == 1
    assert "(0 models matching" in capsys.readouterr().err


def test_groups_table(capsys):
    assert main(["models", "test_resnet", "--groups"]) == 0
    out = capsys.readouterr().out
    assert (
        out.splitlines()[0].split() == ["#", "group", "params", "trainable", "BN"]
        and " head " in out
    )


def test_unknown_model_is_one_clean_error(capsys):
    assert main(["models", "resnt18", "--groups"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("graft models: error: unknown model 'resnt18'. Did you mean: resnet18")
        and "Traceback" not in err
    )


@pytest.mark.parametrize("argv", [["models", "--groups"]])
def test_groups_needs_a_name(argv, capsys):
    assert main(argv) == 2
    assert "--groups needs a model name" in capsys.readouterr().err
