"""The plan of a run, printed before training, with a wall-time estimate from timed batches.

:func:`describe` turns the resolved config and the recipe's :class:`~graft.train.recipes.Plan` into
a few readable lines: each phase's epochs, trainable groups, learning rates (head and stem) and
BatchNorm policy, then image size, batch size, loader workers and whether frozen outputs are
cached. :func:`graft.train.eta.estimate` adds the estimated wall time; :class:`ProgressETA` prints
one line per epoch with the time left.

Example:
    >>> print(describe(cfg, parts, cached=True))  # doctest: +SKIP
    plan: recipe auto, 4 epochs in total
      epochs 1-2  head   trains head (1 of 7 groups)   lr 0.003            BN frozen  features cached
      epochs 3-4  full   trains all 7 groups           lr 0.001 -> 0.0001  BN eval
    images 96 px, batch 32, 1 loader workers, 480 train / 60 val / 120 test images
"""

from __future__ import annotations

import sys
import time
from typing import Any

import lightning.pytorch as pl

from graft.train.recipes import Phase, Plan


def phase_line(phase: Phase, names: tuple[str, ...], cached: bool) -> str:
    """One line of the plan for ``phase`` (groups named from ``names``, stem first, head last).

    Example:
        >>> phase_line(Phase("full", 2, 3, (0, 1, 2), 1e-3, 10.0, "eval"), ("stem", "b", "head"), False)
        '  epochs 3-5  full   trains all 3 groups  lr 0.001 (head) -> 0.0001 (stem)  BN eval'
    """
    n = len(names)
    first, last = phase.start + 1, phase.end
    span = f"epoch {first}" if first == last else f"epochs {first}-{last}"
    if len(phase.trainable) == n:
        what = f"all {n} groups"
    elif len(phase.trainable) <= 3:
        what = (
            ", ".join(names[g] for g in phase.trainable)
            + f" ({len(phase.trainable)} of {n} groups)"
        )
    else:
        what = f"{names[phase.trainable[0]]} .. {names[phase.trainable[-1]]} ({len(phase.trainable)} of {n} groups)"
    low = min(phase.lr_of(g, n) for g in phase.trainable)
    lrs = f"lr {phase.lr:.3g}" + (f" (head) -> {low:.3g} (stem)" if low < phase.lr else "")
    tail = "  frozen features cached" if cached else ""
    return f"  {span}  {phase.name:6s} trains {what}  {lrs}  BN {phase.bn}{tail}"


def describe(cfg: Any, parts: Any, cached_epochs: range = range(0), sized: bool = False) -> str:
    """The plan as text: phases, then the data settings (see the module example); ``sized``: the
    image size was chosen from the training images (graft.data.image_size)."""
    plan: Plan = parts.plan
    names = parts.groups.names
    lines = [f"plan: recipe {cfg.recipe}, {plan.epochs} epochs in total"]
    for phase in plan:
        cached = bool(cached_epochs) and phase.start in cached_epochs
        lines.append(phase_line(phase, names, cached))
    if cfg.recipe == "auto" and plan.epochs == 1:
        only = plan.phases[0].name
        lines.append(f"  --epochs 1: recipe auto trains the {only} phase only (pass --epochs 2 or "
                     "more for a head and a full phase)")  # fmt: skip
    adapters = getattr(parts.model, "graft_peft", None)
    if adapters is not None:  # --peft: the groups above train their adapters, not their weights
        lines.append(f"  {adapters.method} rank {adapters.rank} on {len(adapters.targets)} layers: "
                     "trained groups train their adapters; the pretrained weights stay frozen")  # fmt: skip
    size = tuple(parts.data_config.get("input_size", ()))[-2:]
    splits = parts.splits
    lines.append(
        f"images {'x'.join(str(s) for s in size)} px{' (from the image sizes)' if sized else ''} "
        f"({parts.data_config.get('normalization')} "
        f"normalization), batch {cfg.batch_size}, {parts.datamodule.workers} loader workers, "
        f"image cache {'on' if cfg.cache_images else 'off'}, frozen-output cache "
        f"{'on' if cached_epochs else 'off'}; {len(splits.train)} train / {len(splits.val)} val / "
        f"{len(splits.test)} test images"
    )
    branches = branch_line(parts.model)
    return "\n".join([*lines, branches] if branches else lines)


def format_seconds(seconds: float) -> str:
    """Seconds for people: ``75.0`` -> ``'1 min 15 s'``; ``3720`` -> ``'1 h 02 min'``.

    Example:
        >>> format_seconds(8.44), format_seconds(75), format_seconds(3720)
        ('8.4 s', '1 min 15 s', '1 h 02 min')
    """
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def say(text: str) -> None:
    """Print ``text`` on stderr (plans and progress; stdout holds results)."""
    print(text, file=sys.stderr, flush=True)


class ProgressETA(pl.Callback):
    """One stderr line per epoch: epoch k/N, phase, its seconds, validation accuracy, time left.

    The time left sums, over the remaining epochs, the last measured time of an epoch of the same
    phase, or the estimate (``per_epoch``: seconds per epoch index) for a phase not seen yet.

    Example:
        >>> cb = ProgressETA(plan, per_epoch=[2.0, 2.0, 9.0, 9.0])  # doctest: +SKIP
    """

    def __init__(self, plan: Plan, per_epoch: list[float] | None = None) -> None:
        self.plan = plan
        self.per_epoch = list(per_epoch or [])
        self.measured: dict[str, float] = {}
        self._started = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        epoch = trainer.current_epoch
        seconds = time.perf_counter() - self._started
        phase = self.plan.phases[self.plan.index_at(epoch)]
        self.measured[phase.name] = seconds
        left = self.time_left(epoch + 1)
        acc = trainer.callback_metrics.get("val_acc")
        shown = f", val_acc {float(acc):.3f}" if acc is not None else ""
        say(f"epoch {epoch + 1}/{self.plan.epochs} ({phase.name}): {format_seconds(seconds)}"
            f"{shown}; about {format_seconds(left)} left")  # fmt: skip

    def time_left(self, next_epoch: int) -> float:
        """Estimated seconds of epochs ``next_epoch ..`` to the end of the plan."""
        total = 0.0
        for epoch in range(next_epoch, self.plan.epochs):
            name = self.plan.phases[self.plan.index_at(epoch)].name
            guess = self.per_epoch[epoch] if epoch < len(self.per_epoch) else 0.0
            total += self.measured.get(name, guess)
        return total


def announce(
    cfg: Any, parts: Any, cached_epochs: range, already: float, sized: bool = False
) -> ProgressETA | None:
    """Print the plan and its estimate on stderr (rank 0, ``cfg.progress``); return the callback
    that prints progress with the time left, or ``None`` when progress is off.

    Example:
        >>> callback = announce(cfg, parts, range(0, 2), already=3.0)  # doctest: +SKIP
    """
    from graft.distributed import is_rank_zero
    from graft.train.eta import estimate

    if not cfg.progress or not is_rank_zero():
        return None
    est = estimate(cfg, parts, cached_epochs, already=already)
    say(describe(cfg, parts, cached_epochs, sized))
    say(estimate_line(est))
    return ProgressETA(parts.plan, est.per_epoch)


def estimate_line(est: Any) -> str:
    """``estimated wall time: ...`` with its parts (setup, epochs, final evaluation, finish), then
    the named fixed costs of ``est.fixed`` (graft.train.eta) on a second line.

    Example:
        >>> from graft.train.eta import Estimate
        >>> print(estimate_line(Estimate(3.0, [2.0, 5.0], 1.0, finish=0.5,
        ...                              fixed={"scan and model": 3.0, "report": 0.5})))
        estimated wall time: 12 s (setup 3.0 s, 2 epochs 7.0 s, final evaluation 1.0 s, finish 0.5 s)
          fixed costs: scan and model 3.0 s, report 0.5 s
    """
    report = "" if "report" in est.fixed else "; HTML report not included"
    line = (
        f"estimated wall time: {format_seconds(est.total)} (setup {format_seconds(est.setup)}, "
        f"{len(est.per_epoch)} epochs {format_seconds(sum(est.per_epoch))}, final evaluation "
        f"{format_seconds(est.final)}, finish {format_seconds(est.finish)}{report})"
    )
    if not est.fixed:
        return line
    parts = ", ".join(f"{k} {format_seconds(v)}" for k, v in est.fixed.items())
    return f"{line}\n  fixed costs: {parts}"


def branch_line(model: Any) -> str:
    """``  hybrid branches: cnn=... 96x96 (image_size), vit=... 96x96 (image_size)`` for a hybrid
    (from its ``pretrained_cfg["branches"]``, the sizes graft.hybrid built it for and the rule
    that chose each); ``""`` for any other model.

    Example:
        >>> from torch import nn
        >>> branch_line(nn.Linear(2, 2))
        ''
    """
    branches = (getattr(model, "pretrained_cfg", None) or {}).get("branches") or {}
    rules = getattr(model, "branch_size_rules", None) or {}
    shown = []
    for key, b in branches.items():
        h, w = tuple(b.get("input_size", (0, 0)))[-2:]
        rule = f" ({rules[key]})" if key in rules else ""
        shown.append(f"{key}={b.get('name', key)} {h}x{w} px{rule}")
    return "  hybrid branches: " + ", ".join(shown) if shown else ""


def dry_run(cfg: Any, started: float) -> tuple[Any, str, float]:
    """Resolve everything ``fit`` would, time the first batches, train nothing.

    Returns ``(resolved config, plan text with the estimate, estimated seconds)``; ``started`` is
    the ``time.perf_counter()`` at which the run began (scan and model building count as setup).

    Example:
        >>> cfg, text, seconds = dry_run(FitConfig(data="data/pets", dry_run=True), time.perf_counter())  # doctest: +SKIP
    """
    from pathlib import Path

    from graft.train.eta import estimate, planned_cache
    from graft.train.parts import prepare_fit
    from graft.train.resolved import resolve_choices

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    parts = prepare_fit(cfg, Path(cfg.out))
    cached = planned_cache(cfg, parts.plan, parts.groups, parts.model)
    resolved = resolve_choices(cfg, parts, cached=bool(cached))
    est = estimate(cfg, parts, cached, already=time.perf_counter() - started)
    text = describe(resolved, parts, cached, cfg.image_size is None) + "\n" + estimate_line(est)
    return resolved, text, est.total
