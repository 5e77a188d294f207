"""``rank`` across processes: torchrun's process group, cameras sharded, per-view records gathered.

Under ``torchrun --nproc-per-node N [--nnodes M --rdzv-endpoint HOST:PORT] -m viewselect rank ...``
every process scores every ``world``-th (sequence, camera) view (``evaluate_views(shard=...)``),
then the per-view records are all-gathered (``all_gather_object``) and put back in the
single-process order, so every process ranks the same records and gets the same result; only
process 0 writes outputs (the CLI checks :attr:`RankOutcome.process_rank`). Noise is seeded per
view, so results do not depend on the number of processes. Without torchrun (``WORLD_SIZE`` unset
or 1) all of this is a no-op.

Set-up that writes the shared cache (the synthetic MANO files, the embedded capture) runs on each
node's local process 0 first while the others wait at a barrier (:meth:`ProcessGroup.local_first`),
so processes never race to generate the same files.
"""

from __future__ import annotations

import os
from typing import Callable, TypeVar

import torch

T = TypeVar("T")

__all__ = ["ProcessGroup"]


class ProcessGroup:
    """This process's place in torchrun's group: ``rank``, ``world``, ``local_rank`` (0, 1, 0 alone)."""

    def __init__(self, rank: int = 0, world: int = 1, local_rank: int = 0, started: bool = False):
        self.rank, self.world, self.local_rank, self.started = rank, world, local_rank, started

    @classmethod
    def join(cls, device: str | None = None) -> "ProcessGroup":
        """Join the group torchrun set up (gloo on CPU, nccl on CUDA); a single process otherwise."""
        import torch.distributed as dist

        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1 or not dist.is_available():
            return cls()
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        started = False
        if not dist.is_initialized():
            cuda = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
            if cuda:
                torch.cuda.set_device(local_rank)  # nccl's object collectives use the current device
            dist.init_process_group(backend="nccl" if cuda else "gloo")
            started = True
        group = cls(dist.get_rank(), dist.get_world_size(), local_rank, started)
        if group.rank != 0:
            os.environ["VIEWSELECT_PROGRESS"] = "0"  # one progress display per job, process 0's
        return group

    def leave(self) -> None:
        if self.started:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.started = False

    @property
    def shard(self) -> tuple[int, int]:
        return self.rank, self.world

    def device(self, requested: str | None) -> torch.device:
        """The requested device, or CUDA when available; under torchrun each process its local GPU."""
        dev = torch.device(requested or ("cuda" if torch.cuda.is_available() else "cpu"))
        if dev.type == "cuda" and dev.index is None and self.world > 1:
            dev = torch.device("cuda", self.local_rank)
        return dev

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def local_first(self, fn: Callable[[], T]) -> T:
        """``fn()`` on local process 0 first (it may write the cache), then on the others."""
        if self.world <= 1:
            return fn()
        if self.local_rank == 0:
            out = fn()
            self.barrier()
            return out
        self.barrier()
        return fn()

    def all_gather(self, obj: T) -> list[T]:
        """Every process's ``obj``, in rank order (``[obj]`` alone)."""
        if self.world <= 1:
            return [obj]
        import torch.distributed as dist

        parts: list = [None] * self.world
        dist.all_gather_object(parts, obj)
        return parts

    def gather(self, records: list, skipped: list, order: Callable[[object], int]):
        """Every process's ``records`` and ``skipped`` views, merged and sorted by ``order`` (on every process)."""
        if self.world <= 1:
            return records, skipped
        import torch.distributed as dist

        parts: list = [None] * self.world
        dist.all_gather_object(parts, (records, skipped))
        merged = sorted((r for recs, _ in parts for r in recs), key=order)
        merged_skipped = sorted((s for _, sk in parts for s in sk), key=order)
        return merged, merged_skipped
