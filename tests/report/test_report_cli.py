"""``graft report`` on the command line: clean errors naming what is missing, options honoured."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from reportparse import parse_report

from graft.cli import main
from graft.errors import GraftError
from graft.report import RunFolderError, write_report


def test_a_missing_folder_is_a_clean_error(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "nope does not exist" in err and "--out folder of `graft fit`" in err
    assert "Traceback" not in err


def test_a_folder_that_is_not_a_run_names_what_is_missing(tmp_path: Path, capsys) -> None:
    (tmp_path / "photos").mkdir()
    assert main(["report", str(tmp_path / "photos")]) == 2
    err = capsys.readouterr().err
    assert "is not a graft run folder: missing config.yaml and any training output" in err
    assert "bundle/model.json, metrics.csv, logs/metrics.csv" in err

    (tmp_path / "photos" / "config.yaml").write_text("model: x\n")
    with pytest.raises(
        RunFolderError, match=r"missing any training output \(bundle/model.json"
    ) as info:
        write_report(tmp_path / "photos")
    assert isinstance(info.value, GraftError)


def test_outputs_without_config_name_config_yaml(tiny_run: Path, tmp_path: Path) -> None:
    run = Path(
        shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns("checkpoints"))
    )
    (run / "config.yaml").unlink()
    with pytest.raises(RunFolderError, match=r"missing config\.yaml\. Pass the --out folder"):
        write_report(run)
    (run / "report.html").unlink(missing_ok=True)
    with pytest.raises(RunFolderError, match="is a file, not a run folder"):
        write_report(run / "metrics.csv")


def test_bad_options_are_clean_errors(tiny_run: Path, tmp_path: Path, capsys) -> None:
    assert main(["report", str(tiny_run), "--gradcam", "-1"]) == 2
    assert "--gradcam must be at least 0, got -1" in capsys.readouterr().err
    assert main(["report", str(tiny_run), "--eval", str(tmp_path / "none")]) == 2
    assert "is not a folder; pass the --out folder of `graft evaluate`" in capsys.readouterr().err
    (tmp_path / "report.html").mkdir()  # --out is a folder; OUT/report.html must be a file
    assert main(["report", str(tiny_run), "--out", str(tmp_path)]) == 2
    assert "is a folder; pass a file name" in capsys.readouterr().err


def test_the_command_writes_the_page_with_the_requested_counts(
    tiny_run: Path, tmp_path: Path, capsys
) -> None:
    folder = tmp_path / "sub"
    out = folder / "report.html"
    assert (
        main(["report", str(tiny_run), "--out", str(folder), "--gradcam", "2", "--mistakes", "1"])
        == 0
    )
    assert capsys.readouterr().out.strip() == str(out)
    page = parse_report(out)
    assert len(page.images_in("gradcam", "gradcam")) == 2
    assert len(page.images_in("mistakes", "mistake")) <= 1
    assert not list(out.parent.glob(".*.tmp"))  # written atomically, nothing left behind
