"""Inference in one or several processes: ``--accelerator cpu --devices 2`` for predict and evaluate.

With Lightning's ``accelerator`` / ``devices`` naming more than one device, the images are split in
contiguous shards, one per process (started by Lightning Fabric through
:func:`graft.distributed.spawn`, or by ``torchrun`` / ``srun``); each process loads the bundle on
its own device, runs :func:`graft.inference.runner.run_inference` on its shard, and the shards are
gathered in rank order, so the output is the one a single process gives (same rows, same order,
probabilities equal to float precision).

Example:
    >>> bundle, hw = prepare("runs/pets/bundle", accelerator="cpu", devices=2)  # doctest: +SKIP
    >>> infer_files(bundle, ["a.jpg", "b.jpg"], hw, batch_size=32).index  # doctest: +SKIP
    [0, 1]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from graft import distributed
from graft.bundle import Bundle, load_bundle
from graft.inference.runner import InferenceOutput, run_inference


def prepare(
    bundle: Bundle | str | os.PathLike,
    accelerator: str = "auto",
    devices: int | str = 1,
    device: str | None = None,
    strategy: str = "auto",
    num_nodes: int = 1,
) -> tuple[Bundle, distributed.Hardware]:
    """The loaded bundle and the hardware to run it on (Lightning's ``accelerator`` / ``devices``).

    With several processes this process loads the bundle on the CPU, for its classes and metadata;
    each spawned process loads its own copy on its device. ``device`` is the old spelling.
    """
    hw = _hardware(accelerator, devices, device, strategy, num_nodes)
    if isinstance(bundle, Bundle):
        return bundle, hw
    if device is not None:
        return load_bundle(bundle, device=str(device)), hw
    return load_bundle(bundle, device="cpu" if hw.processes > 1 else hw.device(0)), hw


def infer_files(
    bundle: Bundle, files: Sequence[str], hw: distributed.Hardware | None = None, **options: Any
) -> InferenceOutput:
    """Probabilities of ``files``: here, in ``hw.processes`` spawned processes, or across the ranks
    of a running process group (every rank gets the whole output)."""
    files = [os.fspath(f) for f in files]
    if distributed.is_initialized() and distributed.world_size() > 1:
        return _sharded(bundle, files, options)
    if hw is not None and hw.processes > 1:
        kind = "gpu" if hw.kind == "cuda" else hw.kind
        devices = ",".join(map(str, hw.indices)) + "," if hw.indices else hw.processes
        return distributed.spawn(
            _rank, hw.processes, os.fspath(bundle.path), files, kind, devices, options
        )
    return run_inference(bundle, files, **options)


def _hardware(
    accelerator: str, devices: Any, device: str | None, strategy: str, num_nodes: int
) -> distributed.Hardware:
    if device is not None:  # the old spelling; single_device warns and names the new one
        kind = distributed.single_device(device=device)
        return distributed.Hardware("cpu" if kind == "cpu" else "cuda", 1)
    return distributed.hardware(accelerator, devices, strategy, num_nodes)


def _rank(
    path: str, files: list[str], accelerator: str, devices: Any, options: dict[str, Any]
) -> InferenceOutput:
    """One spawned process: its device, its copy of the bundle, its shard, then the gathered whole."""
    hw = distributed.hardware(accelerator, devices)
    bundle = load_bundle(path, device=hw.device(distributed.local_rank()))
    return _sharded(bundle, files, options)


def _sharded(bundle: Bundle, files: list[str], options: dict[str, Any]) -> InferenceOutput:
    positions = distributed.shard(range(len(files)))
    out = run_inference(bundle, [files[i] for i in positions], **options)
    part = (positions, out.probs, out.index, out.failed)
    probs, index, failed = [], [], {}
    for where, p, local, bad in distributed.all_gather_object(part):  # rank order = file order
        probs.append(p)
        index += [where[i] for i in local]
        failed.update({where[i]: reason for i, reason in bad.items()})
    return InferenceOutput(np.concatenate(probs), index, failed)
