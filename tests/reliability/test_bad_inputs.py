"""Bad inputs: every command either finishes and reports what it skipped, or stops before any
work with one clear error line (exit code 2). No traceback reaches the user for a data problem.

The corpus (see ``conftest.make_corpus``) holds every bad-file kind next to valid images in odd
modes, under a path with spaces and non-ASCII characters.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from .conftest import BAD_FILES, TINY_EXTRACT, TINY_FIT, assert_clean_exit, run_cli, write_csv


def _reported(text: str, corpus: Path) -> dict[str, str]:
    """Bad file (relative) -> the line of ``text`` that names it."""
    found = {}
    for rel in BAD_FILES:
        name = Path(rel).name
        lines = [line for line in text.splitlines() if name in line]
        if lines:
            found[rel] = lines[0]
    return found


def _assert_every_bad_file_reported(text: str, corpus: Path) -> None:
    found = _reported(text, corpus)
    missing = sorted(set(BAD_FILES) - set(found))
    assert not missing, f"not reported: {missing}\n{text[-4000:]}"
    for rel, line in found.items():
        assert BAD_FILES[rel] in line, f"{rel}: expected reason {BAD_FILES[rel]!r} in {line!r}"


@pytest.fixture(scope="module")
def corpus_bundle(corpus_session: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classifier bundle trained (1 epoch, head only) on the corpus's 5 classes."""
    from graft.train import fit

    out = tmp_path_factory.mktemp("bundle") / "run"
    result = fit(
        corpus_session, model="test_efficientnet", weights="none", image_size=32, batch_size=8,
        workers=0, progress=False, recipe="head", epochs=1, out=str(out), val_split=0.25,
    )  # fmt: skip
    return result.bundle


def test_stats_reports_every_bad_file(corpus: Path) -> None:
    r = run_cli("stats", corpus, "--model", "test_efficientnet", "--no-progress", "--workers", "1")
    assert_clean_exit(r, allowed=(0,))
    _assert_every_bad_file_reported(r.out + r.err, corpus)
    # valid odd images are counted, not skipped: 3 x 6 clean + 16 odd valid + 1 EXIF-rotated
    assert "images: 35 readable, 9 corrupt/unreadable" in r.out, r.out


def test_fit_skips_bad_files_and_lists_them(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run é"
    r = run_cli("fit", corpus, *TINY_FIT, "--recipe", "head", "--epochs", "1", "--out", out)
    assert_clean_exit(r, allowed=(0,))
    skipped = (out / "skipped.tsv").read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(skipped), delimiter="\t"))[1:]
    assert {Path(p).relative_to(corpus).as_posix(): reason for p, reason in rows} == BAD_FILES
    assert (out / "bundle" / "model.json").is_file()


def test_extract_skips_bad_files_and_lists_them(corpus: Path, tmp_path: Path) -> None:
    from graft.io import read_json

    out = tmp_path / "feats"
    r = run_cli("extract", corpus, *TINY_EXTRACT, "--out", out)
    assert_clean_exit(r, allowed=(0,))
    manifest = read_json(out / "manifest.json")
    reasons = {Path(p).relative_to(corpus).as_posix(): why for p, why in manifest["skipped"]}
    assert reasons == BAD_FILES
    assert manifest["num_images"] == 35


def test_probe_on_images_skips_bad_files(corpus: Path, tmp_path: Path) -> None:
    r = run_cli("probe", corpus, *TINY_EXTRACT, "--cv", "2", "--out", tmp_path / "probe")
    assert_clean_exit(r, allowed=(0,))
    assert (tmp_path / "probe" / "model.json").is_file()


def test_predict_predicts_good_files_and_reports_bad_ones(
    corpus: Path, corpus_bundle: Path, tmp_path: Path
) -> None:
    r = run_cli("predict", corpus_bundle, corpus, "--top-k", "2", "--out", tmp_path / "p")
    assert_clean_exit(r, allowed=(0,))
    _assert_every_bad_file_reported(r.err, corpus)
    rows = list(
        csv.DictReader(
            io.StringIO((tmp_path / "p" / "predictions.csv").read_text(encoding="utf-8"))
        )
    )
    assert len(rows) == 35
    assert not {Path(row["path"]).name for row in rows} & {Path(b).name for b in BAD_FILES}


def test_evaluate_scores_good_files_and_reports_bad_ones(corpus: Path, corpus_bundle: Path) -> None:
    r = run_cli("evaluate", corpus_bundle, corpus, "--split", "all", "--top-k", "2")
    assert_clean_exit(r, allowed=(0,))
    _assert_every_bad_file_reported(r.err, corpus)
    assert r.out.startswith("35 images: accuracy"), r.out


def test_distill_skips_bad_files(corpus: Path, corpus_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "kd"
    r = run_cli(
        "distill", corpus, "--teacher", corpus_bundle, "--student", "test_efficientnet",
        *TINY_FIT[2:], "--weights", "none", "--recipe", "head", "--epochs", "1", "--out", out,
    )  # fmt: skip
    assert_clean_exit(r, allowed=(0,))
    assert (out / "bundle" / "model.json").is_file()
    skipped = (out / "skipped.tsv").read_text(encoding="utf-8")
    assert all(Path(rel).name in skipped for rel in BAD_FILES), skipped


@pytest.mark.slow
def test_select_with_shipped_weights_on_the_corpus(corpus: Path, tmp_path: Path) -> None:
    r = run_cli(
        "select", corpus, "--model", "efficientnet_lite0", "--image-size", "32",
        "--sample-per-class", "2", "--scores", "knn", "--repeats", "1", "--memory", "off",
        "--batch-size", "2", "--out", tmp_path / "sel",
    )  # fmt: skip
    assert_clean_exit(r, allowed=(0,))
    assert "efficientnet_lite0" in r.out


def test_select_without_usable_candidates_explains(corpus: Path, tmp_path: Path) -> None:
    """test_* models have no offline weights: select reports why instead of crashing."""
    r = run_cli(
        "select", corpus, "--model", "test_efficientnet", "--image-size", "32",
        "--sample-per-class", "2", "--repeats", "1", "--memory", "off", "--out", tmp_path / "sel",
    )  # fmt: skip
    assert_clean_exit(r, allowed=(1, 2))
    assert "no pretrained weights found for model 'test_efficientnet'" in r.out + r.err


# ---------------------------------------------------------------------------------- label CSVs


def _csv_rows(corpus: Path, names: list[str], label_of) -> str:
    return "".join(f"{(corpus / n).as_posix()},{label_of(n)}\n" for n in names)


GOOD = [f"{c}/{c}_{i:03d}.{'png' if i % 2 else 'jpg'}" for c in ("red", "green") for i in range(6)]


def test_csv_without_label_column_stops_before_work(corpus: Path, tmp_path: Path) -> None:
    labels = write_csv(
        tmp_path / "labels.csv", "path,comment\n" + _csv_rows(corpus, GOOD, lambda n: "x")
    )
    out = tmp_path / "run"
    r = run_cli("fit", labels, *TINY_FIT, "--epochs", "1", "--out", out)
    assert_clean_exit(r, allowed=(2,))
    assert "no label column" in r.err and "path,label" in r.err, r.err
    assert not (out / "checkpoints").exists() and not (out / "bundle").exists()


def test_csv_row_with_missing_field_names_the_row(corpus: Path, tmp_path: Path) -> None:
    text = "path,label\n" + _csv_rows(corpus, GOOD, lambda n: n.split("/")[0])
    text += (corpus / GOOD[0]).as_posix() + "\n"  # row 14: no label
    labels = write_csv(tmp_path / "labels.csv", text)
    r = run_cli("stats", labels, "--model", "test_efficientnet", "--no-progress")
    assert_clean_exit(r, allowed=(2,))
    assert "row 14" in r.err, r.err


def test_csv_extra_columns_and_missing_files(corpus: Path, tmp_path: Path) -> None:
    rows = "".join(
        f"{(corpus / n).as_posix()},{n.split('/')[0]},note {i}\n" for i, n in enumerate(GOOD)
    )
    rows += f"{(corpus / 'red/gone.jpg').as_posix()},red,deleted\n"
    labels = write_csv(tmp_path / "labels.csv", "path,label,notes\n" + rows)
    r = run_cli("stats", labels, "--model", "test_efficientnet", "--no-progress")
    assert_clean_exit(r, allowed=(0,))
    assert "images: 12 readable, 1 corrupt/unreadable" in r.out, r.out
    assert "gone.jpg (missing file)" in r.out + r.err


def test_evaluate_csv_with_unknown_labels_stops_before_work(
    corpus: Path, corpus_bundle: Path, tmp_path: Path
) -> None:
    labels = write_csv(
        tmp_path / "labels.csv",
        "path,label\n"
        + _csv_rows(corpus, GOOD, lambda n: "rouge" if n.startswith("red") else "green"),
    )
    r = run_cli("evaluate", corpus_bundle, labels, "--split", "all")
    assert_clean_exit(r, allowed=(2,))
    assert "'rouge'" in r.err and "did you mean 'red'" in r.err, r.err


def test_missing_dataset_and_empty_folder(tmp_path: Path) -> None:
    r = run_cli("stats", tmp_path / "nowhere", "--no-progress")
    assert_clean_exit(r, allowed=(2,))
    assert "does not exist" in r.err
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    r = run_cli("stats", tmp_path / "empty", "--no-progress")
    assert_clean_exit(r, allowed=(2,))
    assert "contain no images" in r.err


def test_all_bad_images_stop_before_training(tmp_path: Path) -> None:
    for cls in ("a", "b"):
        (tmp_path / "d" / cls).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "d" / cls / f"{i}.jpg").write_bytes(b"<html>not an image</html>")
    out = tmp_path / "run"
    r = run_cli("fit", tmp_path / "d", *TINY_FIT, "--epochs", "1", "--out", out)
    assert_clean_exit(r, allowed=(2,))
    assert "fewer than 2 readable training images" in r.err, r.err
    assert not (out / "checkpoints").exists()
