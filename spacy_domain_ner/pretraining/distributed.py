"""One process or torchrun's DistributedDataParallel: the process group, this process's rank and device."""
import os
from dataclasses import dataclass

import torch


@dataclass
class Dist:
    """This process's place in a (possibly single-process) run."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            torch.distributed.barrier()

    def close(self) -> None:
        """Leave the process group together: a rank exiting early can abort the others' last collective."""
        if self.world_size > 1 and torch.distributed.is_initialized():
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()


def setup_distributed(device: str) -> Dist:
    """Join the process group when launched by torchrun/accelerate (WORLD_SIZE > 1)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if world_size > 1:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
        if cuda:
            torch.cuda.set_device(local_rank)
        target = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
        return Dist(rank=torch.distributed.get_rank(), world_size=world_size, device=target)
    return Dist(rank=0, world_size=1, device=torch.device(("cuda" if cuda else "cpu") if device == "auto" else device))
