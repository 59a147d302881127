"""Run ``graft.fit`` under Lightning DDP and record, per rank, what a test needs to check.

Usage: python ddp_fit.py TRACE_DIR DATA OUT [KEY=VALUE ...]   (values parsed as YAML scalars)

Lightning's ``ddp`` strategy starts rank 1 by running this same command again with ``LOCAL_RANK``
set, so every rank records into ``TRACE_DIR/rank{R}.json``:

- ``writes``: every path written through ``graft.io`` (atomic writes) by this rank;
- ``epochs``: per training epoch, the number of trainable parameters and the phase name;
- ``state_sha``: sha256 of the final model weights (identical on all ranks when DDP stayed in step);
- ``steps``: optimizer steps done when training starts (after a resume) and at the end;
- ``metrics``: what ``fit`` returned.

``crash_after=E`` (optional) raises on every rank once epoch ``E`` has finished (its checkpoint
written), as a crash mid-schedule would; the process then exits with an error and writes no record.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import lightning.pytorch as pl
import torch
import yaml

torch.set_num_threads(1)


class Recorder(pl.Callback):
    """Trainable parameter count and phase at every epoch start; weights hash at the end."""

    def __init__(self) -> None:
        self.epochs: list[dict] = []
        self.state_sha = ""
        self.steps: list[int] = []  # optimizer steps done at train start and at the end

    def on_train_start(self, trainer, pl_module) -> None:
        self.steps.append(trainer.global_step)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        trainable = sum(p.numel() for p in pl_module.model.parameters() if p.requires_grad)
        phase = pl_module.phase.name if pl_module.phase is not None else None
        synced = sum(isinstance(m, torch.nn.SyncBatchNorm) for m in pl_module.modules())
        self.epochs.append(
            {
                "epoch": trainer.current_epoch,
                "trainable": trainable,
                "phase": phase,
                "sync_bn": synced,
            }
        )

    def on_fit_end(self, trainer, pl_module) -> None:
        self.steps.append(trainer.global_step)
        digest = hashlib.sha256()
        for name, tensor in sorted(pl_module.model.state_dict().items()):
            digest.update(name.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
        self.state_sha = digest.hexdigest()


class CrashAfter(pl.Callback):
    """Raises on every rank once epoch ``epoch`` has finished (its checkpoint written)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError(f"simulated crash after epoch {self.epoch}")


def main() -> None:
    trace, data, out, *pairs = sys.argv[1:]
    options = {k: yaml.safe_load(v) for k, v in (p.split("=", 1) for p in pairs)}
    rank = int(os.environ.get("LOCAL_RANK", "0"))
    writes: list[str] = []

    import graft.io

    def traced(original):
        @contextmanager
        def wrapper(path, *args, **kwargs):
            writes.append(os.path.abspath(path))
            with original(path, *args, **kwargs) as f:
                yield f

        return wrapper

    # write_json / write_text / write_bytes look these names up in graft.io at call time
    graft.io.atomic_write = traced(graft.io.atomic_write)
    graft.io.atomic_path = traced(graft.io.atomic_path)
    from graft import fit  # the public graft.fit: ends with report.html

    recorder = Recorder()
    callbacks: list[pl.Callback] = [recorder]
    if "crash_after" in options:
        callbacks.append(CrashAfter(int(options.pop("crash_after"))))
    result = fit(data, out=out, callbacks=callbacks, **options)
    Path(trace).mkdir(parents=True, exist_ok=True)
    (Path(trace) / f"rank{rank}.json").write_text(
        json.dumps({"writes": writes, "epochs": recorder.epochs, "state_sha": recorder.state_sha,
                    "steps": recorder.steps,
                    "metrics": result.metrics, "events": result.events}, default=str)
    )  # fmt: skip


if __name__ == "__main__":
    main()
