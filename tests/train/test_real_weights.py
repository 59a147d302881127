"""Real shipped weights on the real animals sample: accuracy far above chance after a short fit."""

from __future__ import annotations

import pytest

from graft.train import fit


@pytest.mark.slow
@pytest.mark.weights
def test_auto_recipe_on_animals_subset_beats_chance_by_far(tmp_path):
    from graft.data import sample_dataset

    data = sample_dataset("animals", tmp_path / "animals", per_class=20)  # 160 train / 40 test
    result = fit(data, model="efficientnet_lite0", image_size=48, recipe="auto", head_epochs=4, epochs=7,
                 batch_size=16, val_split=0.0, out=str(tmp_path / "run"), progress=False)  # fmt: skip
    assert result.metrics["test_acc"] >= 0.4  # 10 classes: chance is 0.1
    assert [h["phase"] for h in result.history] == ["head"] * 4 + ["full"] * 3
