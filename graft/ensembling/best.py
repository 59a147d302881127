"""``graft fit --preset best``: ``--model`` and the ensemble members fit the same way, then combined.

``graft.train`` sits below this layer and never imports it: importing this module installs
:func:`fit_best` with :func:`graft.train.presets.set_best_runner`, and ``fit`` hands a
``preset="best"`` run with members to it. ``graft.fit`` and the command line import it.

Steps (the members come from :func:`graft.ensembling.members.choose_members`):

1. ``--model`` is fit with the preset's options into ``OUT/members/<model>/``: a normal run folder
   (bundle, metrics.json, config.yaml, report.html);
2. each extra member is fit the same way into ``OUT/members/<name>/``, with the same data, split,
   seed and batch size: ``long`` (the default) is ``--model`` again, into ``OUT/members/<model>-long/``,
   with the same head phase and image size and :data:`~graft.ensembling.members.LONG_FACTOR` times
   the epochs after it; another backbone gets the image size, epochs and head epochs that
   ``--model``'s run resolved (``--model-arg`` and a weights file apply to ``--model`` only);
3. :func:`graft.ensembling.combine.combine_members` writes the ``ensemble`` bundle ``OUT/bundle``
   and measures it (with TTA when ``--tta`` and flips are on);
4. ``OUT/metrics.json``: the ensemble's accuracies, the weights, each member's metrics and
   seconds, and the total seconds; ``OUT/config.yaml``: the options with the members chosen.

Resuming: a member folder holding a finished fit (``bundle/`` and ``metrics.json``) is reused, not
refit; one with a checkpoint continues from it. So running the same command again (or ``graft fit
--resume --out OUT``) after a crash finishes the run.

Example:
    >>> r = graft.fit("data/pets", preset="best", out="runs/best")  # doctest: +SKIP
    >>> r.bundle, r.metrics["test_acc"]  # doctest: +SKIP
    (PosixPath('runs/best/bundle'), 0.95)
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graft.ensembling.members import LONG, choose_members, long_epochs, member_folder
from graft.errors import ConfigError
from graft.io import check_out_folder, make_temp_dir, read_json, write_json
from graft.log import get_logger
from graft.train.presets import set_best_runner

log = get_logger("graft.ensembling")

MEMBERS = "members"  # OUT/members/<name>/: one run folder per member
SHARED = ("image_size", "epochs", "head_epochs")  # taken from --model's resolved run
SAME_RUN = ("data", "seed", "val_split", "in_chans")  # a reused member must agree on these


@dataclass
class MemberRun:
    """One member's run: where it is, its metrics and resolved config, its wall seconds (``None``
    when reused from an earlier run)."""

    name: str
    run_dir: Path
    metrics: dict[str, float]
    config: Any
    seconds: float | None = None

    @property
    def bundle(self) -> Path:
        return self.run_dir / "bundle"

    def to_dict(self) -> dict[str, Any]:
        return {"run_dir": str(self.run_dir), "metrics": self.metrics, "seconds": self.seconds,
                "reused": self.seconds is None}  # fmt: skip


def fit_best(cfg: Any, begun: float, **hooks: Any) -> Any:
    """``preset="best"``: fit ``--model`` and its ensemble members, combine them (module docstring).

    ``hooks``: :func:`graft.train.fitting.fit`'s ``callbacks``, ``module_factory``, ``on_trained``,
    passed to every member's fit.

    Example:
        >>> fit_best(FitConfig(data="data/pets", preset="best"), time.perf_counter())  # doctest: +SKIP
    """
    from graft.train.fitting import fit

    extras = choose_members(cfg)
    if not extras:
        return fit(config=cfg.replace(ensemble_models=[]), **hooks)
    if cfg.dry_run:
        return _dry_run(cfg, extras, hooks)
    run = check_out_folder(Path(cfg.out), cfg.data)
    if (run / "bundle").exists():
        raise ConfigError(
            f"{run} already holds a finished run (bundle/); choose another --out folder."
        )
    from graft.train.run_lock import RunLock

    with RunLock(run, "graft fit"):
        return _fit_all(cfg, extras, run, begun, hooks)


def _fit_all(cfg: Any, extras: list[str], run: Path, begun: float, hooks: dict) -> Any:
    from graft.ensembling.combine import combine_members
    from graft.train.fitting import FitResult

    chosen = cfg.replace(ensemble_models=extras, resume=False, resume_force=False)
    chosen.save(run / "config.yaml")
    main = fit_member(cfg, cfg.model, run, {}, hooks)
    shared = {k: getattr(main.config, k) for k in SHARED}
    members = [
        main,
        *(fit_member(cfg, name, run, shared, hooks) for name in _wanted(extras, shared)),
    ]
    if len(members) == 1:
        return _alone(main, run, begun)
    combined = combine_members(
        [m.bundle for m in members], cfg.data, run, cfg.seed, bool(cfg.tta and cfg.flip),
        val_split=cfg.val_split, batch_size=cfg.batch_size, workers=cfg.workers or 0,
        accelerator=cfg.accelerator,
    )  # fmt: skip
    metrics = {**combined.metrics, "fit_seconds": round(time.perf_counter() - begun, 2)}
    write_json(run / "metrics.json", {
        "metrics": metrics, "preset": "best", "ensemble": ensemble_record(combined, members),
        "members": {m.name: m.to_dict() for m in members},
    })  # fmt: skip
    log.info("preset best finished: %s (report.html: each member's, under %s/%s/)",
             ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()), run, MEMBERS)  # fmt: skip
    return FitResult(run, combined.bundle, metrics, config=chosen)


def _wanted(extras: list[str], shared: dict[str, Any]) -> list[str]:
    """``extras`` to fit after the first member: without :data:`LONG` when the first fit has no
    epochs after its head phase to lengthen (``shared``: its resolved values; logged)."""
    head, total = shared.get("head_epochs") or 0, shared["epochs"]
    if total > head or LONG not in extras:
        return extras
    log.info("preset best: no '%s' member: the first fit has no epochs after its head phase "
             "(epochs %d, head epochs %d), so a longer one would be the same fit", LONG, total, head)  # fmt: skip
    return [n for n in extras if n != LONG]


def _alone(main: MemberRun, run: Path, begun: float) -> Any:
    """The first fit is the only member: its bundle copied to ``run/bundle`` (the listed files,
    renamed into place), its metrics."""
    from graft.ensembling.storage import copy_bundle
    from graft.train.fitting import FitResult

    dest = run / "bundle"  # fit_best refused a run folder that holds one
    tmp = make_temp_dir(dest)
    try:  # a copy that stops half-way leaves no bundle/ that looks finished
        copy_bundle(main.bundle, tmp / dest.name)
        os.replace(tmp / dest.name, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    metrics = {**main.metrics, "fit_seconds": round(time.perf_counter() - begun, 2)}
    write_json(run / "metrics.json", {"metrics": metrics, "preset": "best",
                                      "members": {main.name: main.to_dict()}})  # fmt: skip
    return FitResult(run, run / "bundle", metrics, config=main.config)


def ensemble_record(combined: Any, members: list[MemberRun]) -> dict[str, Any]:
    """What ``OUT/metrics.json`` says of the ensemble: members kept (by name), their weights, the
    weighting (``val`` or ``equal``), members dropped at weight 0 and the selection details."""
    names = {str(m.bundle): m.name for m in members}
    result = combined.ensemble
    return {
        "weighting": combined.weighting,
        "members": [names.get(p, p) for p in result.members],
        "weights": result.weights,
        "dropped": [names.get(p, p) for p in result.dropped],
        "selection": result.selection,
    }


def fit_member(cfg: Any, name: str, run: Path, shared: dict[str, Any], hooks: dict) -> MemberRun:
    """Fit member ``name`` (a backbone, or :data:`~graft.ensembling.members.LONG`) into
    ``run/members/<label>/``, or reuse the finished fit found there.

    Example:
        >>> fit_member(cfg, "tv:mobilenet_v2", Path("runs/best"), {"image_size": 224}, {})  # doctest: +SKIP
    """
    from graft.train.config import FitConfig
    from graft.train.fitting import fit
    from graft.train.run_guard import last_checkpoint

    label = member_label(cfg, name)
    folder = run / MEMBERS / member_folder(label)
    wanted = member_config(cfg, name, folder, shared)
    if is_finished(folder):
        saved = FitConfig.load(folder / "config.yaml")
        _check_same_run(saved, wanted, folder)
        log.info("member %s: %s holds a finished fit; reused, not refit", label, folder)
        metrics = read_json(folder / "metrics.json").get("metrics", {})
        return MemberRun(label, folder, metrics, saved)
    resume = last_checkpoint(folder).is_file()
    if resume:
        log.info("member %s: continuing the interrupted fit in %s", label, folder)
    started = time.perf_counter()
    result = fit(config=wanted.replace(resume=resume), **hooks)
    seconds = round(time.perf_counter() - started, 2)
    return MemberRun(label, folder, result.metrics, result.config, seconds)


def member_label(cfg: Any, name: str) -> str:
    """The member's name in ``metrics.json`` and its folder: ``name``, or ``MODEL-long``.

    Example:
        >>> from types import SimpleNamespace
        >>> member_label(SimpleNamespace(model="efficientnet_lite0"), "long")
        'efficientnet_lite0-long'
    """
    return f"{cfg.model}-{LONG}" if name == LONG else name


def member_config(cfg: Any, name: str, folder: Path, shared: dict[str, Any]) -> Any:
    """``cfg`` for member ``name``: the same options, its own folder, no ensemble of its own.

    Another backbone gets its own model and ``shared`` (``--model``'s resolved image size and
    epochs); :data:`~graft.ensembling.members.LONG` is ``--model`` at that image size with the same
    head phase and :data:`~graft.ensembling.members.LONG_FACTOR` times the epochs after it.

    Example:
        >>> member_config(cfg, "tv:mobilenet_v2", Path("runs/b/members/tv-mobilenet_v2"), {}).model  # doctest: +SKIP
        'tv:mobilenet_v2'
    """
    changes: dict[str, Any] = {"model": cfg.model, "out": str(folder), "ensemble_models": [],
                               "resume": False, "resume_force": False}  # fmt: skip
    resolved = {k: v for k, v in shared.items() if v is not None}
    if name == LONG:
        head = shared.get("head_epochs") or 0
        changes.update(resolved, epochs=long_epochs(shared["epochs"], head))
    elif name != cfg.model:
        changes.update(resolved, model=name, model_args={})
        if cfg.weights not in ("pretrained", "none"):  # a weights file belongs to --model
            changes["weights"] = "pretrained"
    return cfg.replace(**changes)


def is_finished(folder: Path) -> bool:
    """True when ``folder`` holds a finished fit (``metrics.json`` is written after the bundle)."""
    return (folder / "bundle" / "model.json").is_file() and (folder / "metrics.json").is_file()


def _check_same_run(saved: Any, wanted: Any, folder: Path) -> None:
    differ = [k for k in (*SAME_RUN, "model") if getattr(saved, k) != getattr(wanted, k)]
    if differ:
        shown = ", ".join(f"{k}: {getattr(saved, k)!r} there, {getattr(wanted, k)!r} now"
                          for k in differ)  # fmt: skip
        raise ConfigError(
            f"{folder} holds a member fit with other options ({shown}); an ensemble's members "
            "must share the data and split. Remove that folder, or choose another --out folder."
        )


def _dry_run(cfg: Any, extras: list[str], hooks: dict) -> Any:
    """The plan of every member and their estimates; nothing trained or written."""
    from graft.train.fitting import FitResult, fit

    run = Path(cfg.out)

    def plan(name: str, shared: dict[str, Any]) -> tuple[str, Any]:
        label = member_label(cfg, name)
        folder = run / MEMBERS / member_folder(label)
        return label, fit(config=member_config(cfg, name, folder, shared).replace(dry_run=True),
                          **hooks)  # fmt: skip

    first = plan(cfg.model, {})
    shared = {k: getattr(first[1].config, k) for k in SHARED}
    plans = [first, *(plan(name, shared) for name in _wanted(extras, shared))]
    others = ", ".join(label for label, _ in plans[1:])
    lines = [f"preset best: an ensemble of {cfg.model} (--model) and {others}, each fit into "
             f"{run}/{MEMBERS}/<name>/, then combined into {run}/bundle" if others else
             f"preset best: {cfg.model} alone, fit into {run}/{MEMBERS}/{member_folder(cfg.model)}/ "
             f"and copied to {run}/bundle"]  # fmt: skip
    for i, (label, p) in enumerate(plans, 1):
        lines += [f"\nmember {i}/{len(plans)}: {label}", p.plan_text]
    total = sum(float(p.metrics.get("estimated_seconds", 0.0)) for _, p in plans)
    lines.append(f"\npreset best: about {total:.0f} s for the members, plus the combine step (each "
                 "member over the validation and test images, twice with TTA)")  # fmt: skip
    return FitResult(run, run / "bundle", {"estimated_seconds": round(total, 3)},
                     config=cfg.replace(ensemble_models=extras), plan_text="\n".join(lines))  # fmt: skip


set_best_runner(fit_best)

__all__ = ["MEMBERS", "MemberRun", "fit_best", "fit_member", "member_config", "member_label"]
