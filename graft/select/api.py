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

import copy
import json
import os
import shlex
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from graft.errors import (
    ConfigError,
    GraftError,
    UnknownNameError,
    WeightsNotFoundError,
    raise_unknown,
)
from graft.log import get_logger
from graft.select.cost import check_device, measure_cost, quick_peak_memory, start_peak_memory
from graft.select.extract import Extracted, extract_features
from graft.select.probes import cv_knn_accuracy, cv_probe_accuracy
from graft.select.profile import dataset_profile, stratified_sample
from graft.select.result import SelectionResult, pareto_front
from graft.select.rules import Advice, RuleSet, load_rules
from graft.select.scores import hscore, leep, logme, nce

log = get_logger("graft.select")

SCORE_NAMES = ("logme", "probe", "knn", "hscore", "leep", "nce")
DEFAULT_SCORES = ("logme", "knn")  # the cheap ones that ranked best in bench/bench_select.py
MEMORY_MODES = ("fast", "process", "off")
RANK_BY = (*SCORE_NAMES, "consensus")
SOURCE_SCORES = ("leep", "nce")  # need the pretrained classifier's probabilities
CONTROL_SUFFIX = "@random"
EVERY_CANDIDATE = "*"  # model_args key for arguments that apply to every candidate


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
    candidates, device, batch_size, weights = _old_spellings(
        model, candidates, accelerator, devices, device, batch_size, batch, weights, pretrained
    )
    settings = _settings(locals())
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
        result.warnings.append(_no_pick_reason(rows, latency_budget_ms))
    result.seconds = time.perf_counter() - started
    if out is not None:
        write_outputs(result, out)
    return result


def _settings(args: dict[str, Any]) -> dict[str, Any]:
    check_device(args["device"])
    scores = list(dict.fromkeys(args["scores"]))
    for name in scores:
        if name not in SCORE_NAMES:
            raise_unknown("score", name, SCORE_NAMES)
    if not scores:
        raise ConfigError(f"give at least one score; valid: {', '.join(SCORE_NAMES)}.")
    if args["rank_by"] not in RANK_BY:
        raise_unknown("rank_by", args["rank_by"], RANK_BY)
    if args["rank_by"] != "consensus" and args["rank_by"] not in scores:
        scores.append(args["rank_by"])
    args["memory"] = _memory_mode(args["memory"])
    if args["repeats"] < 1:
        raise ConfigError(f"repeats must be at least 1 (5 is the default), got {args['repeats']}.")
    budget = args["latency_budget_ms"]
    if budget is not None and not budget > 0:
        raise ConfigError(f"latency budget must be positive (ms), got {budget}.")
    if args["sample_per_class"] < 2:
        raise ConfigError(
            f"sample_per_class must be at least 2 (cross-validation), got {args['sample_per_class']}."
        )
    keys = (
        "latency_budget_ms",
        "device",
        "sample_per_class",
        "image_size",
        "rank_by",
        "batch_size",
        "repeats",
        "memory",
        "seed",
        "max_candidates",
        "weights",
        "accelerator",
    )
    out = os.fspath(args["out"]) if args["out"] is not None else None
    return {
        **{k: args[k] for k in keys},
        "data": os.fspath(args["data"]),
        "scores": scores,
        "out": out,
    }


def _old_spellings(model, candidates, accelerator, devices, device, batch_size, batch, weights,
                   pretrained) -> tuple[Any, str, int, str]:  # fmt: skip
    """``(candidates, torch device kind, batch_size, weights)`` from the new and the old names."""
    from graft.distributed import single_device
    from graft.options import warn_deprecated

    if candidates is not None:
        warn_deprecated("candidates=", "model=")
        model = model or candidates
    if batch is not None:
        warn_deprecated("batch=", "batch_size=")
        batch_size = batch
    if pretrained is not None:
        warn_deprecated("pretrained=", "weights='pretrained' or weights='none'")
        weights = "pretrained" if pretrained else "none"
    if weights not in ("pretrained", "none"):
        raise ConfigError(
            f"select measures several models: weights must be pretrained or none, got {weights!r}."
        )
    resolved = single_device(accelerator, devices, device, what="select")
    return model, ("cuda" if resolved.startswith("cuda") else resolved), batch_size, weights


def _memory_mode(memory: bool | str) -> str:
    if memory is True:
        return "process"
    if memory is False or memory is None:
        return "off"
    if memory not in MEMORY_MODES:
        raise_unknown("memory mode", str(memory), MEMORY_MODES)
    return str(memory)


def check_model_args(
    model_args: Mapping[str, Mapping[str, Any]] | None, names: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Validate per-candidate model arguments (keys: candidate names or ``"*"``); a JSON-ready copy.

    Example:
        >>> check_model_args({"a+b": {"fusion": "gated"}}, ["a+b", "c"])
        {'a+b': {'fusion': 'gated'}}
    """
    if not model_args:
        return {}
    if not isinstance(model_args, Mapping):
        raise ConfigError(
            "model_args must map a candidate name (or '*' for every candidate) to its arguments, "
            f"e.g. {{'a+b': {{'fusion': 'gated'}}}}; got {type(model_args).__name__}."
        )
    out = {}
    for name, args in model_args.items():
        if name != EVERY_CANDIDATE and name not in names:
            raise_unknown(
                "candidate in model_args",
                str(name),
                [*names, EVERY_CANDIDATE],
                hint="Prefix a model argument with one of the candidates "
                "(--model-arg 'NAME:KEY=VALUE'), or leave the prefix out for every candidate.",
            )
        if not isinstance(args, Mapping):
            raise ConfigError(f"model_args for {name} must be a mapping, got {args!r}.")
        out[str(name)] = json.loads(json.dumps(dict(args)))  # recorded in selection.json
    return out


def args_for(settings: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The model arguments of candidate ``name``: the ``"*"`` ones, then its own on top."""
    given = settings.get("model_args") or {}
    return copy.deepcopy({**given.get(EVERY_CANDIDATE, {}), **given.get(name, {})})


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
    kwargs = args_for(settings, name)
    if "+" in name and settings["image_size"]:  # a hybrid's branches at the size fit will use
        kwargs.setdefault("image_size", settings["image_size"])
    wanted = kwargs.pop("pretrained", True)
    weights = wanted if (pretrained and settings["weights"] != "none") else _all_false(wanted)
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


def _all_false(pretrained: Any) -> Any:
    """Random weights everywhere; a per-branch mapping keeps its keys (so typos are still caught)."""
    return dict.fromkeys(pretrained, False) if isinstance(pretrained, Mapping) else False


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
    store = Path(settings["out"]) / "features" / _safe(name) if settings["out"] else None
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


def rank_rows(rows: list[dict], settings: dict) -> list[str]:
    """Fill score, within_budget, pareto and rank; sort rows best first; return warnings."""
    if not rows:
        return ["no candidate could be measured; see skipped."]
    rank_by, budget = settings["rank_by"], settings["latency_budget_ms"]
    values = (
        consensus(rows, settings["scores"])
        if rank_by == "consensus"
        else [r.get(rank_by) for r in rows]
    )
    for r, v in zip(rows, values, strict=True):
        r["score"] = v
        r["within_budget"] = None if budget is None else bool(r["latency_ms"] <= budget)
    rows.sort(key=lambda r: (r["within_budget"] is False, -_num(r["score"]), r["latency_ms"]))
    front = pareto_front([(r["latency_ms"], _num(r["score"])) for r in rows])
    for i, (r, on_front) in enumerate(zip(rows, front, strict=True), start=1):
        r["rank"], r["pareto"] = i, on_front
    return _control_warning(rows)


def consensus(rows: Sequence[dict], scores: Sequence[str]) -> list[float]:
    """Mean over ``scores`` of each row's rank scaled to 0 (worst) .. 1 (best); ties share ranks.

    A score that does not apply to a row (``None``, e.g. LEEP for a hybrid) is left out of that row's
    mean and of the ranking for that score; a score that failed (NaN) ranks last.

    Example:
        >>> consensus([{"a": 1.0, "b": 0.5}, {"a": 2.0, "b": 0.5}], ["a", "b"])
        [0.25, 0.75]
        >>> consensus([{"a": 1.0, "b": None}, {"a": 2.0, "b": 0.5}, {"a": 3.0, "b": 0.1}], ["a", "b"])
        [0.0, 0.75, 0.5]
    """
    from scipy.stats import rankdata

    per_score = []
    for name in scores:
        present = np.array([r.get(name) is not None for r in rows])
        vals = np.array([_num(r.get(name)) for r in rows])
        if np.isfinite(vals).sum() < 1:
            continue
        scaled = np.full(len(rows), np.nan)
        ranks = rankdata(vals[present])
        scaled[present] = (ranks - 1) / max(int(present.sum()) - 1, 1)
        per_score.append(scaled)
    if not per_score:
        return [float("nan")] * len(rows)
    stacked = np.array(per_score)
    counts = np.isfinite(stacked).sum(axis=0)
    means = np.where(counts > 0, np.nansum(stacked, axis=0) / np.maximum(counts, 1), np.nan)
    return [float(v) for v in means]


def _num(value: Any) -> float:
    return float(value) if value is not None and np.isfinite(value) else float("-inf")


def _control_warning(rows: list[dict]) -> list[str]:
    controls = [r for r in rows if r["control"]]
    real = [r for r in rows if not r["control"]]
    if controls and real and _num(controls[0]["score"]) >= max(_num(r["score"]) for r in real):
        return [
            f"the randomly initialised control {controls[0]['candidate']} scores as well as the pretrained "
            "candidates: the sample may be too small or the pretrained features do not fit this data."
        ]
    return []


def _no_pick_reason(rows: list[dict], budget: float | None) -> str:
    fastest = min(
        (r for r in rows if not r["control"]), key=lambda r: r["latency_ms"], default=None
    )
    if fastest is None:
        return "only the control was measured; no recommendation."
    return (
        f"no candidate meets the latency budget of {budget:g} ms; the fastest, {fastest['candidate']}, "
        f"takes {fastest['latency_ms']:.1f} ms. Raise the budget or add lighter candidates."
    )


def fit_command(
    data: str | os.PathLike,
    model: str,
    image_size: int | None = None,
    device: str = "cpu",
    pretrained: bool = True,
    model_args: Mapping[str, Any] | None = None,
) -> str:
    """The ``graft fit`` command line that fine-tunes ``model`` on ``data`` (with its model arguments).

    Example:
        >>> fit_command("data/my pets", "efficientnet_lite0", image_size=128)
        "graft fit 'data/my pets' --model efficientnet_lite0 --image-size 128 --out runs/fit-efficientnet_lite0"
    """
    parts = ["graft", "fit", os.fspath(data), "--model", model]
    if image_size:
        parts += ["--image-size", str(image_size)]
    if device == "cuda":
        parts += ["--accelerator", "gpu"]
    if not pretrained:
        parts += ["--weights", "none"]
    for key, value in (model_args or {}).items():
        parts += ["--model-arg", f"{key}={_yaml_flow(value)}"]
    parts += ["--out", f"runs/fit-{_safe(model)}"]
    return " ".join(shlex.quote(p) for p in parts)


def _yaml_flow(value: Any) -> str:
    """A value as one-line YAML (what ``--model-arg KEY=VALUE`` reads back)."""
    import yaml

    return (
        yaml.safe_dump(value, default_flow_style=True, width=10**6)
        .strip()
        .removesuffix("...")
        .strip()
    )


def _safe(name: str) -> str:
    """A model name as a folder name: ``tv:mobilenet_v2`` -> ``tv-mobilenet_v2``."""
    return name.replace(":", "-").replace("/", "-").replace("@", "-")


def write_outputs(result: SelectionResult, out: str | os.PathLike) -> dict[str, str]:
    """Write ``selection.json``, ``selection.txt`` and ``score_vs_latency.png`` under ``out``."""
    from graft.io import write_text
    from graft.select.plot import plot_selection

    out = Path(out)
    files = {
        "json": str(out / "selection.json"),
        "table": str(out / "selection.txt"),
        "plot": str(out / "score_vs_latency.png"),
    }
    result.files = files
    if result.rows:
        plot_selection(result, files["plot"])
    else:
        del files["plot"]
    write_text(files["table"], result.summary() + "\n")
    result.to_json(files["json"])
    return files


# its name before graft.select became only a package (kept for one release)
select = select_models
