"""Small helpers for running graft on several processes: rank queries, reductions, sharding, spawning.

graft never builds its own distributed machinery for training: ``graft fit --devices N --strategy
ddp --num-nodes M`` hands those options to Lightning's ``Trainer``. These helpers cover the
work outside a Trainer (``graft stats``, extraction) and work the same in three situations:

- no process group (one process): rank 0 of 1, reductions return their input;
- a ``torch.distributed`` process group already initialised (inside a Lightning DDP run, or by
  :func:`init_from_env` under ``torchrun`` / SLURM);
- :func:`spawn`: start ``N`` local processes with Lightning Fabric (gloo backend) and run a
  function in each.

:func:`graft.hardware.hardware` reads Lightning's ``accelerator`` / ``devices`` / ``strategy`` /
``num_nodes`` for the commands that run outside a Trainer, and :func:`graft.hardware.run_on` runs a
function there (both also reachable as ``graft.distributed.hardware`` / ``run_on``).

Example:
    >>> world_size(), rank(), is_rank_zero()
    (1, 0, True)
    >>> shard(["a", "b", "c", "d", "e"], rank=1, world=2)
    ['c', 'd', 'e']
    >>> all_reduce_sum([1, 2, 3])
    [1, 2, 3]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from graft.errors import ConfigError
from graft.lazy import lazy_exports

T = TypeVar("T")

# Environment variables that launchers set: torchrun / Lightning (RANK, WORLD_SIZE, LOCAL_RANK),
# SLURM (SLURM_PROCID, SLURM_NTASKS), MPI (OMPI_COMM_WORLD_*). Read in this order.
_RANK_VARS = ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK")
_WORLD_VARS = ("WORLD_SIZE", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")
_INT64_LIMIT = 2**62  # sums at or above this go through object gathering (exact Python ints)


def is_initialized() -> bool:
    """True when a ``torch.distributed`` process group is running in this process."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of processes: the process group's size, else the launcher's environment, else 1."""
    if is_initialized():
        return dist.get_world_size()
    return _env_int(_WORLD_VARS, 1)


def rank() -> int:
    """This process's global rank: the process group's, else the launcher's environment, else 0.

    Before the process group exists, processes that Lightning's ``ddp`` launcher started carry only
    ``LOCAL_RANK`` and ``NODE_RANK``; their global rank is ``NODE_RANK * LOCAL_WORLD_SIZE +
    LOCAL_RANK`` when the per-node count is known, else ``LOCAL_RANK`` on node 0 (exact) and a
    non-zero number on other nodes, so :func:`is_rank_zero` is always exact.
    """
    if is_initialized():
        return dist.get_rank()
    if any(os.environ.get(name) for name in _RANK_VARS):
        return _env_int(_RANK_VARS, 0)
    local = _env_int(("LOCAL_RANK",), 0)
    node = _env_int(("NODE_RANK", "GROUP_RANK"), 0)
    per_node = _env_int(("LOCAL_WORLD_SIZE",), local + 1)
    return node * max(per_node, local + 1) + local


def local_rank() -> int:
    """Rank on this machine (``LOCAL_RANK`` / ``SLURM_LOCALID``), 0 when not launched."""
    return _env_int(("LOCAL_RANK", "SLURM_LOCALID"), 0)


def is_rank_zero() -> bool:
    """True on the process that writes files and prints reports (global rank 0).

    Example:
        >>> if is_rank_zero():
        ...     pass  # write the bundle, the report, the manifest
    """
    return rank() == 0


_get_rank = rank  # shard() takes a parameter named rank


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    if is_initialized():
        dist.barrier()


def shard(items: Sequence[T], rank: int | None = None, world: int | None = None) -> list[T]:
    """Rank ``rank``'s contiguous slice of ``items`` (sizes differ by at most one).

    Contiguous slices concatenated in rank order give back ``items`` in their original order, so
    results gathered by rank equal a one-process run.

    Example:
        >>> [shard(range(5), r, 2) for r in range(2)]
        [[0, 1], [2, 3, 4]]
    """
    r = _get_rank() if rank is None else rank
    w = world_size() if world is None else world
    if w < 1 or not 0 <= r < w:
        raise ConfigError(f"rank must be in [0, world) with world >= 1, got rank={r}, world={w}")
    n = len(items)
    start, stop = (n * r) // w, (n * (r + 1)) // w
    return list(items[start:stop])


def all_reduce_sum(values: Sequence[int] | Sequence[float]) -> list:
    """Element-wise sum of ``values`` over all ranks; every rank gets the result.

    Integers are summed exactly (int64 tensors; Python integers beyond int64 through object
    gathering), floats in float64. Works on gloo (CPU tensors) and nccl (tensors on this rank's
    GPU). Without a process group it returns ``values`` as a list.

    Example:
        >>> all_reduce_sum([255, 65025])
        [255, 65025]
    """
    values = list(values)
    if not is_initialized() or world_size() == 1:
        return values
    integers = all(isinstance(v, int) for v in values)
    if integers and any(abs(v) >= _INT64_LIMIT for v in values):
        parts = all_gather_object(values)
        return [sum(column) for column in zip(*parts, strict=True)]
    dtype = torch.int64 if integers else torch.float64
    tensor = torch.tensor(values, dtype=dtype, device=_reduce_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    out = tensor.cpu().tolist()
    if integers and any(abs(v) >= _INT64_LIMIT for v in out):  # the sum itself grew too large
        parts = all_gather_object(values)
        return [sum(column) for column in zip(*parts, strict=True)]
    return out


def all_gather_object(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` without a process group).

    Example:
        >>> all_gather_object({"rank": 0})
        [{'rank': 0}]
    """
    if not is_initialized() or world_size() == 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def init_from_env(backend: str | None = None) -> bool:
    """Join the process group a launcher prepared (``torchrun``, ``srun``); True if one is running.

    Needs ``WORLD_SIZE`` > 1 plus ``MASTER_ADDR``/``MASTER_PORT`` (torchrun sets them; under
    ``srun`` they are derived from the job like Lightning does: first node, port from the job id). ``backend`` defaults
    to nccl when CUDA is available, else gloo. Does nothing for a single process.

    Example:
        >>> init_from_env()  # a plain `python` run: nothing to join
        False
    """
    if is_initialized():
        return True
    world = world_size()
    if world <= 1 or not _launched(world):
        return False
    _slurm_rendezvous()
    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ConfigError(
            f"world size {world} from the environment, but {', '.join(missing)} is not set; launch "
            "with `torchrun --nproc-per-node N ...`, or export MASTER_ADDR (first node's host name) "
            "and MASTER_PORT (a free port) in the SLURM job script."
        )
    backend = backend or default_backend()
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend, rank=rank(), world_size=world)
    return True


def _launched(world: int) -> bool:
    """False inside an interactive SLURM allocation (``salloc`` shell): SLURM_NTASKS counts tasks
    that ``srun`` would start, not processes that are running."""
    if "WORLD_SIZE" in os.environ or "SLURM_NTASKS" not in os.environ:
        return True
    from lightning.fabric.plugins.environments import SLURMEnvironment

    return SLURMEnvironment.detect()


def _slurm_rendezvous() -> None:
    """Under ``srun``, derive MASTER_ADDR / MASTER_PORT from the job as Lightning does."""
    if (
        "SLURM_NTASKS" not in os.environ
        or "MASTER_ADDR" in os.environ
        and "MASTER_PORT" in os.environ
    ):
        return
    from lightning.fabric.plugins.environments import SLURMEnvironment

    env = SLURMEnvironment()
    os.environ.setdefault("MASTER_ADDR", env.main_address)
    os.environ.setdefault("MASTER_PORT", str(env.main_port))


def default_backend() -> str:
    """``nccl`` when CUDA is available, else ``gloo``."""
    return "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"


def spawn(fn: Callable[..., T], world: int, *args: Any, backend: str = "gloo") -> T:
    """Run ``fn(*args)`` in ``world`` fresh local processes joined in one process group; return
    rank 0's result.

    The processes are started by Lightning Fabric (``ddp`` with the ``spawn`` start method), the
    launcher ``graft fit`` uses through its Trainer. Each process sees :func:`rank`,
    :func:`local_rank` and :func:`world_size` as usual and keeps this process's torch thread count
    (Lightning would divide the cores, which changes float results in the last digits). ``fn``
    must be importable (a module-level function) and its result picklable. Errors in a worker are
    raised here.

    Example:
        >>> spawn(print, 2, "hello")  # doctest: +SKIP
    """
    if world < 1:
        raise ConfigError(f"the number of processes must be at least 1, got {world}")
    if backend not in ("gloo", "nccl"):
        raise ConfigError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
    from lightning.fabric import Fabric
    from lightning.fabric.strategies import DDPStrategy

    strategy = DDPStrategy(start_method="spawn", process_group_backend=backend)
    accelerator = "cuda" if backend == "nccl" else "cpu"
    fabric = Fabric(accelerator=accelerator, devices=world, strategy=strategy)
    threads = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = threads or str(torch.get_num_threads())
    try:
        return fabric.launch(_worker, fn, args)
    finally:
        if threads is None:
            del os.environ["OMP_NUM_THREADS"]


def _worker(fabric: Any, fn: Callable[..., Any], args: tuple) -> Any:
    """One process of :func:`spawn`: Fabric has joined the process group; run ``fn`` there."""
    os.environ.update(
        {
            "RANK": str(fabric.global_rank),
            "LOCAL_RANK": str(fabric.local_rank),
            "WORLD_SIZE": str(fabric.world_size),
        }
    )
    result = fn(*args)
    fabric.barrier()
    return result


def sync_batchnorm_plugin() -> Any:
    """A Lightning ``LayerSync`` plugin for ``Trainer(plugins=[...])`` that syncs BatchNorm across
    processes without breaking timm's fused norm + activation layers.

    Lightning's own ``sync_batchnorm=True`` uses ``torch.nn.SyncBatchNorm.convert_sync_batchnorm``,
    which turns timm's ``BatchNormAct2d`` into a plain ``SyncBatchNorm`` and silently drops its
    activation. This plugin converts with timm's converter (``SyncBatchNormAct`` keeps ``act`` and
    ``drop``) and reverts to the original classes, so the bundle saved after training is the model
    that was created.

    Example:
        >>> plugin = sync_batchnorm_plugin()
        >>> type(plugin).__name__
        'TimmSyncBatchNorm'
    """
    from lightning.pytorch.plugins.layer_sync import LayerSync

    class TimmSyncBatchNorm(LayerSync):
        def apply(self, model: torch.nn.Module) -> torch.nn.Module:
            from timm.layers import convert_sync_batchnorm

            return convert_sync_batchnorm(model)

        def revert(self, model: torch.nn.Module) -> torch.nn.Module:
            return _revert_sync_batchnorm(model)

    return TimmSyncBatchNorm()


def _revert_sync_batchnorm(module: torch.nn.Module) -> torch.nn.Module:
    """Inverse of timm's ``convert_sync_batchnorm``: ``SyncBatchNormAct`` -> ``BatchNormAct2d``,
    ``SyncBatchNorm`` -> ``BatchNorm2d``; parameters and buffers are shared, not copied."""
    from timm.layers.norm_act import BatchNormAct2d, SyncBatchNormAct

    out = module
    if isinstance(module, torch.nn.SyncBatchNorm):
        args = (module.num_features, module.eps, module.momentum, module.affine)
        if isinstance(module, SyncBatchNormAct):
            out = BatchNormAct2d(*args, track_running_stats=module.track_running_stats)
            out.act, out.drop = module.act, module.drop
        else:
            out = torch.nn.BatchNorm2d(*args, track_running_stats=module.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        out.running_mean, out.running_var = module.running_mean, module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.training = module.training
    for name, child in module.named_children():
        out.add_module(name, _revert_sync_batchnorm(child))
    return out


def _reduce_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _env_int(names: Sequence[str], default: int) -> int:
    for name in names:
        value = os.environ.get(name)
        if value not in (None, ""):
            try:
                return int(value)
            except ValueError:
                raise ConfigError(
                    f"environment variable {name}={value!r} is not an integer"
                ) from None
    return default


# Lightning's hardware vocabulary lives in graft.hardware (which imports this module); its names stay
# reachable here, resolved on first use
__getattr__, __dir__ = lazy_exports(
    __name__,
    {name: "graft.hardware" for name in ("Hardware", "hardware", "run_on", "single_device")},
)
