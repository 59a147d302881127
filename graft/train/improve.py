"""After training: weight averaging (``--average``) then WiSE-FT (``--wise``), chosen on validation.

Order: the best checkpoint is loaded (as always), then

1. ``average`` (last-phase epoch weights kept by :class:`~graft.train.snapshots.WeightSnapshots`):
   ``swa`` = their mean; ``top-k`` = the mean of the ``average_k`` with the best validation
   accuracy; ``greedy-soup`` = added in order of validation accuracy while it does not drop. BatchNorm
   running statistics are then measured again on the (unaugmented) training images with
   :func:`torch.optim.swa_utils.update_bn` when the checkpoints' statistics differ (recipes that
   train BatchNorm, e.g. ``full``). When they are identical (``auto`` keeps BatchNorm in eval mode,
   so every checkpoint holds the pre-trained statistics the weights were trained with) they are
   kept: recomputing them there changed the function and cost 37 to 40 points in a small digits run.
2. ``wise`` (recipe ``auto``): ``(1 - alpha) * head-phase weights + alpha * fine-tuned weights`` for
   alpha in 0, 0.1, ..., 1, every tensor interpolated, BatchNorm running statistics included; the
   alpha with the best validation accuracy is kept (ties go to the larger alpha, and alpha = 1 is
   the fine-tuned model itself, so WiSE-FT never loses to it on validation). Interpolating the
   statistics rather than recomputing them is what the WiSE-FT reference code does, costs nothing,
   and is exact for ``auto``: its BatchNorm policies (``frozen`` then ``eval``) never update the
   running statistics, so both endpoints hold the same pre-trained ones (recomputing them would
   change both endpoints' function, as measured for averaging).

The choices land in ``metrics.json`` under ``"weights"`` (and ``wise_alpha`` / ``average_n`` in the
metrics); the bundle holds the chosen weights.

Example:
    >>> record = improve_weights(parts, module, folder)  # doctest: +SKIP
    >>> record["wise"]["alpha"]  # doctest: +SKIP
    0.7
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from graft.errors import ConfigError
from graft.log import get_logger
from graft.train.averaging import (
    accuracy,
    average_states,
    bn_buffers_differ,
    greedy_soup,
    interpolate_states,
    recompute_bn,
)
from graft.train.snapshots import Snapshot, epoch_snapshots, load_lp

log = get_logger("graft.train")
ALPHAS = tuple(round(0.1 * i, 1) for i in range(11))


def wants_snapshots(cfg: Any) -> tuple[bool, bool]:
    """(keep the head-phase weights, keep each last-phase epoch) for this config."""
    return bool(cfg.wise) and cfg.recipe == "auto", cfg.average != "none"


def improve_weights(parts: Any, module: Any, folder: Path) -> dict[str, Any]:
    """Average and/or interpolate the weights of ``module.eval_model()`` in place; return the record.

    ``parts`` is :class:`graft.train.parts.FitParts` (config and data module).
    """
    cfg, dm = parts.cfg, parts.datamodule
    if parts.trainer is not None:
        parts.trainer.strategy.barrier("graft-snapshots")  # rank 0 wrote the files
    model = module.eval_model()
    record: dict[str, Any] = {}
    if cfg.average != "none":
        record["average"] = _average(cfg, model, dm, epoch_snapshots(folder), module.device)
    lp = load_lp(folder) if cfg.wise and cfg.recipe == "auto" else None
    if lp is not None:
        record["wise"] = _wise(model, lp, dm, module.device)
    return record


def choose_alpha(
    start: dict[str, torch.Tensor], end: dict[str, torch.Tensor], model: torch.nn.Module,
    score: Any, alphas: tuple[float, ...] = ALPHAS,
) -> tuple[float, list[list[float]]]:  # fmt: skip
    """The alpha of ``alphas`` whose interpolation scores best (``score(model) -> accuracy``; ties go
    to the larger alpha); ``model`` is left holding those weights. Returns (alpha, [[alpha, score]]).

    Example:
        >>> alpha, curve = choose_alpha(lp, ft, model, lambda m: accuracy(m, val))  # doctest: +SKIP
    """
    curve = []
    for alpha in alphas:
        model.load_state_dict(interpolate_states(start, end, alpha))
        curve.append([alpha, round(float(score(model)), 6)])
    best = max(curve, key=lambda p: (p[1], p[0]))[0]
    model.load_state_dict(interpolate_states(start, end, best))
    return best, curve


def _wise(model: torch.nn.Module, lp: dict, dm: Any, device: torch.device) -> dict[str, Any]:
    val = _val_loader(dm, "--wise")
    end = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    alpha, curve = choose_alpha(lp, end, model, lambda m: accuracy(m, val, device))
    model.to(device)
    log.info("WiSE-FT: alpha %.1f (val acc %s; alpha 1 = fine-tuned %s)", alpha,
             dict(curve)[alpha], curve[-1][1])  # fmt: skip
    return {"alpha": alpha, "curve": curve, "bn": "interpolated"}


def _average(cfg: Any, model: torch.nn.Module, dm: Any, snaps: list[Snapshot], device) -> dict:
    if not snaps:
        log.warning(
            "--average %s: no epoch weights were kept; the best checkpoint is used", cfg.average
        )
        return {"method": cfg.average, "epochs": []}
    record: dict[str, Any] = {"method": cfg.average}
    if cfg.average == "swa":
        chosen = snaps
        state = average_states([s.load() for s in chosen])
    elif cfg.average == "top-k":
        _val_loader(dm, "--average top-k")
        chosen = sorted(snaps, key=lambda s: -(s.val_acc or 0.0))[: cfg.average_k]
        state = average_states([s.load() for s in chosen])
    else:
        val = _val_loader(dm, "--average greedy-soup")
        states = [s.load() for s in snaps]

        def score(candidate: dict) -> float:
            model.load_state_dict(candidate)
            return accuracy(model, val, device)

        state, kept, curve = greedy_soup(states, [s.val_acc or 0.0 for s in snaps], score)
        chosen = [snaps[i] for i in kept]
        record["soup_curve"] = [round(v, 6) for v in curve]
    model.load_state_dict(state)
    record["bn"] = _average_bn(model, [s.path for s in snaps], dm, device)
    record["epochs"] = [s.epoch for s in chosen]
    if dm.val_set is not None:
        record["val_acc"] = round(accuracy(model, dm.val_dataloader(), device), 6)
    log.info("--average %s: epochs %s, BatchNorm %s", cfg.average, record["epochs"], record["bn"])
    return record


def _average_bn(model: torch.nn.Module, paths: list, dm: Any, device) -> str:
    """Recompute BatchNorm statistics (``update_bn``) when the checkpoints' statistics differ.

    When they are identical (``auto`` keeps BatchNorm in eval mode: the pre-trained statistics
    never change), the average already holds the exact statistics every averaged weight was
    trained with, and measuring new ones changes the function: on the digits sample that cost
    37 to 40 points (docs/benchmarks/quality.md). They are kept then.
    """
    from safetensors.torch import load_file

    states = [load_file(str(p)) for p in paths]
    if not bn_buffers_differ(model, states):
        return "kept (identical in every checkpoint)"
    return (
        "recomputed" if recompute_bn(model, dm.eval_loader(dm.plain_train_set), device) else "none"
    )


def _val_loader(dm: Any, what: str) -> Any:
    if dm.val_set is None:
        raise ConfigError(
            f"{what} chooses on validation images, and this run has none: add a val/ folder or "
            "set --val-split (e.g. 0.1)."
        )
    return dm.val_dataloader()


def tta_metrics(module: Any, dm: Any) -> dict[str, float]:
    """``val_acc_tta`` / ``test_acc_tta``: accuracy with each image and its mirror averaged.

    Example:
        >>> tta_metrics(module, datamodule)  # doctest: +SKIP
        {'val_acc_tta': 0.93, 'test_acc_tta': 0.92}
    """
    out = {}
    for name, part in (("val", dm.val_set), ("test", dm.test_set)):
        if part is not None:
            loader = dm.val_dataloader() if name == "val" else dm.test_dataloader()
            acc = accuracy(module.eval_model(), loader, module.device, tta=True)
            out[f"{name}_acc_tta"] = round(acc, 6)
    return out


def metric_values(record: dict[str, Any]) -> dict[str, float]:
    """The numbers of ``record`` that join the run's metrics (``wise_alpha``, ``average_n``)."""
    out: dict[str, float] = {}
    if "wise" in record:
        out["wise_alpha"] = float(record["wise"]["alpha"])
    if "average" in record:
        out["average_n"] = float(len(record["average"]["epochs"]))
    return out
