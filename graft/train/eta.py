"""Wall-time estimate of a run from timing its first batches, once per kind of phase.

Before training, :func:`estimate` runs a few real batches through a copy of the model (the model
itself, its BatchNorm statistics and the random state are left untouched):

- each distinct trainable set of the plan (head only, all groups, ...): training steps (forward,
  backward, AdamW step) on augmented training batches from the real loader;
- evaluation batches (validation every epoch, the final validation and test, and the one pass
  over the training images that fills the frozen-output cache);
- cached head-only epochs: steps of the head on pooled features.

The first batch of each loader is timed on its own (loader start-up, paid once per epoch since
Lightning reloads the train loader every epoch); the next ``batches`` give the steady time per
batch. An epoch costs ``first + (n - 1) * steady`` for its training batches plus validation.

Fixed costs, which dominate short runs (an idle 15 s run was once estimated at 9 s without them),
are listed by name in :attr:`Estimate.fixed`:

- measured: ``scan and model`` (the seconds spent before the estimate: scanning, decoding the image
  sizes, building the model), ``frozen cache`` (one evaluation pass over the training images),
  ``timing probes`` (this estimate itself, which ``fit`` runs again when progress is on),
  ``best weights reload`` (a checkpoint-sized ``torch.load``), ``bundle`` (safetensors
  serialisation of the weights);
- modelled: ``report`` (predictions on at most 256 validation images, 8 Grad-CAM images, 200
  images decoded for statistics at the timed decoding of 8 training images, four figures at the
  timed rendering of a matplotlib figure).

Example:
    >>> est = estimate(cfg, parts, cached_epochs=range(0, 2))  # doctest: +SKIP
    >>> est.total, est.per_epoch  # doctest: +SKIP
    (412.0, [6.1, 6.1, 120.3, 120.3])
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from graft.train.recipes import Phase


@dataclass
class Estimate:
    """Estimated seconds: ``setup`` (before the first epoch), ``per_epoch`` (one per epoch),
    ``final`` (final validation and test), ``finish`` (after it: best weights reloaded, bundle,
    report when on), ``total`` (all of it). ``fixed``: the named fixed costs inside ``setup`` and
    ``finish`` (see the module docstring); ``timings``: the measured per-batch times."""

    setup: float
    per_epoch: list[float]
    final: float
    timings: dict[str, float] = field(default_factory=dict)
    finish: float = 0.0
    fixed: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return self.setup + sum(self.per_epoch) + self.final + self.finish


@dataclass
class _LoaderTime:
    first: float
    steady: float

    def epoch(self, n_batches: int) -> float:
        return 0.0 if n_batches <= 0 else self.first + (n_batches - 1) * self.steady


def estimate(cfg: Any, parts: Any, cached_epochs: range = range(0), batches: int = 3,
             already: float = 0.0) -> Estimate:  # fmt: skip
    """The :class:`Estimate` of ``parts`` (a ``FitParts``); ``already``: seconds spent so far."""
    begun = time.perf_counter()
    dm, plan, groups = parts.datamodule, parts.plan, parts.groups
    device = _device(cfg)
    model = copy.deepcopy(parts.model).to(device)
    state = torch.random.get_rng_state()
    try:
        n_train = _batches(len(dm.train_set), cfg.batch_size)
        n_val = _batches(len(dm.val_set), cfg.batch_size) if dm.val_set is not None else 0
        n_test = _batches(len(dm.test_set), cfg.batch_size) if dm.test_set is not None else 0
        timings: dict[str, float] = {}
        kinds: dict[tuple, _LoaderTime] = {}
        keys = []
        for epoch in range(plan.epochs):
            phase = plan.phases[plan.index_at(epoch)]
            if epoch in cached_epochs:
                key: tuple = ("cached",)
                if key not in kinds:
                    kinds[key] = _time_cached_head(model, parts, cfg.batch_size, batches, device)
            else:
                key = (phase.trainable, phase.bn)
                if key not in kinds:
                    kinds[key] = _time_train(model, groups, phase, dm, batches, device)
                    timings[f"train_batch_{phase.name}"] = kinds[key].steady
            keys.append(key)
        # after the training steps, as in a run: the first evaluation of a process, timed before
        # any backward pass, ran 3-4x faster than every later one (bench_defaults.py eta)
        ev = _time_eval(model, dm.eval_loader(dm.val_set or dm.plain_train_set), batches, device)
        timings.update(eval_first=ev.first, eval_batch=ev.steady)
        per_epoch = [kinds[key].epoch(n_train) + ev.epoch(n_val) for key in keys]
        # last.ckpt and best.ckpt every epoch, each the weights plus AdamW's two moments
        save, load = _time_checkpoint(model)
        timings["checkpoint"] = save
        per_epoch = [s + 2 * save for s in per_epoch]
        built = getattr(dm, "cached_train", None) is not None  # fit built it before estimating
        fixed = {"scan, model and frozen cache" if built else "scan and model": already}
        if cached_epochs and not built:
            fixed["frozen cache"] = ev.epoch(n_train)
        fixed["best weights reload"] = load
        fixed["bundle"] = _time_bundle(model)
        if getattr(cfg, "report", False):
            decode = _time_decoding(parts.splits.train)
            fixed["report"] = _model_report(ev, n_val or n_test, cfg.batch_size, kinds, decode)
        if getattr(cfg, "progress", True):  # fit times these batches again before training
            fixed["timing probes"] = time.perf_counter() - begun
        after = ("best weights reload", "bundle", "report")
        setup = sum(v for k, v in fixed.items() if k not in after)
        finish = sum(v for k, v in fixed.items() if k in after)
        final = ev.epoch(n_val) + ev.epoch(n_test)
        return Estimate(setup, per_epoch, final, timings, finish, fixed)
    finally:
        torch.random.set_rng_state(state)
        del model


def planned_cache(cfg: Any, plan: Any, groups: Any, model: nn.Module) -> range:
    """Epochs fit's pooled-feature cache will serve (the rule of ``frozen_cache.setup_cache``).

    Example:
        >>> planned_cache(cfg, plan, groups, model)  # doctest: +SKIP
        range(0, 2)
    """
    from graft.train.frozen_cache import head_only_epochs, head_suffix, wants_cache

    if not wants_cache(cfg):
        return range(0)
    epochs = head_only_epochs(plan, groups)
    if not epochs or head_suffix(model, groups) is None:
        return range(0)
    return range(min(epochs), max(epochs) + 1)


def _time_checkpoint(model: nn.Module) -> tuple[float, float]:
    """Seconds to save and to load back one checkpoint: the weights plus AdamW's two moments
    (fit writes two per epoch and reloads the best one at the end), in memory."""
    import io

    state = model.state_dict()
    moments = {f"{k}.{m}": v for k, v in state.items() for m in ("exp_avg", "exp_avg_sq")}
    buffer = io.BytesIO()
    started = time.perf_counter()
    torch.save({"state_dict": state, "optimizer": moments}, buffer)
    saved = time.perf_counter()
    buffer.seek(0)
    torch.load(buffer, map_location="cpu", weights_only=True)
    return saved - started, time.perf_counter() - saved


def _time_bundle(model: nn.Module) -> float:
    """Seconds to serialise the weights as the bundle's safetensors (in memory)."""
    from safetensors.torch import save

    started = time.perf_counter()
    save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})
    return time.perf_counter() - started


def _model_report(ev: _LoaderTime, n_eval: int, batch_size: int,
                  kinds: dict[tuple, _LoaderTime], decode: float = 0.0) -> float:  # fmt: skip
    """Modelled seconds of the HTML report (graft.report): predictions on at most 256 evaluation
    images, 200 images decoded for statistics (``decode``: seconds per image), 8 Grad-CAM images
    (a forward and backward each at batch size one: three times a training image's share of the
    slowest step timed) and four figures (matplotlib timed: one figure with its import, one more).

    Example:
        >>> _model_report(_LoaderTime(1.0, 0.5), 100, 32, {}, decode=0.01) > 1.0 + 3 * 0.5 + 2.0
        True
    """
    predictions = ev.epoch(_batches(min(256, n_eval), batch_size))
    steps = [k.steady for k in kinds.values()]
    gradcam = 8 * (max(steps) if steps else ev.steady) / max(batch_size, 1) * 3
    first = _time_figure()
    return predictions + 200 * decode + gradcam + first + 3 * _time_figure()


def _time_decoding(samples: Any, n: int = 8) -> float:
    """Seconds to decode one image to RGB pixels, over the first ``n`` of ``samples``."""
    import numpy as np
    from PIL import Image

    paths = [p for p, _ in list(samples)[:n]]
    if not paths:
        return 0.0
    started = time.perf_counter()
    for path in paths:
        with Image.open(path) as img:
            np.asarray(img.convert("RGB"))
    return (time.perf_counter() - started) / len(paths)


def _time_figure() -> float:
    """Seconds to draw and encode one small matplotlib figure as PNG (0 without matplotlib)."""
    import io

    started = time.perf_counter()
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib import pyplot as plt
    except ImportError:
        return 0.0
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(range(50), range(50))
    fig.savefig(io.BytesIO(), format="png", dpi=100)
    plt.close(fig)
    return time.perf_counter() - started


def _batches(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


def _device(cfg: Any) -> torch.device:
    wants_gpu = str(cfg.accelerator) in ("auto", "gpu", "cuda")
    return torch.device("cuda" if wants_gpu and torch.cuda.is_available() else "cpu")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(loader: Any, step: Any, batches: int, device: torch.device) -> _LoaderTime:
    """Time the first batch (loader start-up included), then ``batches`` more (the median)."""
    times: list[float] = []
    started = time.perf_counter()
    for batch in loader:
        if batch is not None:
            step(*(t.to(device) for t in batch))
            _sync(device)
        now = time.perf_counter()
        times.append(now - started)
        started = now
        if len(times) > batches:
            break
    if not times:
        return _LoaderTime(0.0, 0.0)
    rest = sorted(times[1:]) or times[:1]
    return _LoaderTime(times[0], rest[len(rest) // 2])


def _time_eval(model: nn.Module, loader: Any, batches: int, device: torch.device) -> _LoaderTime:
    model.eval()

    @torch.no_grad()
    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        model(x)

    return _timed(loader, step, batches, device)


def _time_train(model: nn.Module, groups: Any, phase: Phase, dm: Any, batches: int,
                device: torch.device) -> _LoaderTime:  # fmt: skip
    """Training steps of ``phase`` on a throwaway copy: its groups trainable, its BN policy."""
    work = copy.deepcopy(model)
    owner, pinned = groups.group_of(), set(getattr(model, "graft_frozen_params", ()))
    for name, param in work.named_parameters():
        param.requires_grad_(owner[name] in phase.trainable and name not in pinned)
    work.train(phase.bn == "train")
    params = [p for p in work.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-6)
    loss_fn = nn.CrossEntropyLoss()

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(work(x).float(), y).backward()
        optimizer.step()

    return _timed(dm._loader(dm.train_set, train=True), step, batches, device)  # uncached


def _time_cached_head(model: nn.Module, parts: Any, batch_size: int, batches: int,
                      device: torch.device) -> _LoaderTime:  # fmt: skip
    """Head steps on pooled features (what a cached head-only epoch runs), no loader."""
    head = copy.deepcopy(model.get_classifier()).train()
    features = torch.randn(batch_size, int(model.num_features), device=device)
    labels = torch.zeros(batch_size, dtype=torch.long, device=device)
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-6)
    loss_fn = nn.CrossEntropyLoss()

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(head(x), y).backward()
        optimizer.step()

    return _timed([(features, labels)] * (batches + 1), step, batches, device)
