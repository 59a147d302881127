"""Rules as data: profile facts, matching, ordering, exclusion by constraints, validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from graft.data import scan_dataset
from graft.errors import ConfigError
from graft.select.profile import dataset_profile, detail_measure, stratified_sample
from graft.select.rules import load_rules, parse_rules

CANDIDATES = [
    "vit_small_patch16_224",
    "resnet50",
    "mobilenetv3_small_100",
    "densenet121",
    "mystery_net",
]


def test_families_come_from_patterns() -> None:
    rules = load_rules()
    assert rules.family_of("tv:mobilenet_v2") == "mobilenet"
    assert rules.family_of("efficientnet_lite0") == "efficientnet"
    assert rules.family_of("test_resnet") == "resnet"
    assert rules.family_of("mystery_net") is None


def test_latency_budget_prefers_light_families_and_says_why() -> None:
    advice = load_rules().advise({"latency_budget_ms": 20.0}, CANDIDATES)
    order = [a.name for a in advice]
    assert order[0] == "mobilenetv3_small_100"
    assert order[-2:] == ["vit_small_patch16_224", "densenet121"]  # avoided, given order kept
    notes = {a.name: a.notes for a in advice}
    assert "20 ms" in notes["mobilenetv3_small_100"][0]
    assert "avoids vit" in notes["vit_small_patch16_224"][0]
    assert notes["mystery_net"] == []
    # no budget: nothing moves
    assert [a.name for a in load_rules().advise({}, CANDIDATES)] == CANDIDATES


def test_detail_rich_grayscale_prefers_resnet_densenet() -> None:
    context = {"detail": 0.12, "grayscale_share": 1.0, "images_per_class_median": 500}
    advice = load_rules().advise(context, CANDIDATES)
    assert {a.name for a in advice[:2]} == {"resnet50", "densenet121"}
    assert advice[0].priority == 2  # detail_rich and grayscale_scans both apply


def test_few_samples_prefers_transformers() -> None:
    advice = load_rules().advise({"images_per_class_median": 10}, CANDIDATES)
    assert advice[0].name == "vit_small_patch16_224"
    assert advice[0].notes[0].startswith("few_samples:")


def test_exclude_filters_by_candidate_constraints() -> None:
    facts = {"resnet50": {"params_m": 25.6}, "densenet121": {"params_m": 300.0}}
    advice = {a.name: a for a in load_rules().advise({"n_images": 500}, CANDIDATES, facts)}
    assert (
        advice["densenet121"].excluded and "500 training images" in advice["densenet121"].excluded
    )
    assert advice["resnet50"].excluded is None
    big = {a.name: a for a in load_rules().advise({"n_images": 50_000}, CANDIDATES, facts)}
    assert big["densenet121"].excluded is None


def test_rule_table_is_validated() -> None:
    base = {"families": {"cnn": ["resnet*"]}}
    with pytest.raises(ConfigError, match="unknown condition 'detial'"):
        parse_rules({**base, "rules": [{"id": "x", "when": {"detial": {"gt": 1}}}]})
    with pytest.raises(ConfigError, match="unknown families"):
        parse_rules({**base, "rules": [{"id": "x", "prefer": ["vit"]}]})
    with pytest.raises(ConfigError, match="operators"):
        parse_rules({**base, "rules": [{"id": "x", "when": {"detail": {"bigger": 1}}}]})
    with pytest.raises(ConfigError, match="unique"):
        parse_rules({**base, "rules": [{"id": "x"}, {"id": "x"}]})
    with pytest.raises(ConfigError, match="unknown keys"):
        parse_rules({**base, "rules": [{"id": "x", "prefers": ["cnn"]}]})


def test_custom_rules_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "families: {cnn: ['resnet*']}\n"
        "rules:\n  - {id: big, when: {n_images: {gte: 10}}, prefer: [cnn], reason: 'n={n_images}'}\n"
    )
    advice = load_rules(path).advise({"n_images": 12}, ["vit_small_patch16_224", "resnet18"])
    assert advice[0].name == "resnet18" and advice[0].notes == ["big: n=12 (prefers cnn)"]
    with pytest.raises(ConfigError, match="cannot read rules file"):
        load_rules(tmp_path / "missing.yaml")


def test_profile_of_generated_folder(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for cls, n in (("flat", 6), ("noise", 3)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            arr = (
                np.full((40, 60), 128, np.uint8)
                if cls == "flat"
                else rng.integers(0, 255, (40, 60), dtype=np.uint8)
            )
            Image.fromarray(arr).save(tmp_path / cls / f"{i}.png")
    prof = dataset_profile(scan_dataset(tmp_path))
    assert (prof.n_images, prof.n_classes, prof.images_per_class_min) == (9, 2, 3)
    assert prof.images_per_class_median == 4.5 and prof.imbalance == 2.0
    assert prof.resolution == 40 and prof.grayscale_share == 1.0
    assert 0.02 < prof.detail < 0.5  # 1/3 of the images are (upsampled) noise, the rest flat


def test_detail_orders_smooth_below_textured() -> None:
    x = np.linspace(0, 1, 64)
    smooth = Image.fromarray((np.outer(x, x) * 255).astype(np.uint8))
    stripes = Image.fromarray(((np.indices((64, 64)).sum(0) % 4 < 2) * 255).astype(np.uint8))
    assert detail_measure(smooth) < 0.02 < detail_measure(stripes)


def test_stratified_sample_is_balanced_and_seeded() -> None:
    samples = [(f"{c}{i}", c) for c in range(3) for i in range(10)]
    a = stratified_sample(samples, 4, seed=1)
    assert [label for _, label in a] == [0] * 4 + [1] * 4 + [2] * 4
    assert a == stratified_sample(samples, 4, seed=1) != stratified_sample(samples, 4, seed=2)
