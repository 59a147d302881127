"""Find a dataset's images and labels: ImageFolder, train/val/test folders, or a ``path,label`` CSV.

Layouts :func:`scan_dataset` understands:

- **ImageFolder**: ``DATA/<class>/**/*.jpg`` (a subfolder per class, searched recursively).
- **Split folders**: ``DATA/train/<class>/...`` plus optional ``val/`` (or ``valid``, ``validation``)
  and ``test/`` (or ``testing``), detected automatically when every subfolder of DATA is a split name.
- **CSV/TSV**: a file of ``path,label`` rows (see :mod:`graft.data.csvfile`).

Class names are sorted (numerically when every name is an integer, so ``2`` comes before ``10``);
their order defines the label indices and is saved with every model. Hidden files and folders and
files without an image extension are ignored. Unreadable images (zero-byte, truncated, not an image,
decompression bombs, ...) are skipped and reported: a warning with the count, and
:meth:`Splits.write_skipped` for the list. An empty class folder, a class with fewer than 2 images or
a single class raise :class:`graft.errors.DataError` before any training starts.

Example:
    >>> splits = scan_dataset("data/pets", val_split=0.2, seed=0)  # doctest: +SKIP
    >>> splits.classes, len(splits.train), len(splits.val)  # doctest: +SKIP
    (['cat', 'dog'], 160, 40)
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from graft.data.csvfile import CSV_SUFFIXES, read_labels_csv
from graft.data.images import is_image_file
from graft.data.verify import find_unreadable
from graft.errors import DataError, raise_unknown
from graft.io import write_text
from graft.log import get_logger
from graft.names import escape_name

Sample = tuple[str, int]
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
MIN_PER_CLASS = 2

log = get_logger("graft.data")


@dataclass
class Splits:
    """A scanned dataset: class names, ``(path, label)`` lists per split, skipped files."""

    classes: list[str]
    train: list[Sample] = field(default_factory=list)
    val: list[Sample] = field(default_factory=list)
    test: list[Sample] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    source: str = ""

    @property
    def class_to_idx(self) -> dict[str, int]:
        """Class name -> label index."""
        return {name: i for i, name in enumerate(self.classes)}

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def all_samples(self) -> list[Sample]:
        """Train, val and test samples together."""
        return [*self.train, *self.val, *self.test]

    def counts(self, split: str = "train") -> dict[str, int]:
        """Images per class name in ``split`` (``train``, ``val``, ``test`` or ``all``)."""
        if split not in ("train", "val", "test", "all"):
            raise_unknown("split", split, ("train", "val", "test", "all"))
        samples = self.all_samples() if split == "all" else getattr(self, split)
        counter = Counter(label for _, label in samples)
        return {name: counter.get(i, 0) for i, name in enumerate(self.classes)}

    def write_skipped(self, path: str | os.PathLike) -> Path:
        """Write the skipped files as ``path<TAB>reason`` lines (atomically); return the path.

        Tabs, newlines, backslashes and other control characters in names are escaped
        (:func:`graft.names.escape_name`), so every file is one row of two fields.
        """
        lines = "".join(
            f"{escape_name(str(p))}\t{escape_name(str(reason))}\n" for p, reason in self.skipped
        )
        write_text(path, "path\treason\n" + lines)
        return Path(path)

    def summary(self) -> str:
        """One line: classes and images per split, skipped count."""
        return (
            f"{self.num_classes} classes, {len(self.train)} train / {len(self.val)} val / "
            f"{len(self.test)} test images"
            + (f", {len(self.skipped)} skipped" if self.skipped else "")
        )


def scan_dataset(
    source: str | os.PathLike,
    *,
    val_split: float | None = None,
    test: str | os.PathLike | None = None,
    val: str | os.PathLike | None = None,
    seed: int = 0,
    csv_root: str | os.PathLike | None = None,
    verify: bool = True,
    workers: int | None = None,
) -> Splits:
    """Scan ``source`` (folder or CSV) into :class:`Splits`; see the module docstring for layouts.

    ``val_split`` carves a stratified, seeded validation set out of train when there is no val
    folder; ``val``/``test`` name separate folders or CSVs for those splits. ``verify`` decodes every
    image (in ``workers`` threads) so that unreadable files are skipped now rather than mid-training.

    Example:
        >>> s = scan_dataset("data/flowers", val_split=0.2)  # doctest: +SKIP
        >>> s.summary()  # doctest: +SKIP
        '5 classes, 2936 train / 734 val / 0 test images'
    """
    _check_fraction(val_split)
    parts = _read_parts(Path(source), csv_root)
    if val is not None:
        parts["val"] = _read_source(Path(val), csv_root)[0]
    if test is not None:
        parts["test"] = _read_source(Path(test), csv_root)[0]
    named_train, empty = parts["train"], parts.pop("empty", [])
    classes = _class_names(source, named_train, empty)
    splits = Splits(classes=classes, source=os.fspath(source))
    index = splits.class_to_idx
    for name in ("train", "val", "test"):
        setattr(splits, name, _to_samples(parts.get(name, []), index, name, source))
    _check_class_sizes(splits, source)
    if verify:
        _drop_unreadable(splits, workers)
    _apply_val_split(splits, val_split, seed)
    if splits.skipped:
        _warn_skipped(splits.skipped)
    return splits


def stratified_split(
    samples: list[Sample], fraction: float, seed: int = 0
) -> tuple[list[Sample], list[Sample]]:
    """Split ``samples`` into ``(keep, held_out)`` with ``fraction`` of each class held out.

    Reproducible for a given ``seed``; every class keeps at least one sample on each side when it
    has two or more.

    Example:
        >>> s = [(f"{i}.png", i % 2) for i in range(10)]
        >>> keep, held = stratified_split(s, 0.2, seed=0)
        >>> len(keep), len(held)
        (8, 2)
    """
    _check_fraction(fraction)
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[Sample]] = {}
    for sample in sorted(samples):
        by_class.setdefault(sample[1], []).append(sample)
    keep: list[Sample] = []
    held: list[Sample] = []
    for label in sorted(by_class):
        items = by_class[label]
        order = rng.permutation(len(items))
        n_held = int(round(len(items) * fraction))
        if len(items) >= 2:
            n_held = min(max(n_held, 1), len(items) - 1)
        held += [items[i] for i in sorted(order[:n_held])]
        keep += [items[i] for i in sorted(order[n_held:])]
    return keep, held


def _check_fraction(fraction: float | None) -> None:
    if fraction is not None and not 0.0 < float(fraction) < 1.0:
        raise DataError(
            f"val_split must be between 0 and 1 (exclusive), got {fraction}. Example: --val-split 0.2"
        )


def _read_parts(source: Path, csv_root: str | os.PathLike | None) -> dict[str, list]:
    if not source.exists():
        raise DataError(
            f"dataset {source} does not exist. Give a folder with a subfolder per class, or a CSV of path,label rows."
        )
    if source.is_dir():
        splits = _split_folders(source)
        if splits:
            if "train" not in splits:
                raise DataError(
                    f"{source} has split folders {sorted(p.name for p in splits.values())} but no train/ folder. "
                    "Fix: add train/<class>/ folders, or point at a folder with a subfolder per class."
                )
            parts = {name: _read_folder(path) for name, path in splits.items()}
            log.info("%s: split folders %s", source, ", ".join(sorted(splits)))
            return {name: p[0] for name, p in parts.items()} | {"empty": parts["train"][1]}
    samples, empty = _read_source(source, csv_root)
    return {"train": samples, "empty": empty}


def _read_source(
    source: Path, csv_root: str | os.PathLike | None
) -> tuple[list[tuple[str, str]], list[str]]:
    if source.is_dir():
        return _read_folder(source)
    if source.is_file() and source.suffix.lower() in CSV_SUFFIXES:
        return read_labels_csv(source, csv_root), []
    if not source.exists():
        raise DataError(f"{source} does not exist.")
    raise DataError(
        f"{source} is neither a folder nor a CSV/TSV file (suffix {source.suffix!r}). "
        f"Give a folder with a subfolder per class, or a file ending in {', '.join(CSV_SUFFIXES)}."
    )


def _split_folders(root: Path) -> dict[str, Path]:
    subdirs = [p for p in _visible(root) if p.is_dir()]
    named = {SPLIT_NAMES.get(p.name.lower()): p for p in subdirs}
    if subdirs and None not in named and "train" in named:
        return named
    if len(named) > 1 and "train" in named and None in named:
        if _holds_class_folders(named["train"]):  # train/<class>/...: a split layout, plus strays
            stray = [
                escape_name(p.name) for p in subdirs if SPLIT_NAMES.get(p.name.lower()) is None
            ]
            raise DataError(
                f"{root} has split folders (train/ holding class folders) next to other folders "
                f"({', '.join(stray[:5])}); graft cannot tell whether those are classes or strays. "
                f"Fix: move a class into train/<class>/ (and val/, test/), or move the other "
                f"folders out of {root}."
            )
        log.info("%s has a train/ folder next to other folders: reading it as an ImageFolder", root)
    return {}


def _holds_class_folders(folder: Path) -> bool:
    """True when ``folder`` has sub-folders with images in them (a split, not a class)."""
    return any(p.is_dir() and images_under(p) for p in _visible(folder))


OUTPUT_MARKERS = ("model.json", "manifest.json", ".graft-lock")  # bundle, feature store, run
RUN_MARKERS = ("checkpoints", "logs", "metrics.json")  # next to config.yaml: a fit run folder


def _check_not_output(entry: Path, root: Path) -> None:
    """Refuse a class folder that is graft's own output (an ``--out`` inside the data folder)."""
    found = [m for m in OUTPUT_MARKERS if (entry / m).exists()]
    if (entry / "config.yaml").is_file():
        found += [m for m in RUN_MARKERS if (entry / m).exists()]
    if found:
        raise DataError(
            f"{escape_name(str(entry))} holds graft output ({', '.join(found)}), not images of a "
            f"class: an --out folder inside the data folder is read as a class. Fix: move it out "
            f"of {escape_name(str(root))} and pass an --out outside the data folder."
        )


def _visible(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as e:
        raise DataError(f"cannot list {folder}: {e.strerror or e}") from e


def _read_folder(root: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """``(path, class name)`` for each image under ``root/<class>/``, and the empty class folders."""
    samples: list[tuple[str, str]] = []
    empty: list[str] = []
    loose = 0
    for entry in _visible(root):
        if not entry.is_dir():
            loose += is_image_file(entry)
            continue
        _check_not_output(entry, root)
        files = images_under(entry)
        if not files:
            empty.append(os.fspath(entry))
        samples += [(f, entry.name) for f in files]
    if loose:
        log.warning("%s: ignoring %d images outside class folders", root, loose)
    return samples, empty


def images_under(folder: str | os.PathLike) -> list[str]:
    """Every image file below ``folder`` (links followed, each real folder once, hidden ones skipped).

    Example:
        >>> images_under("data/pets/cat")  # doctest: +SKIP
        ['data/pets/cat/1.jpg', 'data/pets/cat/2.png']
    """
    found: list[str] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlinked folder that loops back
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [os.path.join(dirpath, f) for f in sorted(filenames) if is_image_file(f)]
    return found


def _class_names(
    source: str | os.PathLike, named: list[tuple[str, str]], empty: list[str]
) -> list[str]:
    if empty:
        raise DataError(
            f"{len(empty)} class folder(s) in {source} contain no images: "
            f"{', '.join(escape_name(e) for e in empty[:5])}. "
            "Fix: add images to them or delete them (hidden files and non-image files do not count)."
        )
    names = sorted({label for _, label in named}, key=_class_key)
    if not names:
        raise DataError(
            f"no images found in {source}. Expected a subfolder per class with images "
            "(.jpg .png .bmp .tif .webp ...), a train/ folder, or a CSV of path,label rows."
        )
    if len(names) < 2:
        raise DataError(
            f"{source} has a single class ({names[0]!r}); classification needs at least 2. "
            "Fix: add a folder per class next to it (e.g. DATA/cat/, DATA/dog/)."
        )
    return names


def _class_key(name: str) -> tuple:
    return (0, int(name), "") if name.lstrip("-").isdigit() else (1, 0, name)


def _to_samples(
    named: list[tuple[str, str]], index: dict[str, int], split: str, source
) -> list[Sample]:
    unknown = sorted({label for _, label in named if label not in index})
    if unknown:
        raise DataError(
            f"{split} data of {source} has classes not in train: {', '.join(unknown[:10])}. "
            f"Train classes: {', '.join(index)}. Fix: add training images for them or remove them from {split}."
        )
    return [(path, index[label]) for path, label in named]


def _check_class_sizes(splits: Splits, source) -> None:
    small = {name: n for name, n in splits.counts("train").items() if n < MIN_PER_CLASS}
    if small:
        shown = ", ".join(f"{name!r} ({n})" for name, n in list(small.items())[:10])
        raise DataError(
            f"classes with fewer than {MIN_PER_CLASS} readable training images in {source}: {shown}. "
            "Fix: add images to these classes or remove them."
        )


def _drop_unreadable(splits: Splits, workers: int | None) -> None:
    paths = [p for p, _ in splits.all_samples()]
    missing = [(p, "missing file") for p in paths if not os.path.lexists(p)]
    present = [p for p in paths if os.path.lexists(p)]
    bad = missing + find_unreadable(present, workers)
    if not bad:
        return
    bad_set = {p for p, _ in bad}
    for name in ("train", "val", "test"):
        setattr(splits, name, [s for s in getattr(splits, name) if s[0] not in bad_set])
    splits.skipped += bad
    _check_class_sizes(splits, splits.source)


def _apply_val_split(splits: Splits, val_split: float | None, seed: int) -> None:
    if val_split is None:
        return
    if splits.val:
        log.warning(
            "%s has its own validation data; val_split=%s is ignored", splits.source, val_split
        )
        return
    splits.train, splits.val = stratified_split(splits.train, val_split, seed)


def _warn_skipped(skipped: list[tuple[str, str]]) -> None:
    reasons = Counter(reason for _, reason in skipped)
    detail = ", ".join(f"{reason}: {n}" for reason, n in reasons.most_common())
    log.warning(
        "skipped %d unreadable image file(s) (%s); first: %s",
        len(skipped),
        detail,
        escape_name(str(skipped[0][0])),
    )
