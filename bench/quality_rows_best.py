"""The ``preset-best (ensemble)`` row of bench/bench_quality.py: ``--preset best`` from shared fits.

``graft fit --preset best`` fits ``--model`` and the extra members chosen by
:func:`graft.ensembling.members.choose_members` (default for Lite0: the cheapest offline backbones,
MobileNetV2 and Lite1) with recipe ``auto``, then combines them with
:func:`graft.ensembling.combine.combine_members` (weights on val, TTA when flips are allowed). This
row does exactly that from member fits the other rows already made on the same split and seed: the
``auto`` run of quality_rows_core.py is the Lite0 member and quality_rows_ensemble.py's cached
``auto`` fits are the others (same options as the preset would give them). Its time is the sum of
the members' fit times plus the combine step, timed here, with the preset's own weighting
(:data:`graft.ensembling.combine.ENSEMBLE_WEIGHTS`); ``test_acc_no_tta`` is without the mirrored
images.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

from bench_quality import protocol
from quality_rows_ensemble import fit_member


def _members(model: str) -> list[str]:
    from graft.ensembling.members import choose_members

    cfg = SimpleNamespace(model=model, ensemble_models=None, weights="pretrained")
    return [model, *choose_members(cfg)]


def preset_best(data: Path, seed: int, work: Path) -> dict:
    from graft.ensembling.combine import combine_members

    p = protocol()
    fits = [fit_member(data, seed, work, m) for m in _members(p["model"])]
    bundles = [f["bundle"] for f in fits]
    started = time.perf_counter()
    r = combine_members(bundles, str(data), work / "best", seed=seed, tta=p["flip"])  # the preset's
    combine_seconds = time.perf_counter() - started
    m = r.metrics
    tta = "test_acc_tta" in m
    return {
        "test_acc": m["test_acc_tta"] if tta else m["test_acc"],
        "test_acc_no_tta": m["test_acc"],
        "val_acc": m.get("val_acc_tta", m.get("val_acc")),
        "seconds": round(sum(f["seconds"] for f in fits) + combine_seconds, 1),
        "combine_seconds": round(combine_seconds, 1),
        "members": {
            f["model"]: {"test_acc": f["test_acc"], "seconds": round(f["seconds"], 1)} for f in fits
        },  # fmt: skip
        "weights": r.ensemble.weights,
        "weighting": r.weighting,
        "tta": tta,
    }


ROWS = {"preset-best (ensemble)": preset_best}
