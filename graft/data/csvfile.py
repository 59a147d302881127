"""Read a CSV/TSV of ``path,label`` rows, with errors that name the file, the row and the fix.

The header names the columns (case-insensitive): the path column is one of :data:`PATH_COLUMNS`, the
label column one of :data:`LABEL_COLUMNS`; other columns are ignored. A file without a header is
read as two columns ``path,label`` when its first row names an image file. Relative paths are
resolved against ``root`` (default: the CSV's folder). ``.tsv`` files are tab-separated; for other
files the delimiter (``,`` ``;`` or tab) is detected from the first line.

Example:
    >>> rows = read_labels_csv("labels.csv")  # doctest: +SKIP
    >>> rows[0]  # doctest: +SKIP
    ('/data/img/001.jpg', 'cat')
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from graft.data.images import IMAGE_EXTENSIONS
from graft.errors import DataError
from graft.log import get_logger

PATH_COLUMNS = ("path", "filepath", "file_path", "file", "filename", "image", "image_path", "img")
LABEL_COLUMNS = ("label", "class", "class_name", "target", "category", "y")
CSV_SUFFIXES = (".csv", ".tsv", ".txt")

log = get_logger("graft.data")


def read_labels_csv(
    csv_path: str | os.PathLike, root: str | os.PathLike | None = None
) -> list[tuple[str, str]]:
    """Return ``(absolute path, label)`` for each data row of a ``path,label`` CSV/TSV file."""
    csv_path = Path(csv_path)
    base = Path(root) if root is not None else csv_path.parent
    rows = _read_rows(csv_path)
    if not rows:
        raise DataError(
            f"{csv_path} has no rows. Expected a header `path,label` and one row per image."
        )
    header, start = _header(csv_path, rows[0])
    path_col, label_col = _columns(csv_path, header)
    out: list[tuple[str, str]] = []
    for number, row in enumerate(rows[start:], start=start + 1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise DataError(
                f"{csv_path}, row {number}: expected {len(header)} fields ({', '.join(header)}), got "
                f"{len(row)}: {row!r}. Fix: quote values that contain the delimiter, or make every "
                "row have the same columns as the header."
            )
        path, label = row[path_col].strip(), row[label_col].strip()
        if not path or not label:
            missing = "path" if not path else "label"
            raise DataError(
                f"{csv_path}, row {number}: empty {missing} in {row!r}. Fix: fill it in or delete the row."
            )
        out.append((os.path.normpath(base / path), label))
    if not out:
        raise DataError(f"{csv_path} has a header but no data rows.")
    return out


def _read_rows(csv_path: Path) -> list[list[str]]:
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{csv_path} is not UTF-8 text ({e}). Save it as UTF-8 CSV.") from e
    except OSError as e:
        raise DataError(f"cannot read {csv_path}: {e.strerror or e}") from e
    delimiter = "\t" if csv_path.suffix.lower() == ".tsv" else _sniff_delimiter(text)
    return list(csv.reader(text.splitlines(), delimiter=delimiter))


def _sniff_delimiter(text: str) -> str:
    first = text.split("\n", 1)[0]
    counts = {d: first.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _header(csv_path: Path, first: list[str]) -> tuple[list[str], int]:
    names = [c.strip().lower() for c in first]
    if any(n in PATH_COLUMNS for n in names) or any(n in LABEL_COLUMNS for n in names):
        return names, 1
    if len(first) == 2 and os.path.splitext(first[0].strip())[1].lower() in IMAGE_EXTENSIONS:
        log.info("%s has no header; reading its columns as path,label", csv_path)
        return ["path", "label"], 0
    raise DataError(
        f"{csv_path}, row 1: no header found in {first!r}. Expected a header naming a path column "
        f"({', '.join(PATH_COLUMNS)}) and a label column ({', '.join(LABEL_COLUMNS)}). "
        "Fix: add a first line `path,label`."
    )


def _columns(csv_path: Path, header: list[str]) -> tuple[int, int]:
    path_col = next((i for i, n in enumerate(header) if n in PATH_COLUMNS), None)
    label_col = next((i for i, n in enumerate(header) if n in LABEL_COLUMNS), None)
    if path_col is None or label_col is None:
        missing = "path" if path_col is None else "label"
        valid = PATH_COLUMNS if path_col is None else LABEL_COLUMNS
        raise DataError(
            f"{csv_path}, row 1: the header {header} has no {missing} column. Valid names: "
            f"{', '.join(valid)}. Fix: rename the column in the header, e.g. `path,label`."
        )
    extra = [n for i, n in enumerate(header) if i not in (path_col, label_col)]
    if extra:
        log.info("%s: ignoring columns %s", csv_path, ", ".join(extra))
    return path_col, label_col
