from dataclasses import dataclass, field
from typing import Literal

import pytest

from graft import config
from graft.errors import ConfigError


@dataclass
class Inner:
    hidden: int = 8


@dataclass
class Opts:
    lr: float = 1e-3
    epochs: int | None = None
    recipe: Literal["head", "full", "auto"] = "auto"
    names: list[str] = field(default_factory=list)
    inner: Inner = field(default_factory=Inner)
    flag: bool = False


def test_from_dict_coerces_types():
    opts = config.from_dict(
        Opts, {"lr": "0.01", "epochs": "3", "names": "a", "flag": "yes", "inner": {"hidden": 4}}
    )
    assert opts == Opts(lr=0.01, epochs=3, names=["a"], flag=True, inner=Inner(4))


def test_unknown_key_rejected_with_suggestion():
    with pytest.raises(ConfigError, match=r"unknown key 'epoch'.*Did you mean 'epochs'"):
        config.from_dict(Opts, {"epoch": 3})


def test_nested_unknown_key_names_its_path():
    with pytest.raises(ConfigError, match=r"config.inner: unknown key 'hiden'"):
        config.from_dict(Opts, {"inner": {"hiden": 3}})


def test_literal_rejects_invalid_value():
    with pytest.raises(ConfigError, match=r"'ful' is not one of head, full, auto.*'full'"):
        config.from_dict(Opts, {"recipe": "ful"})


def test_wrong_scalar_type():
    with pytest.raises(ConfigError, match=r"expected int, got 'three'"):
        config.from_dict(Opts, {"epochs": "three"})
    with pytest.raises(ConfigError, match="expected int"):
        config.from_dict(Opts, {"epochs": 2.5})


def test_yaml_round_trip_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    config.save(Opts(lr=0.5, names=["x"]), path)
    loaded = config.load(Opts, path, overrides={"epochs": 7, "lr": None})
    assert loaded == Opts(lr=0.5, epochs=7, names=["x"])


def test_yaml_must_be_a_mapping(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        config.load(Opts, path)


def test_yaml_is_read_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("lr: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load(Opts, path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(Opts, tmp_path / "nope.yaml")
