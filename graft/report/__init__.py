"""Run reports: one self-contained HTML page per run (curves, confusion matrix, per-class scores,
confident mistakes, Grad-CAM, dataset statistics, config), and Grad-CAM itself.

Example:
    >>> from graft.report import write_report
    >>> write_report("runs/pets")  # doctest: +SKIP
    PosixPath('runs/pets/report.html')
"""

from __future__ import annotations

from graft.lazy import lazy_exports

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
