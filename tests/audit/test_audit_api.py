"""graft.audit and `graft audit` end to end on a generated folder with planted defects."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from imagegen import make_image_folder
from PIL import Image

import graft
from graft.errors import ConfigError

FAST = {"model": "test_efficientnet", "weights": "none", "workers": 0, "progress": False}


def _audit(data, **options):
    """graft.audit with the random backbone seeded: the same weights, so a store is reused."""
    import torch

    torch.manual_seed(0)
    return graft.audit(data, **{**FAST, **options})


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """train/ and test/ colour classes with: a train/test exact copy (leak), a JPEG re-encode
    (near duplicate), two red images filed as green (label errors) and a corrupt file."""
    root = tmp_path_factory.mktemp("audit") / "data"
    make_image_folder(root / "train", per_class=14, seed=1)
    make_image_folder(root / "test", per_class=4, seed=2)
    leak_src = root / "train" / "blue" / "blue_001.png"
    leak = root / "test" / "blue" / "copy_of_blue_001.png"
    shutil.copyfile(leak_src, leak)
    near_src = root / "train" / "green" / "green_003.png"
    near = root / "train" / "green" / "green_003_q90.jpg"
    Image.open(near_src).convert("RGB").save(near, quality=90)
    flipped = []
    for i in (5, 7):
        src = root / "train" / "red" / f"red_{i:03d}.png"
        dst = root / "train" / "green" / f"was_red_{i:03d}.png"
        src.rename(dst)
        flipped.append(str(dst))
    corrupt = root / "train" / "red" / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return {"root": root, "leak": (str(leak_src), str(leak)), "near": (str(near_src), str(near)),
            "flipped": flipped, "corrupt": str(corrupt)}  # fmt: skip


@pytest.fixture(scope="module")
def audited(planted: dict, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("out") / "audit"
    return _audit(planted["root"], out=str(out), near_cosine=0.99)


def test_leak_found_and_listed_first(audited, planted: dict) -> None:
    groups = [{audited.files[i] for i in g.members} for g in audited.exact_groups]
    assert set(planted["leak"]) in groups
    leak = audited.leaks[0]
    assert {audited.files[i] for i in leak.members} == set(planted["leak"])
    assert sorted(leak.splits) == ["test", "train"]
    data = json.loads((Path(audited.out) / "audit.json").read_text())
    assert {m["path"] for m in data["leaks"][0]["members"]} == set(planted["leak"])
    rows = list(csv.DictReader(io.StringIO((Path(audited.out) / "issues.csv").read_text())))
    assert rows[0]["issues"].startswith("leak") and rows[0]["path"] in planted["leak"]


def test_near_duplicate_grouped(audited, planted: dict) -> None:
    groups = [{audited.files[i] for i in g.members} for g in audited.near_groups]
    assert any(set(planted["near"]) <= g for g in groups)
    group = next(
        g for g in audited.near_groups if audited.files.index(planted["near"][1]) in g.members
    )
    assert group.cosine_min >= 0.99 and group.hash_bits_max <= 12


def test_flipped_labels_are_the_top_suspects(audited, planted: dict) -> None:
    top = [audited.files[x.index] for x in audited.label_issues[:4]]
    assert set(planted["flipped"]) <= set(top)
    issue = next(x for x in audited.label_issues if audited.files[x.index] == planted["flipped"][0])
    assert audited.classes[issue.given] == "green" and audited.classes[issue.suggested] == "red"


def test_corrupt_file_listed_and_audit_goes_on(audited, planted: dict) -> None:
    assert planted["corrupt"] in [p for p, _ in audited.corrupt]
    assert planted["corrupt"] not in audited.files
    assert len(audited.files) == 3 * 14 + 3 * 4 + 1 + 1  # + the leak copy + the JPEG


def test_clean_split_is_read_by_scan_dataset(audited, planted: dict) -> None:
    from graft.data import scan_dataset

    splits = scan_dataset(Path(audited.out) / "clean.csv", verify=False)
    kept = {p for p, _ in splits.train}
    assert planted["leak"][0] not in kept  # the train copy of a train/test leak goes
    assert not kept & set(planted["flipped"])  # suspected label errors go (drop_labels)
    assert len(kept) == audited.counts()["kept"]
    assert all(s != "test" for _, _, s in audited.clean_samples())


def test_outputs_written(audited) -> None:
    out = Path(audited.out)
    assert {p.name for p in out.iterdir()} >= {"audit.json", "issues.csv", "clean.csv",
                                               "audit.html", "config.yaml", "features"}  # fmt: skip
    html = (out / "audit.html").read_text()
    assert 'id="leaks"' in html and 'class="label"' in html and "data:image/png;base64," in html
    assert "broken.png" in html
    assert graft.config.read_yaml(out / "config.yaml")["near_cosine"] == 0.99
    assert (out / "features" / "audit-fingerprints.npz").is_file()


def test_second_audit_reuses_features(audited, planted: dict, tmp_path: Path) -> None:
    again = _audit(planted["root"], out=str(tmp_path / "again"),
                   features=str(Path(audited.out) / "features"), near_cosine=0.99)  # fmt: skip
    assert again.files == audited.files
    assert [x.index for x in again.label_issues] == [x.index for x in audited.label_issues]
    assert not (tmp_path / "again" / "features").exists()


def test_bad_options_raise_config_errors(planted: dict, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="near_cosine"):
        graft.audit(planted["root"], out=str(tmp_path), near_cosine=1.5, **FAST)
    with pytest.raises(ConfigError, match="Did you mean 'near_cosine'"):
        graft.audit(planted["root"], out=str(tmp_path), near_cosine_=0.9, **FAST)
    with pytest.raises(ConfigError, match="weights"):
        graft.audit(planted["root"], out=str(tmp_path), **{**FAST, "weights": "nope.pth"})


def test_cli_json_and_table(planted: dict, audited, tmp_path: Path, capsys) -> None:
    import torch

    from graft.cli import main

    store = str(Path(audited.out) / "features")  # the fixture's features: same seeded weights
    args = ["audit", str(planted["root"]), "--model", "test_efficientnet", "--weights", "none",
            "--workers", "0", "--no-progress", "--near-cosine", "0.99", "--features", store]  # fmt: skip
    torch.manual_seed(0)
    assert main([*args, "--out", str(tmp_path / "a"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "graft-audit" and doc["counts"] == audited.counts()
    torch.manual_seed(0)
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    table = capsys.readouterr().out
    assert "train/val/test leaks" in table and "clean.csv" in table
    assert main(["audit", str(planted["root"]), "--near-cosine", "2", "--out", str(tmp_path)]) == 2


def test_random_features_without_out_folder(planted: dict, tmp_path: Path) -> None:
    result = _audit(planted["root"], out=str(tmp_path / "x"), write=False)
    assert result.out is None and np.asarray(result.labels).shape == (len(result.files),)


def test_bundle_probabilities_replace_the_probe(planted: dict, audited, tmp_path: Path) -> None:
    import torch

    store = str(Path(audited.out) / "features")
    torch.manual_seed(0)
    graft.probe(planted["root"], model="test_efficientnet", weights="none", workers=0,
                features_out=store, out=str(tmp_path / "bundle"))  # fmt: skip
    result = _audit(planted["root"], out=str(tmp_path / "b"), features=store, near_cosine=0.99,
                    bundle=str(tmp_path / "bundle"))  # fmt: skip
    assert result.files == audited.files
    assert result.config["bundle"] == str(tmp_path / "bundle")
    assert all(0.0 <= x.self_confidence <= 1.0 for x in result.label_issues)
    with pytest.raises(Exception, match="bundle"):
        _audit(planted["root"], out=str(tmp_path / "c"), features=store,
               bundle=str(tmp_path / "missing"))  # fmt: skip


def test_two_processes_give_the_audit_of_one(planted: dict, tmp_path: Path, capsys) -> None:
    """`--accelerator cpu --devices 2`: two processes share the extraction; the findings are the same."""
    from safetensors.torch import save_file

    from graft.cli import main
    from graft.models import create_model

    weights = (
        tmp_path / "backbone.safetensors"
    )  # fixed weights: every process builds the same model
    save_file(create_model("test_efficientnet", num_classes=0, pretrained=False).state_dict(),
              str(weights))  # fmt: skip
    args = ["audit", str(planted["root"]), "--model", "test_efficientnet", "--weights",
            str(weights), "--workers", "0", "--no-progress", "--near-cosine", "0.99",
            "--accelerator", "cpu", "--json"]  # fmt: skip
    docs = []
    for devices in ("1", "2"):
        assert main([*args, "--devices", devices, "--out", str(tmp_path / devices)]) == 0
        docs.append(json.loads(capsys.readouterr().out))
    one, two = docs
    assert two["counts"] == one["counts"] and two["counts"]["images"] > 40
    assert two["leaks"] == one["leaks"] and two["label_issues"] == one["label_issues"]
    assert two["config"]["devices"] == "2"
    saved = (tmp_path / "2" / "config.yaml").read_text()
    assert "devices: '2'" in saved or 'devices: "2"' in saved or "devices: 2" in saved


def test_old_device_keyword_warns_and_maps_to_accelerator_devices() -> None:
    from graft.auditing.api import _old_device

    with pytest.warns(FutureWarning, match="accelerator= and devices="):
        assert _old_device({"device": "cuda:1", "seed": 2}) == {
            "seed": 2, "accelerator": "cuda", "devices": "1,"
        }  # fmt: skip
    assert _old_device({"seed": 2}) == {"seed": 2}
