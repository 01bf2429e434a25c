"""torchrun / single-process context: rank, world size, device, and the few collectives we need.

Launched by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the process group is initialised
with NCCL on CUDA and gloo on CPU, each rank on ``cuda:LOCAL_RANK``. Without torchrun everything
runs as rank 0 of 1 and no process group is created.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from asyncvla_policy.devices import resolve_device


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        """Sum a few floats over ranks (float64 on the backend's device)."""
        if not self.distributed:
            return list(values)
        device = self.device if dist.get_backend() == "nccl" else torch.device("cpu")
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.cpu().tolist()

    def broadcast_(self, tensors: list[torch.Tensor]) -> None:
        """Overwrite ``tensors`` in place with rank 0's values (gloo: via CPU copies)."""
        if not self.distributed:
            return
        on_device = dist.get_backend() == "nccl"
        for tensor in tensors:
            buf = tensor.data if on_device else tensor.data.cpu()
            dist.broadcast(buf, src=0)
            if not on_device:
                tensor.data.copy_(buf)

    def close(self) -> None:
        if self.initialized_here and dist.is_initialized():
            dist.destroy_process_group()
            self.initialized_here = False


def init_distributed(device: str = "auto") -> DistContext:
    """Context from the torchrun environment (or world size 1); initialises the process group."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if world_size <= 1:
        return DistContext(device=dev)
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    initialized_here = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        initialized_here = True
    return DistContext(
        rank=rank,
        world_size=world_size,
        local_rank=local_rank,
        device=dev,
        initialized_here=initialized_here,
    )
