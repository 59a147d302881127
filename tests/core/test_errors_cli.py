import pytest

import graft
from graft.cli import main
from graft.errors import UnknownNameError, raise_unknown


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownNameError, match=r"unknown model 'resnt18'. Did you mean: resnet18"):
        raise_unknown("model", "resnt18", ["resnet18", "resnet34", "vgg16"])


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert graft.__version__ in capsys.readouterr().out
    assert main([]) == 2


def test_public_api_names_resolve():
    missing = []
    for name in graft.__all__:
        try:
            getattr(graft, name)
        except (AttributeError, ImportError) as e:
            missing.append(f"{name}: {e}")
    assert not missing, missing


def test_unknown_attribute():
    with pytest.raises(AttributeError):
        graft.does_not_exist  # noqa: B018
