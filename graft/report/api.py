"""``write_report``: one self-contained HTML page for a run folder (``graft report RUN_DIR``).

Sections, each a ``<section>`` with a stable id: ``header``, ``curves``, ``confusion-matrix``,
``per-class``, ``mistakes``, ``gradcam``, ``dataset``, ``config``. A section whose inputs are missing
(no data folder, no bundle, no evaluation) says why in a note instead of failing the report; a
section that fails unexpectedly does the same with the error. The page embeds its figures as PNG
``data:`` URIs and loads nothing from elsewhere; what was plotted is embedded as JSON
(``<script type="application/json" id="report-data">``) for tools and tests.

Example:
    >>> path = write_report("runs/pets", gradcam=8, mistakes=12)  # doctest: +SKIP
    >>> path  # doctest: +SKIP
    PosixPath('runs/pets/report.html')
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graft.errors import ConfigError
from graft.io import write_text
from graft.log import get_logger
from graft.report.collect import read_run
from graft.report.confusion import confusion_section, per_class_section
from graft.report.context import ReportContext, ReportOptions
from graft.report.curves import plot_curves
from graft.report.datastats import dataset_section
from graft.report.html import Section, esc, img, page
from graft.report.mistakes import mistakes_section
from graft.report.overlays import gradcam_section
from graft.report.summary import config_section, header_section

log = get_logger("graft.report")
SECTION_IDS = (
    "header",
    "curves",
    "confusion-matrix",
    "per-class",
    "mistakes",
    "gradcam",
    "dataset",
    "config",
)


def write_report(
    run_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    gradcam: int = 8,
    mistakes: int = 12,
    evaluation: str | os.PathLike | None = None,
    max_images: int = 256,
    stats_images: int = 200,
) -> Path:
    """Write the HTML report of ``run_dir`` to ``out`` (default ``run_dir/report.html``), atomically.

    ``gradcam``: images with a Grad-CAM overlay; ``mistakes``: mistake thumbnails; ``evaluation``: a
    ``graft evaluate --out`` folder (default: the newest one inside ``run_dir``, else predictions on
    at most ``max_images`` validation images); ``stats_images``: images decoded for pixel statistics.

    Example:
        >>> write_report("runs/pets", out="pets.html", evaluation="runs/pets/eval")  # doctest: +SKIP
        PosixPath('pets.html')
    """
    for name, value in (("gradcam", gradcam), ("mistakes", mistakes)):
        if value < 0:
            raise ConfigError(f"--{name} must be 0 or more, got {value}")
    for name, value in (("max_images", max_images), ("stats_images", stats_images)):
        if value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}")
    started = time.perf_counter()
    run = read_run(run_dir)
    eval_dir = Path(evaluation) if evaluation is not None else None
    if eval_dir is not None and not eval_dir.is_dir():
        raise ConfigError(
            f"--eval {eval_dir} is not a folder; pass the --out folder of `graft evaluate`."
        )
    dest = Path(out) if out is not None else run.run_dir / "report.html"
    if dest.is_dir():
        raise ConfigError(
            f"--out {dest} is a folder; pass a file name such as {dest / 'report.html'}."
        )
    ctx = ReportContext(run, ReportOptions(gradcam, mistakes, max_images, stats_images, eval_dir))
    sections, data = build_sections(ctx)
    write_text(dest, page(f"graft run report: {run.run_dir.name}", sections, data))
    log.info("report written to %s in %.1f s", dest, time.perf_counter() - started)
    return dest


def write_report_safely(run_dir: Path, **options: Any) -> Path | None:
    """:func:`write_report`, but a failure is logged as a warning and returns ``None`` (never raises).

    For the end of ``graft fit`` / ``graft evaluate``: the report must not fail a finished run.

    Example:
        >>> write_report_safely(Path("runs/pets"))  # doctest: +SKIP
        PosixPath('runs/pets/report.html')
    """
    try:
        return write_report(run_dir, **options)
    except Exception as e:  # noqa: BLE001 - a report is a by-product; training results stand
        log.warning(
            "the run report for %s could not be written: %s: %s", run_dir, type(e).__name__, e
        )
        return None


def build_sections(ctx: ReportContext) -> tuple[list[Section], dict[str, Any]]:
    """Every section in order, and the embedded data (what each figure shows, counts)."""
    data: dict[str, Any] = {"sections": list(SECTION_IDS)}
    makers: list[tuple[str, str, Callable[[], Section]]] = [
        ("header", "Run", lambda: header_section(ctx)),
        ("curves", "Training curves", lambda: curves_section(ctx, data)),
        ("confusion-matrix", "Confusion matrix", lambda: confusion_section(ctx)),
        ("per-class", "Per-class scores", lambda: per_class_section(ctx)),
        ("mistakes", "Most confident mistakes", lambda: mistakes_section(ctx)),
        ("gradcam", "Grad-CAM", lambda: gradcam_section(ctx)),
        ("dataset", "Dataset", lambda: dataset_section(ctx)),
        ("config", "Resolved config (config.yaml)", lambda: config_section(ctx)),
    ]
    sections = []
    for section_id, title, make in makers:
        try:
            sections.append(make())
        except Exception as e:  # noqa: BLE001 - one broken section must not hide the others
            log.warning("report section %s failed: %s: %s", section_id, type(e).__name__, e)
            sections.append(
                Section(section_id, title, notes=[f"this section failed: {type(e).__name__}: {e}"])
            )
    data["images"] = {s.id: s.body.count("<img ") for s in sections}
    return sections, data


def curves_section(ctx: ReportContext, data: dict[str, Any]) -> Section:
    """Loss, accuracy and per-group learning rates with the unfreezing events."""
    curves = plot_curves(ctx.run, lambda: _group_names(ctx))
    data["curves"] = curves.plotted
    section = Section("curves", "Training curves", notes=list(curves.notes))
    if curves.image:
        events = "; ".join(f"epoch {e.get('epoch')}: {e.get('phase')} ({len(e.get('trainable') or [])} groups "
                           "trainable)" for e in ctx.run.events)  # fmt: skip
        section.body = (img(curves.image, "training curves", "plot curves", lr_groups=len(curves.plotted["lr"]))
                        + (f"<p>Phases (dashed lines): {esc(events)}</p>" if events else ""))  # fmt: skip
    return section


def _group_names(ctx: ReportContext) -> list[str]:
    """The bundle model's parameter groups, stem -> head (:class:`graft.train.groups.ModelGroups`)."""
    from graft.train.groups import ModelGroups

    return list(ModelGroups.of(ctx.bundle().model).names)
