"""Data-parallel training on PyTorch's own runtime: torchrun starts the processes, DDP syncs
the gradients of G and D, and only rank 0 logs, checkpoints and writes outputs.

`train.nproc: N` in params.yaml makes the train stage relaunch itself under
`torchrun --standalone --nproc_per_node N`; for several nodes, start torchrun yourself on
each (see the README's "Scaling out"). Each process trains on its own slice of every
global batch (batch_size images per process), so N processes with batch B take the same
steps as one process with batch N x B, up to BatchNorm statistics (SyncBatchNorm on GPUs:
`train.sync_batchnorm`) and floating-point summation order.

Random draws come in two kinds. Those every rank must agree on (the data order, the noise z,
the fake labels) are drawn whole from the shared stream, seeded with `seed` on every rank, and
each rank takes its slice. Those a rank makes on its own slice (dropout masks, DiffAugment,
instance noise, the gradient penalty's mixing) come from a stream of its own, seeded from
(seed, rank) (`LocalRandom`), so that the shards do not repeat each other's noise. One process
has one stream, as it always had.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (one process: rank 0 of 1).

    `distributed`: in a process group, even one of a single process (`torchrun
    --nproc_per_node 1`): DDP and the collectives then run as they do on N processes, which is
    how one GPU checks the NCCL path."""

    rank: int = 0
    size: int = 1
    distributed: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, global_batch: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous slice of a global batch (dimension 0)."""
        per_rank = global_batch.shape[0] // self.size
        return global_batch[self.rank * per_rank : (self.rank + 1) * per_rank]


def rank_seed(seed: int, rank: int) -> int:
    """A seed for rank `rank`'s own stream: NumPy's SeedSequence of (seed, rank), so that no
    two ranks (and no rank and the shared stream) start alike."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, np.uint64)[0])


class LocalRandom:
    """This rank's own random stream for the draws it makes on its slice of the batch.

    `with local_random.active():` swaps the global CPU (and CUDA) generator states to this
    rank's for the block and back after it, so the shared stream is neither read nor advanced
    by local draws and stays equal on every rank. With one process it does nothing."""

    def __init__(self, seed: int, world: World, device: torch.device) -> None:
        self.world = world
        self.cuda = device.index if device.type == "cuda" else None
        self.state: dict[str, torch.Tensor] | None = None
        if world.size > 1:
            shared = self._get()
            torch.manual_seed(rank_seed(seed, world.rank))
            self.state = self._get()
            self._set(shared)

    def _get(self) -> dict[str, torch.Tensor]:
        state = {"cpu": torch.get_rng_state()}
        if self.cuda is not None:
            state["cuda"] = torch.cuda.get_rng_state(self.cuda)
        return state

    def _set(self, state: dict[str, torch.Tensor]) -> None:
        torch.set_rng_state(state["cpu"])
        if self.cuda is not None:
            torch.cuda.set_rng_state(state["cuda"], self.cuda)

    @contextmanager
    def active(self) -> Iterator[None]:
        if self.state is None:
            yield
            return
        shared = self._get()
        self._set(self.state)
        try:
            yield
        finally:
            self.state = self._get()
            self._set(shared)

    def gather(self) -> list[dict[str, torch.Tensor]] | None:
        """Every rank's stream state on rank 0 (for the checkpoint; a collective: every rank
        calls it); None with one process."""
        if self.state is None:
            return None
        states: list[Any] | None = [None] * self.world.size if self.world.is_main else None
        dist.gather_object(self.state, states, dst=0)
        return states

    def load(self, states: list[dict[str, torch.Tensor]] | None) -> None:
        """This rank's stream from a checkpoint's gathered states."""
        if self.state is not None and states is not None:
            self.state = states[self.world.rank]


def current() -> World:
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), distributed=True)
    return World()


def under_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def relaunch(nproc: int, module: str) -> NoReturn:
    """Replace this process with torchrun running `module` on nproc local processes."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        module,
        *sys.argv[1:],
    ]
    os.execv(sys.executable, command)


def init_from_env() -> tuple[World, torch.device]:
    """Join the process group torchrun describes: NCCL and one GPU per process, else gloo."""
    local_rank = int(os.environ["LOCAL_RANK"])
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
        dist.init_process_group("nccl", device_id=device)
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo")
    return current(), device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast(value: Any, world: World) -> Any:
    """Rank 0's value on every rank (e.g. the MLflow run id)."""
    if not world.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def from_main(value: float, world: World) -> float:
    """Rank 0's number on every rank, as one small tensor broadcast (cheap enough for each
    step): its training clock, so that every process stops at the same step."""
    if not world.distributed:
        return value
    on_gpu = dist.get_backend() == "nccl"
    device = torch.device("cuda", torch.cuda.current_device()) if on_gpu else None
    box = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(box, src=0)
    return box.item()


def mean_(tensor: torch.Tensor, world: World) -> torch.Tensor:
    """Average a tensor over the ranks, in place."""
    if world.distributed:
        dist.all_reduce(tensor)
        tensor /= world.size
    return tensor


def wrap(net: nn.Module, device: torch.device, world: World) -> nn.Module:
    """The module the training step calls: DDP around `net` (which keeps its own state dict)."""
    if not world.distributed:
        return net
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(net, device_ids=ids)  # buffers from rank 0


def convert_sync_batchnorm(net: nn.Module, world: World, sync_batchnorm: bool) -> nn.Module:
    """BatchNorm with statistics over the global batch (CUDA only in PyTorch)."""
    if world.size > 1 and sync_batchnorm:
        return nn.SyncBatchNorm.convert_sync_batchnorm(net)
    return net
