"""Run reports: one self-contained HTML page per run (curves, confusion matrix, per-class scores,
confident mistakes, Grad-CAM, dataset statistics, config), and Grad-CAM itself.

Example:
    >>> from graft.report import write_report
    >>> write_report("runs/pets")  # doctest: +SKIP
    PosixPath('runs/pets/report.html')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graft.lazy import lazy_exports
from graft.train.reporters import set_run_reporter

_API = {
    "write_report": "graft.report.api",
    "write_report_safely": "graft.report.api",
    "SECTION_IDS": "graft.report.api",
    "grad_cam": "graft.report.gradcam",
    "CamResult": "graft.report.gradcam",
    "NoSpatialMapError": "graft.report.gradcam",
    "RunFolderError": "graft.report.collect",
}
__all__ = sorted(_API)


__getattr__, __dir__ = lazy_exports(__name__, _API)


def _write_run_report(run_dir: Path, **options: Any) -> Path | None:
    """``fit`` and ``evaluate`` end with this (graft.train.reporters): the page, never an error."""
    from graft.report.api import write_report_safely

    return write_report_safely(run_dir, **options)


# graft.train and graft.inference sit below this package: it installs its writer with them
set_run_reporter(_write_run_report)
