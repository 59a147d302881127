"""``graft fit`` ends with the run's HTML report unless ``--no-report``."""

from __future__ import annotations

from graft.report import SECTION_IDS
from graft.train import fit


def test_fit_writes_the_report_with_every_section(tiny_folder, tiny_opts, tmp_path):
    result = fit(tiny_folder, out=str(tmp_path / "r"), recipe="head", epochs=1, **tiny_opts)
    page = (result.run_dir / "report.html").read_text(encoding="utf-8")
    for section in SECTION_IDS:
        assert f'id="{section}"' in page, section
    assert "data:image/png;base64," in page


def test_no_report_option(tiny_folder, tiny_opts, tmp_path):
    result = fit(tiny_folder, out=str(tmp_path / "r"), recipe="head", epochs=1, report=False,
                 **tiny_opts)  # fmt: skip
    assert not (result.run_dir / "report.html").exists()
    assert (result.run_dir / "bundle" / "model.json").is_file()


def test_fit_ends_with_the_installed_reporter(tiny_folder, tiny_opts, tmp_path):
    from graft.train import reporters

    calls = []

    def reporter(run_dir, **options):
        calls.append((run_dir, options, (run_dir / "metrics.json").is_file()))
        return None

    previous = reporters.set_run_reporter(reporter)
    try:
        result = fit(tiny_folder, out=str(tmp_path / "r"), recipe="head", epochs=1, **tiny_opts)
    finally:
        reporters.set_run_reporter(previous)
    # once, on the run folder, after every run file is written; the page is the reporter's alone
    assert calls == [(result.run_dir, {}, True)]
    assert not (result.run_dir / "report.html").exists()
