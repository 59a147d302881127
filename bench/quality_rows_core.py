"""Rows of bench/bench_quality.py for ``auto`` and its levers: WiSE-FT, weight averaging, presets.

``auto``, ``auto+wise``, ``auto+swa``, ``auto+top-k``, ``auto+greedy-soup`` and ``auto+greedy-soup+tta`` (the first ``best``)
differ only in what happens after training, and with the same seed their training runs are
identical. So one ``graft.fit`` run per split and seed trains once (keeping the head-phase weights
and every full-phase epoch with :class:`graft.train.snapshots.WeightSnapshots`), and each row
applies its own step to the same best checkpoint with graft's functions
(:mod:`graft.train.improve`): a paired comparison. A row's ``seconds`` = the shared run (scan,
cache, training, final evaluation) + that row's own step, timed. ``preset-fast`` is its own
``graft.fit(preset="fast")`` run (a probe: no shared training).
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

from bench_quality import protocol

_SHARED: dict[tuple[str, int], dict[str, dict]] = {}
VARIANTS = (
    "auto",
    "auto+wise",
    "auto+swa",
    "auto+top-k",
    "auto+greedy-soup",
    "auto+greedy-soup+tta",
)


def _options(seed: int) -> dict:
    p = protocol()
    return {"seed": seed, "model": p["model"], "image_size": p["image_size"], "epochs": p["epochs"],
            "flip": p["flip"], "batch_size": p["batch_size"], "workers": p["workers"],
            "progress": False, "report": False}  # fmt: skip


def _variant(name: str, parts, module, folder: Path, best: dict) -> dict:
    from graft.train.averaging import accuracy
    from graft.train.improve import _average, _wise
    from graft.train.snapshots import epoch_snapshots, load_lp

    model, dm, device = module.eval_model(), parts.datamodule, module.device
    model.load_state_dict(best)
    started = time.perf_counter()
    extra: dict = {}
    if name == "auto+wise":
        extra["wise_alpha"] = _wise(model, load_lp(folder), dm, device)["alpha"]
    elif name in ("auto+swa", "auto+top-k", "auto+greedy-soup", "auto+greedy-soup+tta"):
        method = "greedy-soup" if name == "auto+greedy-soup+tta" else name[5:]
        cfg = SimpleNamespace(average=method, average_k=2)
        extra["average_epochs"] = _average(cfg, model, dm, epoch_snapshots(folder), device)[
            "epochs"
        ]
    tta = name == "auto+greedy-soup+tta" and parts.cfg.flip
    test = accuracy(model, dm.test_dataloader(), device, tta=tta)
    val = accuracy(model, dm.val_dataloader(), device, tta=tta)
    return {"test_acc": test, "val_acc": val, "own_seconds": time.perf_counter() - started,
            "tta": tta, **extra}  # fmt: skip


def _train_once(data: Path, seed: int, work: Path) -> dict[str, dict]:
    from graft.train import fit
    from graft.train.snapshots import WeightSnapshots

    folder = work / "kept"

    class Snapshots(WeightSnapshots):  # the plan comes from the run's own unfreezing callback
        def on_fit_start(self, trainer, pl_module) -> None:
            self.plan = next(c.plan for c in trainer.callbacks if hasattr(c, "plan"))

    keeper = Snapshots(folder, None, lp=True, epochs=True)
    results: dict[str, dict] = {}

    def on_trained(parts, module, metrics):
        best = {k: v.detach().clone() for k, v in module.eval_model().state_dict().items()}
        for name in VARIANTS:
            results[name] = _variant(name, parts, module, folder, best)
        module.eval_model().load_state_dict(best)
        return {}

    started = time.perf_counter()
    result = fit(str(data), out=str(work / "run"), callbacks=[keeper], on_trained=on_trained,
                 **_options(seed))  # fmt: skip
    shared = time.perf_counter() - started - sum(r["own_seconds"] for r in results.values())
    assert abs(results["auto"]["test_acc"] - result.metrics["test_acc"]) < 1e-6  # same evaluation
    for r in results.values():
        r["seconds"] = round(shared + r.pop("own_seconds"), 1)
        r["shared_seconds"] = round(shared, 1)
    _register_member(data, seed, work, result, shared)
    return results


def _register_member(data: Path, seed: int, work: Path, result, seconds: float) -> None:
    """The ``auto`` run is also the Lite0 member of the ensemble rows: no second identical fit."""
    from quality_rows_ensemble import member_folder, save_member

    model = protocol()["model"]
    save_member(member_folder(data, seed, work, model), model, "auto", result, seconds)


def _shared_row(name: str):
    def row(data: Path, seed: int, work: Path) -> dict:
        key = (str(data), seed)
        if key not in _SHARED:
            _SHARED[key] = _train_once(data, seed, work)
        return _SHARED[key][name]

    return row


def _fast(data: Path, seed: int, work: Path) -> dict:
    from graft.train import fit

    started = time.perf_counter()
    result = fit(str(data), out=str(work / "run"), preset="fast", **_options(seed))
    m = result.metrics
    return {"test_acc": m["test_acc"], "val_acc": m.get("val_acc"),
            "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip


ROWS = {name: _shared_row(name) for name in VARIANTS} | {"preset-fast": _fast}
