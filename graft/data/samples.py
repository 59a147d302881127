"""Real sample datasets that install offline, written as ImageFolders with ``train/`` and ``test/``.

- ``animals``: the 10,000 28x28 grayscale animal silhouettes shipped in the ``animal-mnist`` package
  (bear, bird, cat, cow, dog, elephant, giraffe, horse, sheep, zebra), exact duplicates removed
  (images whose pixels repeat: the first copy is kept when all copies share a label, all copies are
  dropped when their labels disagree).
- ``digits``: scikit-learn's 1,797 8x8 digit scans (16 grey levels), scaled to 0-255 and upscaled
  to 32x32 (bicubic).

Each class is shuffled with ``seed`` and split 80/20 into ``train/`` and ``test/`` (stratified);
``per_class`` keeps only that many images per class first (small subsets for tests and benches).
Writing is atomic (a temporary folder renamed into place) and idempotent: a complete folder written
with the same settings is reused. The package's pickles are read with an unpickler that only
accepts numpy arrays, and the package itself is never imported (it imports tensorflow).

Example:
    >>> root = sample_dataset("animals", "data/animals", per_class=50)  # doctest: +SKIP
    >>> sorted(p.name for p in (root / "train").iterdir())[:3]  # doctest: +SKIP
    ['bear', 'bird', 'cat']
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import io
import os
import pickle
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from graft.data.verify import default_workers
from graft.errors import DataError, UnsafeFileError, raise_unknown
from graft.io import read_json, write_json
from graft.log import get_logger

ANIMAL_CLASSES = (
    "bear",
    "bird",
    "cat",
    "cow",
    "dog",
    "elephant",
    "giraffe",
    "horse",
    "sheep",
    "zebra",
)
SAMPLES = ("animals", "digits")
TEST_FRACTION = 0.2
MARKER = ".graft-sample.json"
_FORMAT_VERSION = 1

log = get_logger("graft.data")


def sample_dataset(
    name: str, dest: str | os.PathLike, seed: int = 0, per_class: int | None = None
) -> Path:
    """Write sample dataset ``name`` (``animals`` or ``digits``) to ``dest``; return ``dest``.

    Example:
        >>> root = sample_dataset("digits", "data/digits")  # doctest: +SKIP
        >>> (root / "train" / "0").is_dir()  # doctest: +SKIP
        True
    """
    if name not in SAMPLES:
        raise_unknown("sample dataset", name, SAMPLES)
    if per_class is not None and per_class < 2:
        raise DataError(
            f"per_class must be at least 2 (one train and one test image), got {per_class}"
        )
    dest = Path(dest)
    settings = {
        "name": name,
        "seed": seed,
        "per_class": per_class,
        "format_version": _FORMAT_VERSION,
    }
    if _is_complete(dest, settings):
        log.info("reusing sample dataset %s at %s", name, dest)
        return dest
    images, labels, classes = _load(name)
    images, labels = _subset(images, labels, per_class, seed)
    _write_atomically(dest, images, labels, classes, seed, settings)
    return dest


@functools.lru_cache(maxsize=1)
def load_animals() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The animal-mnist arrays ``(images uint8 N x 28 x 28, labels int N, class names)``, deduplicated."""
    folder = _animal_data_folder()
    images = _load_numpy_pickle(folder / "animal_data_version_3.gz")
    labels = _load_numpy_pickle(folder / "animal_label_version_3.gz").astype(np.int64)
    if images.ndim != 3 or len(images) != len(labels) or labels.max() >= len(ANIMAL_CLASSES):
        raise DataError(
            f"unexpected animal-mnist data in {folder}: images {images.shape}, labels {labels.shape}"
        )
    images, labels = remove_duplicates(images.astype(np.uint8), labels)
    return _read_only(images), _read_only(labels), ANIMAL_CLASSES


@functools.lru_cache(maxsize=2)
def load_digits_images(size: int = 32) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """scikit-learn's digits as uint8 ``N x size x size`` images (bicubic upscaling), labels, classes."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = np.clip(np.rint(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    big = np.stack(
        [
            np.asarray(Image.fromarray(im).resize((size, size), Image.Resampling.BICUBIC))
            for im in small
        ]
    )
    return (
        _read_only(big),
        _read_only(digits.target.astype(np.int64)),
        tuple(str(i) for i in range(10)),
    )


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)  # cached: callers must not modify it
    return array


def remove_duplicates(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop exact pixel duplicates: keep the first copy if labels agree, drop all copies if not.

    Example:
        >>> imgs = np.array([[[0]], [[0]], [[1]], [[1]]], dtype=np.uint8)
        >>> remove_duplicates(imgs, np.array([3, 3, 4, 5]))[1].tolist()
        [3]
    """
    flat = images.reshape(len(images), -1)
    _, first, inverse = np.unique(flat, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    label_sets: dict[int, set[int]] = {}
    for group, label in zip(inverse.tolist(), labels.tolist(), strict=True):
        label_sets.setdefault(group, set()).add(label)
    keep = sorted(int(first[g]) for g, labs in label_sets.items() if len(labs) == 1)
    dropped = len(images) - len(keep)
    if dropped:
        log.info(
            "removed %d exact duplicate images (%d with conflicting labels)",
            dropped,
            sum(1 for labs in label_sets.values() if len(labs) > 1),
        )
    return images[keep], labels[keep]


def _load(name: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    return load_animals() if name == "animals" else load_digits_images()


def _subset(images: np.ndarray, labels: np.ndarray, per_class: int | None, seed: int):
    if per_class is None:
        return images, labels
    rng = np.random.default_rng(seed)
    keep = []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        keep += sorted(rng.permutation(idx)[:per_class].tolist())
    keep.sort()
    return images[keep], labels[keep]


def _split(labels: np.ndarray, seed: int) -> np.ndarray:
    """Boolean mask: True for test images (``TEST_FRACTION`` of each class, at least one)."""
    rng = np.random.default_rng(seed + 1)
    is_test = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        n_test = min(max(1, int(round(len(idx) * TEST_FRACTION))), len(idx) - 1)
        is_test[rng.permutation(idx)[:n_test]] = True
    return is_test


def _write_atomically(
    dest: Path, images, labels, classes, seed: int, settings: dict[str, Any]
) -> None:
    if dest.exists() and any(dest.iterdir()):
        raise DataError(
            f"{dest} exists and is not a complete '{settings['name']}' sample written with these settings "
            f"({settings}). Fix: choose another folder or delete {dest}."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        is_test = _split(labels, seed)
        counts = _write_images(tmp, images, labels, classes, is_test)
        write_json(tmp / MARKER, {**settings, "classes": list(classes), "counts": counts})
        if dest.exists():
            dest.rmdir()  # empty (checked above)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if _is_complete(dest, settings):  # another process finished first
            return
        raise
    log.info("wrote sample dataset %s to %s: %s", settings["name"], dest, counts)


def _write_images(root: Path, images, labels, classes, is_test) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {"train": {}, "test": {}}
    jobs = []
    for i, label in enumerate(labels.tolist()):
        split, cls = ("test" if is_test[i] else "train"), classes[label]
        counts[split][cls] = counts[split].get(cls, 0) + 1
        jobs.append((images[i], root / split / cls / f"{cls}_{i:05d}.png"))
    for folder in {path.parent for _, path in jobs}:
        folder.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(default_workers()) as pool:  # zlib releases the GIL
        list(pool.map(lambda job: Image.fromarray(job[0], "L").save(job[1]), jobs))
    return counts


def _is_complete(dest: Path, settings: dict[str, Any]) -> bool:
    marker = dest / MARKER
    if not marker.is_file():
        return False
    try:
        info = read_json(marker)
    except Exception:
        return False
    if any(info.get(k) != v for k, v in settings.items()):
        return False
    for split, per_class in info.get("counts", {}).items():
        for cls, n in per_class.items():
            folder = dest / split / cls
            if not folder.is_dir() or sum(1 for _ in folder.glob("*.png")) != n:
                return False
    return True


def _animal_data_folder() -> Path:
    spec = importlib.util.find_spec("animal_mnist")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the 'animals' sample needs the animal-mnist package: "
            "pip install --no-deps animal-mnist==0.4 (it declares tensorflow but does not need it)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "Animal_MNIST"
    if not folder.is_dir():
        raise DataError(
            f"animal-mnist is installed but has no data folder at {folder}; reinstall it."
        )
    return folder


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild numpy arrays and nothing else (no code execution)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise UnsafeFileError(
                f"refusing to unpickle {module}.{name}: only numpy arrays are allowed"
            )
        if name == "_reconstruct":
            return _numpy_reconstruct()
        return getattr(np, name)


def _numpy_reconstruct() -> Any:
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _load_numpy_pickle(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    array = _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    if not isinstance(array, np.ndarray):
        raise DataError(f"{path} does not hold a numpy array (got {type(array).__name__})")
    return array
