"""End to end: distill a tiny teacher bundle into a tiny student on generated images."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

from graft.bundle import load_bundle
from graft.distill import api, distill
from graft.distill.load import load_teacher
from graft.errors import ConfigError, UnknownNameError


@pytest.mark.slow  # ~60 s on the 2-core machine: two tiny epochs plus the teacher/student report
def test_distill_end_to_end_writes_student_bundle_without_adapters(
    tiny_folder_session, teacher_bundle, tmp_path, monkeypatch
) -> None:
    used = []

    def spy(source):  # keep the teacher object the run trains against
        loaded = load_teacher(source)
        used.append((loaded.model, {k: v.clone() for k, v in loaded.model.state_dict().items()}))
        return loaded

    monkeypatch.setattr(api, "load_teacher", spy)
    result = distill(
        str(tiny_folder_session),
        teacher=str(teacher_bundle),
        student="test_resnet",
        weights="none",
        image_size=64,
        recipe="full",
        epochs=2,
        batch_size=8,
        augment="none",
        feature_pairs="auto,layer2:blocks.1",
        workers=0,
        progress=False,
        out=str(tmp_path / "run"),
    )
    run = result.run_dir
    for name in ("config.yaml", "metrics.csv", "metrics.json", "distill.json", "bundle/model.json"):
        assert (run / name).is_file(), name
    bundle = load_bundle(result.bundle)
    assert bundle.meta["spec"]["name"] == "test_resnet" and bundle.classes == [
        "blue",
        "green",
        "red",
    ]
    with safe_open(str(result.bundle / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert keys and not any("adapter" in k for k in keys)
    assert bundle.model(torch.zeros(1, 3, 64, 64)).shape == (1, 3)
    assert result.metrics["teacher_cache_hits"] > 0  # epoch 2 reused the teacher's outputs
    assert result.teacher.params > 0 and result.student.params > 0 and result.student.latency_ms > 0
    assert "teacher test_efficientnet" in result.report and "student test_resnet" in result.report
    assert 0.0 <= result.student.accuracy <= 1.0 and result.teacher.accuracy is not None
    # the teacher the run used: parameters and BatchNorm statistics unchanged after training
    ((teacher, before),) = used
    after = teacher.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_distill_errors_are_clear(tiny_folder_session, teacher_bundle, tmp_path) -> None:
    common = {
        "student": "test_resnet",
        "weights": "none",
        "image_size": 32,
        "epochs": 1,
        "workers": 0,
        "progress": False,
    }
    with pytest.raises(ConfigError, match="teacher"):
        distill(str(tiny_folder_session), out=str(tmp_path / "a"), **common)
    with pytest.raises(UnknownNameError, match=r"student layer 'layer9'.*Did you mean"):
        distill(str(tiny_folder_session), teacher=str(teacher_bundle), feature_pairs="layer9:features",
                out=str(tmp_path / "b"), **common)  # fmt: skip
    with pytest.raises(ConfigError, match="nothing to distill"):
        distill(
            str(tiny_folder_session),
            teacher=str(teacher_bundle),
            alpha=0,
            beta=0,
            out=str(tmp_path / "c"),
            **common,
        )
    with pytest.raises(ConfigError, match="unknown key 'temprature'"):
        distill(
            str(tiny_folder_session),
            teacher=str(teacher_bundle),
            temprature=2,
            out=str(tmp_path / "d"),
            **common,
        )
