"""Data-parallel training under `torchrun` (NCCL on GPUs, gloo on CPUs).

`torchrun --nproc_per_node N -m gptkit train ...` starts N copies of the same command; each
reads its RANK / WORLD_SIZE / LOCAL_RANK from the environment. Every rank draws the same
*global* batch from the shared data generator and keeps its own slice, so N ranks with batch B
take exactly the step one process takes with batch B and gradient accumulation N (the loop's
test checks this). Rank 0 alone logs and saves; all ranks resume from the same saved step.
"""

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_distributed(device_type: str) -> Dist:
    """Join the process group torchrun describes (once); a single process gets Dist()."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return Dist(rank=rank, world=world, local_rank=local_rank)


def any_rank(flag: bool, d: Dist, device) -> bool:
    """True on every rank when it is True on at least one (e.g. one rank got Ctrl-C)."""
    if not d.enabled:
        return flag
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def mean_over_ranks(value: torch.Tensor, d: Dist) -> torch.Tensor:
    if not d.enabled:
        return value
    import torch.distributed as dist

    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / d.world


def wrap_model(model, d: Dist, device_type: str):
    """The module the loss runs through: DDP-wrapped when data-parallel, else the model itself."""
    if not d.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(model, device_ids=[d.local_rank] if device_type == "cuda" else None)


def finish_distributed(d: Dist) -> None:
    """Leave the process group together once training is over: every rank waits for rank 0 to
    finish saving, then tears the group down. A rank that simply exited with the group alive
    could be killed mid-way by its communication threads (SIGABRT at interpreter exit)."""
    if d.enabled:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
