"""The header (backbone, classes, input size, normalization, graft version, final metrics) and the
resolved config section.

Example:
    >>> header_section(ctx).id, config_section(ctx).id  # doctest: +SKIP
    ('header', 'config')
"""

from __future__ import annotations

from typing import Any

from graft.report.context import ReportContext
from graft.report.html import Section, esc, table


def header_section(ctx: ReportContext) -> Section:
    """What was trained, on what, and how well."""
    run, meta = ctx.run, ctx.run.bundle_meta or {}
    section = Section("header", "Run")
    if "bundle" in run.notes:
        section.notes.append(run.notes["bundle"])
    spec, cfg = meta.get("spec") or {}, meta.get("data_config") or {}
    classes = meta.get("classes") or []
    rows = [
        ("run folder", str(run.run_dir)),
        ("backbone", spec.get("name") or run.config.get("model", "?")),
        ("recipe", (meta.get("recipe") or {}).get("name") or run.config.get("recipe", "?")),
        (
            "classes",
            f"{len(classes)}: "
            + ", ".join(map(str, classes[:50]))
            + (" ..." if len(classes) > 50 else ""),
        ),
        ("input size", " x ".join(map(str, cfg.get("input_size") or [])) or "?"),
        ("normalization", _normalization(cfg)),
        ("graft version", _versions(meta)),
        ("data", run.config.get("data", "?")),
    ]
    section.body = (
        table(["", "value"], rows, numeric=False) + _metrics(run.metrics) + _weights(run.weights)
    )
    return section


def _normalization(cfg: dict[str, Any]) -> str:
    if not cfg.get("mean"):
        return "?"
    fmt = lambda v: "(" + ", ".join(f"{x:.4f}" for x in v) + ")"  # noqa: E731
    mode = cfg.get("normalization") or "pretrained"
    return f"{mode}: mean {fmt(cfg['mean'])}, std {fmt(cfg['std'])}"


def _versions(meta: dict[str, Any]) -> str:
    from graft import __version__ as current

    trained = meta.get("graft_version")
    if trained and trained != current:
        return f"{trained} (trained), {current} (report)"
    return str(trained or current)


def _metrics(metrics: dict[str, Any]) -> str:
    if not metrics:
        return '<p class="note">no final metrics (metrics.json is missing)</p>'
    rows = [(k, float(v) if isinstance(v, (int, float)) else str(v)) for k, v in metrics.items()]
    return "<h3>Final metrics</h3>" + table(["metric", "value"], rows)


def _weights(weights: dict[str, Any]) -> str:
    """WiSE-FT's validation curve and the averaged epochs (``metrics.json`` ``"weights"``)."""
    html = ""
    wise = weights.get("wise")
    if wise:
        rows = [(f"{a:.1f}" + (" (chosen)" if a == wise["alpha"] else ""), acc)
                for a, acc in wise["curve"]]  # fmt: skip
        html += (
            "<h3>WiSE-FT: validation accuracy by alpha</h3><p>alpha 0 = head-phase weights, "
            "1 = fine-tuned weights; BatchNorm statistics "
            f"{esc(str(wise.get('bn', '?')))}.</p>" + table(["alpha", "val acc"], rows)
        )
    avg = weights.get("average")
    if avg:
        rows = [("method", str(avg.get("method"))), ("epochs averaged", str(avg.get("epochs"))),
                ("BatchNorm statistics", str(avg.get("bn", "?")))]  # fmt: skip
        if "soup_curve" in avg:
            rows.append(("greedy-soup val acc per step", str(avg["soup_curve"])))
        html += "<h3>Weight averaging</h3>" + table(["", "value"], rows, numeric=False)
    return html


def config_section(ctx: ReportContext) -> Section:
    """``config.yaml`` as written by ``graft fit``."""
    section = Section("config", "Resolved config (config.yaml)")
    section.body = f"<pre>{esc(ctx.run.config_text)}</pre>"
    return section
