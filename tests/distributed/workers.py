"""Functions run inside processes started by :func:`graft.distributed.spawn` (module level: importable)."""

from __future__ import annotations

import json
from pathlib import Path

from graft import distributed
from graft.io import write_json


def reduce_values(out: str) -> None:
    """Each rank contributes rank-dependent values; every rank writes what it received."""
    r = distributed.rank()
    ints = distributed.all_reduce_sum([r + 1, 2**40 * (r + 1), -3])
    floats = distributed.all_reduce_sum([0.1 * (r + 1), 1e-12])
    huge = distributed.all_reduce_sum([2**70 + r])
    gathered = distributed.all_gather_object({"rank": r})
    mine = distributed.shard(list(range(7)))
    write_json(
        Path(out) / f"rank{r}.json",
        {"world": distributed.world_size(), "ints": ints, "floats": floats, "huge": str(huge[0]),
         "gathered": gathered, "shard": mine, "zero": distributed.is_rank_zero()},
    )  # fmt: skip


def stats_on_rank(data: str, out: str) -> None:
    """``dataset_stats`` inside the process group; every rank writes its result."""
    from graft.data import dataset_stats

    stats = dataset_stats(data, model="test_efficientnet", progress=False, workers=1)
    write_json(Path(out) / f"stats{distributed.rank()}.json", stats.to_dict())


def read(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def extract_on_rank(data: str, store: str, out: str) -> None:
    """``graft.extract`` inside the process group; every rank saves what it returned and how many
    images its own model saw (a forward hook counts them)."""
    import numpy as np
    import torch

    from graft.features import extract
    from graft.models import create_model

    torch.manual_seed(0)  # random-init weights: the same on every rank and in the one-process run
    net = create_model("test_efficientnet", num_classes=0, pretrained=False)
    seen = []
    net.conv_stem.register_forward_hook(lambda m, inputs, out: seen.append(len(inputs[0])))
    f = extract(data, model=net, image_size=32, batch_size=4, workers=0, out=store, progress=False)
    r = distributed.rank()
    np.save(Path(out) / f"features{r}.npy", f.features)
    write_json(Path(out) / f"meta{r}.json", {"files": f.files, "splits": f.splits,
                                             "labels": f.labels.tolist(), "seen": sum(seen)})  # fmt: skip
