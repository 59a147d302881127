"""``select``: which backbone for my data and my latency budget, by measurement.

For each candidate: its cost on this device (:mod:`graft.select.cost`), then features extracted once
on a stratified sample of the user's training images, scored by transferability (LogME, optional
H-score/LEEP/NCE) and cross-validated linear-probe and kNN accuracy. Rules of thumb
(:mod:`graft.select.rules`) only order and filter the candidates and explain; the ranking is by the
measured score (``rank_by``), candidates within the latency budget first.

``rank_by="consensus"`` (the default) averages, over the requested scores, each candidate's rank
position scaled to 0 (worst) .. 1 (best), so no single noisy score decides alone.

Example:
    >>> r = select_models("data/pets", candidates=["efficientnet_lite0", "tv:mobilenet_v2"],
    ...            latency_budget_ms=30, out="runs/select")  # doctest: +SKIP
    >>> print(r.table())  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from graft.errors import (
    ConfigError,
    GraftError,
    UnknownNameError,
    WeightsNotFoundError,
)
from graft.log import get_logger
from graft.select.cost import measure_cost, quick_peak_memory, start_peak_memory
from graft.select.extract import Extracted, extract_features
from graft.select.outputs import fit_command, folder_name, write_outputs
from graft.select.probes import cv_knn_accuracy, cv_probe_accuracy
from graft.select.profile import dataset_profile, stratified_sample
from graft.select.ranking import consensus, no_pick_reason, rank_rows
from graft.select.result import SelectionResult
from graft.select.rules import Advice, RuleSet, load_rules
from graft.select.scores import hscore, leep, logme, nce
from graft.select.settings import (
    DEFAULT_SCORES,
    EVERY_CANDIDATE,
    MEMORY_MODES,
    RANK_BY,
    SCORE_NAMES,
    args_for,
    check_model_args,
    check_settings,
    resolve_old_spellings,
)

# the public names of this module before its helpers moved to settings / ranking / outputs
__all__ = [
    "CONTROL_SUFFIX",
    "DEFAULT_SCORES",
    "EVERY_CANDIDATE",
    "MEMORY_MODES",
    "RANK_BY",
    "SCORE_NAMES",
    "SOURCE_SCORES",
    "args_for",
    "check_model_args",
    "consensus",
    "fit_command",
    "rank_rows",
    "select",
    "select_models",
    "write_outputs",
]

log = get_logger("graft.select")

SOURCE_SCORES = ("leep", "nce")  # need the pretrained classifier's probabilities
CONTROL_SUFFIX = "@random"


def select_models(
    data: str | os.PathLike,
    model: Sequence[str] | str | None = None,
    *,
    available: bool = False,
    latency_budget_ms: float | None = None,
    accelerator: str = "auto",
    devices: int | str = 1,
    sample_per_class: int = 20,
    image_size: int | None = None,
    scores: Sequence[str] = DEFAULT_SCORES,
    rank_by: str = "consensus",
    control: bool = False,
    weights: str = "pretrained",
    max_candidates: int | None = None,
    rules: str | os.PathLike | RuleSet | None = None,
    batch_size: int = 16,
    repeats: int = 5,
    memory: bool | str = "fast",
    seed: int = 0,
    out: str | os.PathLike | None = None,
    model_args: Mapping[str, Mapping[str, Any]] | None = None,
    candidates: Sequence[str] | str | None = None,
    device: str | None = None,
    batch: int | None = None,
    pretrained: bool | None = None,
) -> SelectionResult:
    """Measure each candidate backbone on ``data`` and this device; return the ranked table.

    ``model``: the candidates (names or "a,b,c"), or ``available=True`` (every model with offline
    weights; also the default when no model is given). Candidates whose weights cannot be found are reported
    in ``skipped`` with the reason. ``control=True`` adds a randomly initialised copy of the first
    measured candidate (``NAME@random``) as a sanity check. ``weights="none"`` measures every
    candidate with random weights (for tests and for comparing architectures alone).
    ``accelerator`` / ``devices``: where latency and throughput are measured (one device; as in
    Lightning). ``batch_size``: the batch for throughput and peak memory. (``candidates=``,
    ``device=``, ``batch=`` and ``pretrained=`` are the old spellings, kept for one release.)
    ``scores`` default to LogME and kNN (cheap, and the best-ranking in the bench); add ``probe``,
    ``hscore``, ``leep``, ``nce`` to compute them too. ``repeats``: timed passes per latency median.
    ``memory``: ``"fast"`` (one pass in this process), ``"process"`` (a fresh process per candidate,
    isolated but a Python start and imports each; ``True`` means this), ``"off"`` (``False``).
    ``model_args``: per candidate name, extra :func:`graft.create_model` arguments (``"*"``: every
    candidate), e.g. a hybrid with a randomly initialised ViT branch:
    ``{"resnet18+vit_small_patch16_224": {"pretrained": {"cnn": True, "vit": False}}}``.
    LEEP and NCE need the backbone's pretrained classifier: for hybrids and other models without
    one they are left empty with a note (``row["score_notes"]``), and the consensus ranks such a
    candidate on the other scores.
    With ``out``, writes ``selection.json``,
    ``selection.txt`` and ``score_vs_latency.png`` there.

    Example:
        >>> r = select_models("data/pets", available=True, latency_budget_ms=20)  # doctest: +SKIP
        >>> r.top, r.fit_command  # doctest: +SKIP
        ('efficientnet_lite0', 'graft fit data/pets --model efficientnet_lite0 --out runs/fit-efficientnet_lite0')
    """
    started = time.perf_counter()
    candidates, device, batch_size, weights = resolve_old_spellings(
        model, candidates, accelerator, devices, device, batch_size, batch, weights, pretrained
    )
    settings = check_settings(locals())
    ruleset = rules if isinstance(rules, RuleSet) else load_rules(rules)
    names = _candidate_names(candidates, available)
    settings["model_args"] = check_model_args(model_args, names)
    splits = _scan(data)
    profile = dataset_profile(splits, seed=seed).to_dict()
    context = {**profile, "latency_budget_ms": latency_budget_ms, "device": device}
    sample = stratified_sample(splits.train, sample_per_class, seed)
    settings["classes"] = list(splits.classes)
    advice = ruleset.advise(context, names)
    rows, skipped = _measure_all(advice, ruleset, context, sample, settings)
    if control and rows:
        rows.append(_control_row(rows[0]["candidate"], sample, settings))
    warnings = rank_rows(rows, settings)
    result = SelectionResult(rows, skipped, profile, settings, warnings=warnings)
    result.rules = [rule.explain(context) for rule in ruleset.matching(context)]
    result.top = next(
        (r["candidate"] for r in rows if not r["control"] and r["within_budget"] is not False), None
    )
    result.fit_command = (
        fit_command(
            data, result.top, image_size, device, weights != "none", args_for(settings, result.top)
        )
        if result.top
        else None
    )
    if result.top is None and rows:
        result.warnings.append(no_pick_reason(rows, latency_budget_ms))
    result.seconds = time.perf_counter() - started
    if out is not None:
        write_outputs(result, out)
    return result


def _candidate_names(candidates: Sequence[str] | str | None, available: bool) -> list[str]:
    if isinstance(candidates, str):
        candidates = [c.strip() for c in candidates.split(",") if c.strip()]
    if candidates and available:
        raise ConfigError("give either candidates or available=True (--available), not both.")
    if not candidates:
        try:
            from graft.models import available_models
        except ImportError as e:
            raise ConfigError(
                "this graft cannot list models with offline weights; pass candidates."
            ) from e
        names = [e["name"] if isinstance(e, dict) else str(e) for e in available_models()]
        if not names:
            raise ConfigError("no model has offline weights here; pass candidates explicitly.")
        return names
    return list(dict.fromkeys(candidates))


def _scan(data: str | os.PathLike):
    from graft.data import scan_dataset

    splits = scan_dataset(data)
    if not splits.train:
        raise ConfigError(
            f"{data} has no training images; select needs labelled images to score models."
        )
    return splits


def _measure_all(
    advice: list[Advice], ruleset: RuleSet, context: dict, sample: list, settings: dict
) -> tuple[list[dict], list[dict]]:
    rows, skipped = [], []
    limit = settings["max_candidates"]
    for a in advice:
        if limit is not None and len(rows) >= limit:
            skipped.append(
                {"candidate": a.name, "reason": f"beyond max_candidates={limit} in rule order"}
            )
            continue
        try:
            row = _measure_one(a, ruleset, context, sample, settings)
        except UnknownNameError:
            raise
        except GraftError as e:
            log.warning("skipping %s: %s", a.name, e)
            skipped.append({"candidate": a.name, "reason": str(e)})
            continue
        except (RuntimeError, ValueError) as e:  # e.g. an input size too small for the model
            log.warning("skipping %s: %s: %s", a.name, type(e).__name__, e)
            reason = f"failed while measuring ({type(e).__name__}: {str(e).splitlines()[0][:300]})"
            skipped.append({"candidate": a.name, "reason": reason})
            continue
        if "excluded" in row:
            skipped.append({"candidate": a.name, "reason": row["excluded"]})
        else:
            rows.append(row)
    return rows, skipped


def _measure_one(a: Advice, ruleset: RuleSet, context: dict, sample: list, settings: dict) -> dict:
    from graft.data import resolve_data_config
    from graft.models import create_model

    log.info("measuring %s", a.name)
    model = _build(create_model, a.name, settings)
    data_cfg = resolve_data_config(model, image_size=settings["image_size"])
    facts = {
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "input_px": int(data_cfg["input_size"][-1]),
    }
    (checked,) = ruleset.advise(context, [a.name], {a.name: facts})
    if checked.excluded:
        return {"excluded": checked.excluded}
    row = _evaluate(
        model, a.name, data_cfg, sample, settings, pretrained=settings["weights"] != "none"
    )
    row["control"] = False
    row["family"], row["notes"] = a.family, a.notes
    return row


def _build(create_model: Any, name: str, settings: dict, pretrained: bool = True) -> Any:
    """Candidate ``name`` with its model arguments; a missing-weights error says how to go on."""
    from graft.models.factory import no_pretrained

    kwargs = args_for(settings, name)
    if "+" in name and settings["image_size"]:  # a hybrid's branches at the size fit will use
        kwargs.setdefault("image_size", settings["image_size"])
    wanted = kwargs.pop("pretrained", True)
    weights = wanted if (pretrained and settings["weights"] != "none") else no_pretrained(wanted)
    try:
        return create_model(name, pretrained=weights, **kwargs)
    except WeightsNotFoundError as e:
        if "+" not in name:
            raise
        raise WeightsNotFoundError(
            f"{e} For a hybrid, start that branch from random weights with "
            f"--model-arg '{name}:pretrained={{cnn: true, vit: false}}' (Python: "
            f"model_args={{'{name}': {{'pretrained': {{'vit': False}}}}}})."
        ) from e


def _control_row(name: str, sample: list, settings: dict) -> dict:
    from graft.data import resolve_data_config
    from graft.models import create_model

    model = _build(create_model, name, settings, pretrained=False)
    data_cfg = resolve_data_config(model, image_size=settings["image_size"])
    row = _evaluate(model, name + CONTROL_SUFFIX, data_cfg, sample, settings, pretrained=False)
    row["family"], row["notes"] = (
        None,
        ["control: same architecture with random weights, a sanity check"],
    )
    return row


def _evaluate(
    model, name: str, data_cfg: dict, sample: list, settings: dict, pretrained: bool
) -> dict:
    device, input_size = settings["device"], data_cfg["input_size"]
    cost = measure_cost(
        model, input_size, device, settings["batch_size"], repeats=settings["repeats"], memory=False
    )
    # the memory probe runs in a fresh process while this one extracts features (after the timing)
    memory = (
        start_peak_memory(model, input_size, settings["batch_size"], device)
        if settings["memory"] == "process"
        else None
    )
    want_source = pretrained and any(s in settings["scores"] for s in SOURCE_SCORES)
    has_head = _has_source_head(model)
    store = Path(settings["out"]) / "features" / folder_name(name) if settings["out"] else None
    ex = extract_features(
        model,
        sample,
        settings["classes"],
        settings["image_size"],
        device,
        with_source_probs=want_source and has_head,
        store=store,
    )
    if memory is not None:
        peak, method = memory.result()
    elif settings["memory"] == "fast":
        peak, method = quick_peak_memory(model, input_size, settings["batch_size"], device)
    else:
        peak, method = None, "off"
    row: dict[str, Any] = {
        "candidate": name,
        "control": not pretrained,
        "params_m": cost.params / 1e6,
        "gmacs": cost.macs / 1e9,
        "latency_ms": cost.latency_ms,
        "latency_spread": cost.latency_spread,
        "throughput": cost.throughput,
        "peak_mem_mb": peak,
        "memory_method": method,
        "input_size": list(cost.input_size),
        "threads": cost.threads,
        "feature_dim": int(ex.features.shape[1]),
        "sampled_images": int(ex.features.shape[0]),
        "extract_seconds": ex.seconds,
    }
    row["source_head"] = _source_head_note(model, pretrained, has_head)
    row.update(_scores(ex, settings["scores"], settings["seed"], row))
    return row


def _has_source_head(model: Any) -> bool:
    """True when the model still has its pretrained classifier (a hybrid never has one)."""
    if "branches" in (getattr(model, "pretrained_cfg", None) or {}):
        return False
    return getattr(model, "num_classes", 0) > 0


def _source_head_note(model: Any, pretrained: bool, has_head: bool) -> str | None:
    """Why LEEP/NCE cannot be computed for this model (None when they can)."""
    if "branches" in (getattr(model, "pretrained_cfg", None) or {}):
        return "a hybrid has no pretrained classifier (its fused features feed a new head)"
    if not pretrained:
        return "random weights: no pretrained classifier"
    if not has_head:
        return "the model has no pretrained classifier"
    return None


def _scores(ex: Extracted, names: Sequence[str], seed: int, row: dict) -> dict[str, float | None]:
    f, y = ex.features, ex.labels
    out: dict[str, float | None] = {}
    for name in names:
        if name in SOURCE_SCORES and ex.source_probs is None:
            out[name] = None
            reason = row.get("source_head") or "no source-classifier probabilities"
            row.setdefault("score_notes", []).append(
                f"{name}: skipped, it needs the pretrained source classifier's probabilities; "
                f"{reason}"
            )
            continue
        started = time.perf_counter()
        if name == "logme":
            out[name] = logme(f, y)
        elif name == "hscore":
            out[name] = hscore(f, y)
        elif name == "probe":
            out[name] = cv_probe_accuracy(f, y, seed=seed)
        elif name == "knn":
            out[name] = cv_knn_accuracy(f, y, seed=seed)
        elif name == "leep":
            out[name] = leep(ex.source_probs, y)
        elif name == "nce":
            out[name] = nce(ex.source_probs, y)
        row.setdefault("score_seconds", {})[name] = round(time.perf_counter() - started, 4)
    return out


# its name before graft.select became only a package (kept for one release)
select = select_models
