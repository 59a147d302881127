"""Confident learning against hand-computed cases, and out-of-fold probabilities on real features."""

from __future__ import annotations

import numpy as np
import pytest

from graft.auditing.labels import (
    calibrate_joint,
    class_thresholds,
    confident_guesses,
    confident_joint,
    find_label_issues,
    neighbour_probabilities,
    out_of_fold_probabilities,
    rank_by_self_confidence,
)
from graft.errors import ConfigError, DataError, UnknownNameError

# 3 classes, 9 images; worked by hand below
P = np.array(
    [
        [0.80, 0.10, 0.10],  # 0: label 0, clean
        [0.70, 0.20, 0.10],  # 1: label 0, clean
        [0.10, 0.85, 0.05],  # 2: label 0, really a 1
        [0.10, 0.80, 0.10],  # 3: label 1, clean
        [0.05, 0.90, 0.05],  # 4: label 1, clean
        [0.60, 0.30, 0.10],  # 5: label 1, really a 0 (but below no threshold)
        [0.10, 0.10, 0.80],  # 6: label 2, clean
        [0.20, 0.10, 0.70],  # 7: label 2, clean
        [0.05, 0.05, 0.90],  # 8: label 1, really a 2
    ]
)
Y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 1])
# thresholds: t0 = (0.8+0.7+0.1)/3 = 0.5333, t1 = (0.8+0.9+0.3+0.05)/4 = 0.5125, t2 = (0.8+0.7)/2 = 0.75


def test_thresholds_by_hand() -> None:
    np.testing.assert_allclose(class_thresholds(P, Y), [1.6 / 3, 2.05 / 4, 0.75])


def test_guesses_and_joint_by_hand() -> None:
    # image 5: p0 = 0.60 >= 0.533 -> confidently class 0; image 7: p2 = 0.70 < 0.75 -> no class
    assert confident_guesses(P, Y).tolist() == [0, 0, 1, 1, 1, 0, 2, -1, 2]
    assert confident_joint(P, Y).tolist() == [[2, 1, 0], [1, 2, 1], [0, 0, 1]]


def test_no_class_reached_and_several_reached() -> None:
    p = np.array([[0.5, 0.5, 0.0], [0.45, 0.55, 0.0], [0.9, 0.1, 0.0], [0.0, 0.0, 1.0]])
    # t0 = 0.7, t1 = 0.55, t2 = 1: image 0 reaches no threshold, image 1 reaches t1 exactly
    assert confident_guesses(p, np.array([0, 1, 0, 2])).tolist() == [-1, 1, 0, 2]
    p = np.array([[0.9, 0.1, 0], [0, 0.1, 0.9], [0.1, 0.8, 0.1], [0, 0.1, 0.9], [0, 0, 1],
                  [0, 0, 1], [0.46, 0.54, 0]])  # fmt: skip
    # t0 = 0.45, t1 = 0.45, t2 = 2/3: the last image reaches t0 and t1 and goes to the likelier 1
    assert confident_guesses(p, np.array([0, 0, 1, 1, 2, 2, 2])).tolist() == [0, 2, 1, 2, 2, 2, 1]


def test_calibration_scales_rows_to_class_counts() -> None:
    got = calibrate_joint(np.array([[2, 1, 0], [1, 2, 1], [0, 0, 1]]), np.array([3, 4, 2]))
    np.testing.assert_allclose(got, [[2, 1, 0], [1, 2, 1], [0, 0, 2]])
    assert calibrate_joint(np.zeros((2, 2), int), np.array([3, 3])).sum() == 0


def test_confident_learning_flags_off_diagonal_ranked_by_self_confidence() -> None:
    # off-diagonal: image 2 (0 -> 1, self-conf 0.10), 5 (1 -> 0, 0.30), 8 (1 -> 2, 0.05)
    assert find_label_issues(P, Y, "confident-learning").tolist() == [8, 2, 5]


def test_prune_by_noise_rate_by_hand() -> None:
    # calibrated joint rounds to [[2,1,0],[1,2,1],[0,0,2]]: one image per off-diagonal cell, the one
    # with the largest margin: (0,1) image 2 (0.75), (1,0) image 5 (0.30), (1,2) image 8 (0.85)
    assert find_label_issues(P, Y, "prune-by-noise-rate").tolist() == [8, 2, 5]


def test_prune_never_flags_a_whole_class_nor_negative_margins() -> None:
    p = np.array([[0.4, 0.6], [0.45, 0.55], [0.1, 0.9], [0.2, 0.8]])
    y = np.array([0, 0, 1, 1])
    assert len(find_label_issues(p, y)) <= 1
    clean = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9]])
    assert find_label_issues(clean, y).tolist() == []


def test_rank_and_errors() -> None:
    assert rank_by_self_confidence(P, Y).tolist()[:3] == [8, 2, 5]
    with pytest.raises(UnknownNameError, match="prune-by-noise-rate"):
        find_label_issues(P, Y, "prune")
    with pytest.raises(DataError, match="shape"):
        find_label_issues(P[:3], Y)
    with pytest.raises(ConfigError, match="class indices"):
        find_label_issues(P, Y + 1)


def _noisy_blobs(rng: np.random.Generator, n_per: int = 60, k: int = 4, noise: float = 0.1):
    centres = rng.normal(0, 3, (k, 16))
    y = np.repeat(np.arange(k), n_per)
    x = centres[y] + rng.normal(0, 1.0, (len(y), 16))
    flipped = rng.choice(len(y), int(noise * len(y)), replace=False)
    noisy = y.copy()
    noisy[flipped] = (y[flipped] + rng.integers(1, k, len(flipped))) % k
    return x, noisy, set(flipped.tolist())


@pytest.mark.parametrize("method", ["confident-learning", "prune-by-noise-rate"])
def test_finds_flipped_labels_in_separable_blobs(method: str) -> None:
    x, noisy, flipped = _noisy_blobs(np.random.default_rng(1))
    probs = out_of_fold_probabilities(x, noisy, folds=5, seed=0)
    found = set(find_label_issues(probs, noisy, method).tolist())
    precision = len(found & flipped) / max(len(found), 1)
    recall = len(found & flipped) / len(flipped)
    assert precision >= 0.8 and recall >= 0.8, (precision, recall)


def test_out_of_fold_probabilities_shape_and_small_classes() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 5))
    y = np.array([0] * 9 + [1] * 3)
    p = out_of_fold_probabilities(x, y, folds=5)  # folds drop to 3, the smallest class
    assert p.shape == (12, 2) and np.allclose(p.sum(1), 1)
    with pytest.raises(DataError, match="at least 2 images"):
        out_of_fold_probabilities(x[:10], y[:10], folds=5)


def test_neighbour_probabilities_by_hand() -> None:
    nb = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])
    y = np.array([0, 0, 1, 2])
    p = neighbour_probabilities(nb, y, 3, prior=0.0)
    assert np.allclose(p[0], [1 / 3, 1 / 3, 1 / 3]) and np.allclose(p[3], [2 / 3, 1 / 3, 0])
    smoothed = neighbour_probabilities(nb, y, 3)  # no class at 0, rows sum to 1
    assert (smoothed > 0).all() and np.allclose(smoothed.sum(1), 1)
    assert smoothed[3].argmax() == 0
    with pytest.raises(DataError, match="neighbour indices"):
        neighbour_probabilities(nb[:2], y, 3)


def test_neighbour_vote_and_probe_mean_finds_flipped_labels() -> None:
    from sklearn.neighbors import NearestNeighbors

    x, noisy, flipped = _noisy_blobs(np.random.default_rng(2))
    _, idx = NearestNeighbors(n_neighbors=11).fit(x).kneighbors(x)
    vote = neighbour_probabilities(idx[:, 1:], noisy, 4)  # the first neighbour is the image
    assert (vote.argmax(1)[sorted(flipped)] != noisy[sorted(flipped)]).mean() >= 0.9
    probs = (vote + out_of_fold_probabilities(x, noisy, folds=5, seed=0)) / 2
    top = find_label_issues(probs, noisy)[: len(flipped)]
    assert len(set(top.tolist()) & flipped) / len(flipped) >= 0.8
