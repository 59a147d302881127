"""Duplicates, pixel alignment, perceptual hashes, outliers and the clean-split rules, on small cases."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from graft.auditing import duplicates as dup
from graft.auditing.decisions import suggest_drops
from graft.auditing.hashing import decode_small, fingerprints, phash_batch
from graft.auditing.outliers import flag_outliers, knn_scores, outlier_threshold
from graft.auditing.pixels import aligned_correlation, pixel_neighbours
from graft.auditing.result import Group, LabelIssue, Outlier


def _shape_image(rng: np.random.Generator, size: int = 40) -> np.ndarray:
    """A grey image of a few random bright rectangles on black (like the animal silhouettes)."""
    a = np.zeros((size, size), np.uint8)
    for _ in range(4):
        y, x = rng.integers(2, size - 12, 2)
        h, w = rng.integers(4, 12, 2)
        a[y : y + h, x : x + w] = rng.integers(120, 255)
    return a


def test_exact_groups_and_union_find() -> None:
    assert dup.exact_groups(["a", "b", "a", "c", "b", "a"]) == [[0, 2, 5], [1, 4]]
    assert dup.group_pairs(5, [(3, 4), (0, 1), (1, 3)]) == [[0, 1, 3, 4]]
    assert dup.group_pairs(3, []) == []


def test_neighbours_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    unit = dup.normalized(rng.normal(size=(200, 16)))
    idx, dist = dup.neighbours(unit, 4)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    want = np.argsort(-sims, axis=1)[:, :4]
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_allclose(dist, 1 - np.take_along_axis(sims, want, 1), atol=1e-5)


def test_near_pairs_need_pixels_or_features_and_hash() -> None:
    unit = dup.normalized(np.array([[1, 0], [1, 0.01], [0, 1], [0.01, 1]], dtype=float))
    hashes = np.zeros((4, 64), bool)
    hashes[3, :20] = True  # 20 bits away from image 2
    pairs = np.array([[0, 1], [2, 3], [0, 2]])
    corr = np.array([0.5, 0.5, 0.995])
    got = dup.near_pairs(pairs, unit, hashes, corr, 0.985, 0.97, 8)
    assert [(i, j) for i, j, *_ in got] == [(0, 1), (0, 2)]  # 2-3: features agree, hashes do not


def test_aligned_correlation_undoes_shifts_and_rejects_other_images() -> None:
    rng = np.random.default_rng(1)
    base = [_shape_image(rng) for _ in range(4)]
    thumbs = []
    for a in base:
        t = np.asarray(Image.fromarray(a).resize((64, 64), Image.Resampling.LANCZOS))
        thumbs.append(t)
    shifted = np.zeros_like(thumbs[0])
    shifted[4:, 3:] = thumbs[0][:-4, :-3]  # 4 px down, 3 px right
    thumbs = np.stack([*thumbs, shifted])
    corr = aligned_correlation(thumbs, np.array([[0, 4], [4, 0], [0, 1], [1, 2], [2, 3]]))
    assert corr[0] > 0.99 and corr[1] > 0.99
    assert (corr[2:] < 0.9).all()
    pairs = pixel_neighbours(thumbs, 1)
    assert [0, 4] in pairs.tolist()


def test_phash_is_imagehash_bit_for_bit(tmp_path: Path) -> None:
    imagehash = pytest.importorskip("imagehash")
    rng = np.random.default_rng(2)
    paths = []
    for i in range(6):
        path = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 255, (50 + i, 37, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    ours = phash_batch(np.stack([decode_small(p)[0] for p in paths]))
    for p, bits in zip(paths, ours, strict=True):
        want = np.asarray(imagehash.phash(Image.open(p)).hash).reshape(-1)
        np.testing.assert_array_equal(bits, want)


def test_fingerprints_cache_and_unreadable(tmp_path: Path) -> None:
    good = tmp_path / "a.png"
    Image.fromarray(_shape_image(np.random.default_rng(3))).save(good)
    bad = tmp_path / "b.png"
    bad.write_bytes(b"not an image")
    cache = tmp_path / "fp.npz"
    thumbs, hashes = fingerprints([str(good), str(bad)], ["ha", "hb"], cache)
    assert thumbs.shape == (2, 64, 64) and hashes.shape == (2, 64)
    assert thumbs[0].any() and not thumbs[1].any() and hashes[0].any()
    good.unlink()  # now only the cache can answer for "ha"
    again, hashes2 = fingerprints([str(good)], ["ha"], cache)
    np.testing.assert_array_equal(again[0], thumbs[0])
    np.testing.assert_array_equal(hashes2[0], hashes[0])


def test_jpeg_copy_hash_close_and_other_image_far(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    a, b = _shape_image(rng, 64), _shape_image(rng, 64)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=70)
    paths = [tmp_path / "a.png", tmp_path / "a.jpg", tmp_path / "b.png"]
    Image.fromarray(a).save(paths[0])
    paths[1].write_bytes(buf.getvalue())
    Image.fromarray(b).save(paths[2])
    thumbs, h = fingerprints([str(p) for p in paths], ["1", "2", "3"])
    assert (h[0] != h[1]).sum() <= 4 < (h[0] != h[2]).sum()
    corr = aligned_correlation(thumbs, np.array([[0, 1], [0, 2]]))
    assert corr[0] > 0.985 > corr[1]


def test_outliers() -> None:
    assert round(outlier_threshold(np.arange(9.0), 1.0), 6) == 10.0
    scores = np.r_[np.linspace(0.1, 0.2, 30), 0.9, 0.7]
    assert flag_outliers(scores, 3.0).tolist() == [30, 31]
    assert flag_outliers(np.array([0.1, 0.9]), 3.0).tolist() == []
    idx = np.array([[1, 2], [0, 2], [0, 1]])
    dist = np.array([[0.0, 0.5], [0.0, 0.4], [0.5, 0.4]])
    # image 0 and 1 are byte copies: their distance to each other is left out
    np.testing.assert_allclose(knn_scores(dist, idx, ["x", "x", "y"]), [0.5, 0.4, 0.45])


def test_clean_split_rules() -> None:
    splits = ["train", "train", "val", "test", "train", "train", "test", "train"]
    groups = [
        Group("exact", [0, 1], ["train", "train"]),  # same split: keep the first copy
        Group("near", [2, 3, 4], ["val", "test", "train"]),  # leak with test: train/val go
        Group("near", [5, 2], ["train", "val"]),  # train + val: the train one goes
    ]
    issues = [LabelIssue(6, 0, 1, 0.1, 0.8), LabelIssue(7, 1, 0, 0.2, 0.7)]
    drops = suggest_drops(groups, issues, [Outlier(0, 1.0)], splits, True, True)
    assert drops == {
        0: "outlier",
        1: "exact-duplicate",
        2: "leak",
        4: "leak",
        5: "leak",
        7: "label",
    }
    keep_labels = suggest_drops([], issues, [Outlier(4, 1.0)], splits, False, True)
    assert keep_labels == {4: "outlier"}
