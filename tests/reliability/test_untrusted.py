"""Untrusted files: loading a bundle, a weights file, a checkpoint, a feature store or a config
never executes code. A planted malicious pickle (its ``__reduce__`` would create a marker file) is
refused with a clear message by every loader that accepts user files; YAML python tags are refused.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from .conftest import TINY_FIT, assert_clean_exit, clean_folder, run_cli


class Payload:
    """Unpickling this runs ``exec``: it creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def evil_pickle(path: Path, marker: Path) -> Path:
    """A torch-style checkpoint whose state dict holds the payload."""
    torch.save({"state_dict": {"w": Payload(marker)}, "epoch": 0}, path)
    return path


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "PWNED"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A clean folder, a finished 1-epoch run (bundle, checkpoints) and a probe bundle."""
    from graft.features import probe
    from graft.train import fit

    root = tmp_path_factory.mktemp("trusted")
    data = clean_folder(root / "data", per_class=6)
    run = fit(
        data, model="test_efficientnet", weights="none", image_size=32, batch_size=8, workers=0,
        progress=False, recipe="head", epochs=1, out=str(root / "run"), val_split=0.25,
    )  # fmt: skip
    torch.manual_seed(0)
    probe(data, model="test_efficientnet", weights="none", image_size=32, cv=2, workers=0,
          out=str(root / "probe"), features_out=str(root / "feats"))  # fmt: skip
    return {"data": data, "run": run.run_dir, "bundle": run.bundle, "probe": root / "probe",
            "feats": root / "feats"}  # fmt: skip


def test_the_payload_really_runs_when_unpickled(tmp_path: Path, marker: Path) -> None:
    """Canary: the planted file is dangerous, so the refusals below mean something."""
    torch.load(evil_pickle(tmp_path / "x.pth", marker), weights_only=False)
    assert marker.exists()


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def _plant(bundle: Path, name: str, marker: Path, fix_checksum: bool) -> None:
    evil_pickle(bundle / name, marker)
    if fix_checksum:  # an attacker who also edits model.json
        meta = json.loads((bundle / "model.json").read_text())
        digest = hashlib.sha256((bundle / name).read_bytes()).hexdigest()
        meta["files"][name] = digest
        if name == "model.safetensors":
            meta["weights_sha256"] = digest
        (bundle / "model.json").write_text(json.dumps(meta))


def test_bundle_given_as_pickle_file_is_refused(trained, tmp_path: Path, marker: Path) -> None:
    evil = evil_pickle(tmp_path / "model.pth", marker)
    r = run_cli("predict", evil, trained["data"])
    assert_clean_exit(r, allowed=(2,))
    assert "pickle" in r.err and "arbitrary code" in r.err, r.err
    assert not marker.exists()


@pytest.mark.parametrize(
    "kind, fix_checksum",
    [("bundle", False), ("bundle", True), ("probe", False)],
    ids=["bundle-checksum-kept", "bundle-checksum-forged", "probe-checksum-kept"],
)
def test_pickle_planted_in_a_bundle_is_refused(
    trained, tmp_path: Path, marker: Path, kind: str, fix_checksum: bool
) -> None:
    bundle = _copy(trained[kind], tmp_path / "b")
    name = "model.safetensors" if kind == "bundle" else "probe.safetensors"
    _plant(bundle, name, marker, fix_checksum)
    for command in (["predict", bundle, trained["data"]], ["evaluate", bundle, trained["data"]]):
        r = run_cli(*command)
        assert_clean_exit(r, allowed=(2,))
        expected = (
            "not a readable safetensors file" if fix_checksum else "does not match the sha256"
        )
        assert expected in r.err, r.err
    assert not marker.exists()


def test_weights_file_with_pickled_code_is_refused(tmp_path: Path, marker: Path) -> None:
    from graft.errors import UnsafeFileError
    from graft.models import create_model

    evil = evil_pickle(tmp_path / "weights.pth", marker)
    with pytest.raises(UnsafeFileError, match="cannot be loaded as plain tensors"):
        create_model("test_efficientnet", num_classes=3, weights=evil)
    assert not marker.exists()


def test_fit_weights_flag_refuses_pickled_code(trained, tmp_path: Path, marker: Path) -> None:
    evil = evil_pickle(tmp_path / "weights.pth", marker)
    opts = [o for o in TINY_FIT if o not in ("--weights", "none")]
    r = run_cli(
        "fit", trained["data"], *opts, "--epochs", "1", "--weights", evil, "--out", tmp_path / "run"
    )
    assert_clean_exit(r, allowed=(2,))
    assert "cannot be loaded as plain tensors" in r.err, r.err
    assert not marker.exists()


def _resume_with_evil_checkpoint(trained, tmp_path: Path, marker: Path):
    run = _copy(trained["run"], tmp_path / "run")
    shutil.rmtree(run / "bundle")
    evil_pickle(run / "checkpoints" / "last.ckpt", marker)
    return run_cli("fit", "--resume", "--out", run)


def _probe_evil_shard(trained, tmp_path: Path, marker: Path):
    feats = _copy(trained["feats"], tmp_path / "feats")
    evil_pickle(sorted(feats.glob("shard-*.safetensors"))[0], marker)
    return run_cli("probe", feats, "--cv", "2")


def _probe_pickled_manifest(trained, tmp_path: Path, marker: Path):
    feats = _copy(trained["feats"], tmp_path / "feats")
    (feats / "manifest.json").write_bytes(pickle.dumps(Payload(marker)))
    return run_cli("probe", feats, "--cv", "2")


def _predict_forged_probe(trained, tmp_path: Path, marker: Path):
    bundle = _copy(trained["probe"], tmp_path / "b")
    _plant(bundle, "probe.safetensors", marker, fix_checksum=True)
    return run_cli("predict", bundle, trained["data"])


PLANTED = {
    "resume-checkpoint": (_resume_with_evil_checkpoint, None, "last.ckpt"),
    "feature-shard": (_probe_evil_shard, None, "shard-00000.safetensors"),
    "feature-manifest": (_probe_pickled_manifest, None, "manifest.json"),
    "probe-forged-checksum": (_predict_forged_probe, None, "probe.safetensors"),
}


@pytest.mark.parametrize("where", sorted(PLANTED))
def test_planted_pickle_never_runs(trained, tmp_path: Path, marker: Path, where: str) -> None:
    """Whatever the message, the payload never runs and the command fails."""
    r = PLANTED[where][0](trained, tmp_path, marker)
    assert not marker.exists()
    assert r.code != 0, str(r)


@pytest.mark.parametrize(
    "where",
    [
        pytest.param(w, marks=pytest.mark.xfail(strict=True, reason=PLANTED[w][1]))
        if PLANTED[w][1]
        else w
        for w in sorted(PLANTED)
    ],
)
def test_planted_pickle_gives_a_clear_message(
    trained, tmp_path: Path, marker: Path, where: str
) -> None:
    r = PLANTED[where][0](trained, tmp_path, marker)
    assert_clean_exit(r, allowed=(2,))
    assert PLANTED[where][2] in r.err, r.err


YAML_ATTACK = "epochs: !!python/object/apply:builtins.exec [\"open({m!r}, 'w').close()\"]\n"


def test_yaml_with_python_tags_is_refused(trained, tmp_path: Path, marker: Path) -> None:
    from graft.errors import ConfigError
    from graft.train.config import FitConfig

    config = tmp_path / "evil.yaml"
    config.write_text(YAML_ATTACK.format(m=str(marker)))
    with pytest.raises(ConfigError):
        FitConfig.load(config)
    r = run_cli("distill", trained["data"], "--teacher", trained["bundle"], "--student",
                "test_efficientnet", "--config", config, "--out", tmp_path / "kd")  # fmt: skip
    assert_clean_exit(r, allowed=(2,))
    assert "evil.yaml" in r.err, r.err
    r = run_cli("fit", trained["data"], "--config", config, "--out", tmp_path / "run")
    assert_clean_exit(r, allowed=(2,))
    assert not marker.exists()


def test_select_rules_yaml_with_python_tags_is_refused(
    trained, tmp_path: Path, marker: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        f"rules:\n  - !!python/object/apply:builtins.exec [\"open({str(marker)!r}, 'w').close()\"]\n"
    )
    r = run_cli("select", trained["data"], "--model", "test_efficientnet", "--rules", rules,
                "--out", tmp_path / "sel")  # fmt: skip
    assert_clean_exit(r, allowed=(2,))
    assert "rules.yaml" in r.err, r.err
    assert not marker.exists()
