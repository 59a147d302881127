"""Recipes: which groups train in which epochs, at which learning rates. Read this file top to bottom.

A recipe turns the options into a :class:`Plan`, a list of :class:`Phase` objects. Training machinery
(:mod:`graft.train.unfreeze`, :mod:`graft.train.module`) only executes a plan.

- ``head``: backbone frozen, the new head trains.
- ``full``: everything trains, learning rates spread from head (``lr``) down to stem (``lr / lr_mult``).
- ``freeze-upto``: groups ``[0, K)`` frozen, the rest trains with spread learning rates.
- ``progressive``: head first, then more groups at given epochs (``--unfreeze 2:+2,4:all``), the
  learning rate multiplied by ``lr_decay`` at each step.
- ``auto``: head first (cheap: frozen outputs are cached), then everything with spread learning rates
  and BatchNorm statistics kept from pre-training; epochs from the dataset size (see :func:`auto_epochs`)
  or, with ``epochs=N``, N in total split by :func:`split_epochs`.

``epochs`` is always the total number of epochs, whatever the recipe.

Example:
    >>> plan = build_plan("auto", n_groups=8, n_train=2000, batch_size=32)
    >>> [(p.name, p.start, p.epochs, p.trainable[:2]) for p in plan]
    [('head', 0, 8, (7,)), ('full', 8, 3, (0, 1))]
    >>> [(p.name, p.epochs) for p in build_plan("auto", 8, 2000, 32, epochs=2)]
    [('head', 1), ('full', 1)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from graft.errors import ConfigError, raise_unknown
from graft.train.groups import ModelGroups

RECIPES = ("auto", "head", "full", "freeze-upto", "progressive")
HEAD_LR = 3e-3  # AdamW, new head on frozen features
FULL_LR = 1e-3  # AdamW, head LR when everything trains (stem gets lr / lr_mult)
SGD_FACTOR = 10.0  # SGD wants ~10x AdamW's learning rates


@dataclass(frozen=True)
class Phase:
    """Epochs ``[start, start + epochs)`` train groups ``trainable`` with head LR ``lr``."""

    name: str
    start: int
    epochs: int
    trainable: tuple[int, ...]
    lr: float
    lr_mult: float = 1.0  # head LR / stem LR inside this phase
    bn: str = "frozen"  # BatchNorm policy, see graft.train.module.apply_bn_policy
    warmup: float = 0.1

    @property
    def end(self) -> int:
        return self.start + self.epochs

    def lr_of(self, group: int, n_groups: int) -> float:
        """Base LR of ``group``: ``lr`` at the head, ``lr / lr_mult`` at the stem, geometric between;
        0 for groups this phase keeps frozen."""
        if group not in self.trainable:
            return 0.0
        head = n_groups - 1
        return self.lr * self.lr_mult ** (-(head - group) / head) if head else self.lr


@dataclass(frozen=True)
class Plan:
    """Phases in order; the last one ends at the total number of epochs."""

    phases: tuple[Phase, ...] = field(default_factory=tuple)

    def __iter__(self):
        return iter(self.phases)

    def __len__(self) -> int:
        return len(self.phases)

    @property
    def epochs(self) -> int:
        return self.phases[-1].end if self.phases else 0

    def index_at(self, epoch: int) -> int:
        """Index of the phase that runs at ``epoch`` (the last one past the end)."""
        for i, phase in enumerate(self.phases):
            if phase.start <= epoch < phase.end:
                return i
        return len(self.phases) - 1


def auto_epochs(n_train: int, batch_size: int) -> tuple[int, int]:
    """(head epochs, full epochs) from the dataset size, in the spirit of BiT-HyperRule.

    BiT fixes the number of *steps* by dataset size (small < 20k images: 500 steps at batch 512) and
    the rest follows. Here, for CPU budgets: the full phase gets about 200 steps when n < 5,000, 1,500
    when n < 50,000, and 5,000 beyond, converted to epochs and clamped to 2-30; the head phase, whose
    frozen outputs are computed once, gets 8 epochs for small data and 3 beyond 50,000 images.
    """
    steps_per_epoch = max(1, math.ceil(n_train / batch_size))
    target = 200 if n_train < 5_000 else (1_500 if n_train < 50_000 else 5_000)
    full = min(30, max(2, round(target / steps_per_epoch)))
    head = 8 if n_train < 50_000 else 3
    return head, full


HEAD_SHARE = 0.4  # auto with --epochs N: share of N given to the head phase (see split_epochs)


def split_epochs(total: int, auto_head: int, head_epochs: int | None = None) -> tuple[int, int]:
    """(head, full) epochs of recipe ``auto`` when the user asks for ``total`` epochs in all.

    Rule: the head phase gets ``round(0.4 * total)`` epochs, at least 1 and at most ``auto_head``
    (the automatic head epochs: 8 below 50,000 images, 3 beyond); the full phase gets the rest. So
    both phases get at least one epoch when ``total >= 2``, and ``total = 1`` trains the head only
    (a new random head on top of a backbone it would otherwise disturb). ``head_epochs`` overrides
    the head's share and must not exceed ``total``.

    Example:
        >>> [split_epochs(n, 8) for n in (1, 2, 3, 5, 10, 30)]
        [(1, 0), (1, 1), (1, 2), (2, 3), (4, 6), (8, 22)]
        >>> split_epochs(5, 8, head_epochs=0)
        (0, 5)
    """
    if total < 1:
        raise ConfigError(f"epochs is the total number of epochs and must be >= 1, got {total}.")
    if head_epochs is not None:
        if head_epochs > total:
            raise ConfigError(
                f"head_epochs={head_epochs} exceeds epochs={total} (epochs is the total, head "
                f"phase included); pass --head-epochs {total} or less, or raise --epochs."
            )
        return head_epochs, total - head_epochs
    head = min(auto_head, max(1, round(HEAD_SHARE * total)))
    return head, total - head


def build_plan(
    recipe: str,
    n_groups: int,
    n_train: int,
    batch_size: int,
    epochs: int | None = None,
    head_epochs: int | None = None,
    lr: float | None = None,
    lr_mult: float = 10.0,
    freeze_upto: int | None = None,
    unfreeze: str | None = None,
    lr_decay: float = 0.5,
    bn: str = "auto",
    warmup: float = 0.1,
    optimizer: str = "adamw",
    groups: ModelGroups | None = None,
    full_lr: float | None = None,
) -> Plan:
    """The :class:`Plan` of ``recipe`` for a model with ``n_groups`` groups (head = last).

    ``epochs`` is the total; ``full_lr`` is the head LR of ``auto``'s full phase (default: ``lr``,
    or 1e-3 for AdamW).
    """
    if epochs is not None and epochs < 1:
        raise ConfigError(f"epochs is the total number of epochs and must be >= 1, got {epochs}.")
    if recipe not in RECIPES:
        raise_unknown("recipe", recipe, RECIPES)
    scale = SGD_FACTOR if optimizer == "sgd" else 1.0
    head = n_groups - 1
    everything = tuple(range(n_groups))
    frozen_bn = "frozen" if bn == "auto" else bn
    if recipe == "head":
        return Plan(
            (
                Phase(
                    "head",
                    0,
                    _epochs(epochs, 5),
                    (head,),
                    _given(lr, HEAD_LR * scale),
                    1.0,
                    frozen_bn,
                    warmup,
                ),
            )
        )
    if recipe == "full":
        full_bn = "train" if bn == "auto" else bn
        return Plan(
            (
                Phase(
                    "full",
                    0,
                    _epochs(epochs, 5),
                    everything,
                    _given(lr, FULL_LR * scale),
                    lr_mult,
                    full_bn,
                    warmup,
                ),
            )
        )
    if recipe == "freeze-upto":
        return Plan(
            (_freeze_upto(freeze_upto, n_groups, epochs, lr, scale, lr_mult, frozen_bn, warmup),)
        )
    if recipe == "progressive":
        return _progressive(
            unfreeze or "",
            n_groups,
            epochs,
            lr,
            scale,
            lr_mult,
            lr_decay,
            frozen_bn,
            warmup,
            groups,
        )
    return _auto(
        n_groups, n_train, batch_size, epochs, head_epochs, lr, scale, lr_mult, bn, warmup, full_lr
    )


def _auto(
    n_groups, n_train, batch_size, epochs, head_epochs, lr, scale, lr_mult, bn, warmup, full_lr
) -> Plan:
    auto_head, auto_full = auto_epochs(n_train, batch_size)
    if epochs is None:
        head_n = auto_head if head_epochs is None else head_epochs
        full_n = auto_full
    else:
        head_n, full_n = split_epochs(epochs, auto_head, head_epochs)
    # BatchNorm keeps its pre-trained statistics in the full phase ("eval"): switching a frozen
    # backbone to batch statistics cost a whole epoch of accuracy in measurements (docs/benchmarks/fit.md).
    full_bn = "eval" if bn == "auto" else bn
    head_bn = "frozen" if bn == "auto" else bn
    phases = []
    if head_n:
        phases.append(
            Phase(
                "head",
                0,
                head_n,
                (n_groups - 1,),
                HEAD_LR * scale if lr is None else lr,
                1.0,
                head_bn,
                warmup,
            )
        )
    if full_n:
        full_lr = full_lr if full_lr is not None else (FULL_LR * scale if lr is None else lr)
        phases.append(
            Phase(
                "full",
                head_n,
                full_n,
                tuple(range(n_groups)),
                full_lr,
                lr_mult,
                full_bn,
                max(warmup, 0.2),
            )
        )
    if not phases:
        raise ConfigError("recipe 'auto' got 0 epochs in total; pass --epochs N with N >= 1.")
    return Plan(tuple(phases))


def _freeze_upto(k, n_groups, epochs, lr, scale, lr_mult, bn, warmup) -> Phase:
    if not 0 <= k < n_groups:
        raise ConfigError(
            f"freeze_upto={k} is out of range: this model has {n_groups} groups (0 = stem, "
            f"{n_groups - 1} = head); pass 0..{n_groups - 1}."
        )
    trainable = tuple(range(k, n_groups))
    spread = lr_mult if len(trainable) > 1 else 1.0
    return Phase(
        "freeze-upto",
        0,
        _epochs(epochs, 5),
        trainable,
        _given(lr, FULL_LR * scale),
        spread,
        bn,
        warmup,
    )


def _progressive(spec, n_groups, epochs, lr, scale, lr_mult, lr_decay, bn, warmup, groups) -> Plan:
    events = parse_unfreeze(spec, n_groups, groups)
    total = _epochs(epochs, max(e for e, _ in events) + 2 if events else 5)
    base = _given(lr, FULL_LR * scale)
    trainable = {n_groups - 1}
    starts = [0] + [e for e, _ in events]
    phases = []
    for i, start in enumerate(starts):
        if i:
            trainable |= set(events[i - 1][1])
        end = min(starts[i + 1], total) if i + 1 < len(starts) else total
        if end <= start:  # an unfreezing step at or past the last epoch never happens
            continue
        spread = lr_mult if len(trainable) > 1 else 1.0
        phases.append(
            Phase(
                f"stage{i}",
                start,
                end - start,
                tuple(sorted(trainable)),
                base * lr_decay**i,
                spread,
                bn,
                warmup,
            )
        )
    return Plan(tuple(phases))


def parse_unfreeze(
    spec: str, n_groups: int, groups: ModelGroups | None = None
) -> list[tuple[int, tuple[int, ...]]]:
    """``"2:+2,4:all"`` or ``"5:blocks.4-5,10:blocks.0-"`` -> [(epoch, groups to add), ...], by epoch.

    ``+N`` adds the N groups just below the ones already trainable; ``all`` adds everything; other
    items name groups (exact, glob, or numbered range ``prefix.A-B`` / ``prefix.A-``); several
    selections for one epoch are joined with ``;``.
    """
    events: list[tuple[int, tuple[int, ...]]] = []
    lowest = n_groups - 1
    for item in filter(None, (s.strip() for s in spec.split(","))):
        epoch_text, _, what = item.partition(":")
        if not epoch_text.strip().isdigit() or not what.strip():
            raise ConfigError(
                f"unfreeze item '{item}' is not EPOCH:GROUPS; examples: '2:+2', '4:all', '5:blocks.4-5'."
            )
        chosen = _select(what.strip(), lowest, n_groups, groups)
        lowest = min([lowest, *chosen])
        events.append((int(epoch_text), tuple(sorted(chosen))))
    if [e for e, _ in events] != sorted(e for e, _ in events):
        raise ConfigError(f"unfreeze epochs must increase: got '{spec}'.")
    if any(e == 0 for e, _ in events):
        raise ConfigError(
            "unfreeze epochs start at 1 (epoch 0 trains the head); use recipe 'full' to train all from the start."
        )
    return events


def _select(what: str, lowest: int, n_groups: int, groups: ModelGroups | None) -> list[int]:
    chosen: list[int] = []
    for part in what.split(";"):
        if part == "all":
            chosen += range(n_groups)
        elif part.startswith("+") and part[1:].isdigit():
            chosen += range(max(lowest - int(part[1:]), 0), lowest)
        elif groups is not None:
            chosen += groups.select(part)
        else:
            raise ConfigError(f"unfreeze selection '{part}' needs group names; use +N or all.")
    return chosen


def resolved_lrs(
    recipe: str, plan: Plan, lr: float | None, full_lr: float | None, optimizer: str = "adamw"
) -> tuple[float, float | None]:
    """(lr, full_lr) as the plan uses them, for a saved config that rebuilds the same plan.

    ``full_lr`` only applies to ``auto`` (``None`` for the other recipes).

    Example:
        >>> plan = build_plan("auto", 8, 2000, 32, epochs=4)
        >>> resolved_lrs("auto", plan, None, None)
        (0.003, 0.001)
    """
    scale = SGD_FACTOR if optimizer == "sgd" else 1.0
    by_name = {p.name: p.lr for p in plan}
    if recipe != "auto":
        return (plan.phases[0].lr if plan.phases else _given(lr, FULL_LR * scale)), None
    head = by_name.get("head", _given(lr, HEAD_LR * scale))
    full = by_name.get("full", _given(full_lr, _given(lr, FULL_LR * scale)))
    return head, full


def _given(value: float | None, default: float) -> float:
    """A learning rate the user gave is used as is (never rescaled); otherwise ``default``."""
    return default if value is None else value


def _epochs(value: int | None, default: int) -> int:
    return default if value is None else value
