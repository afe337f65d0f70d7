r"""Data-parallel SVI on ``torch.distributed``: one global minibatch split across ranks.

Inside a ``torch.distributed`` job of ``W`` processes (``torchrun --nproc_per_node W``,
or any job that has called ``init_process_group``), :func:`pgen.fit` takes each global
minibatch of ``B`` examples exactly as one process would (the same shuffling on every
rank) and gives rank ``r`` the ``r``-th of ``W`` contiguous pieces of it. Each rank
evaluates

.. math::
    L_r = \frac{N}{B} \sum_{i \in B_r} \ell_i + \frac{1}{W} G,

the data plate's terms of its own examples scaled to the whole data set, and the terms
outside the data plate (global latent variables and their guide, :math:`G`) divided by
the number of ranks, so that :math:`\sum_r L_r` is the one-process objective of the
whole minibatch. Gradients are summed over ranks by one all-reduce (gloo on CPUs, NCCL on
GPUs), so every rank takes the same optimizer step and the parameters, global latent
variables' guides included, stay identical on every rank (rank 0's are broadcast once at
the start). Where the objective draws random numbers, rank 0 keeps the one-process
stream and the other ranks draw from their own, so with a deterministic objective (a MAP
or point-mass guide, a model without latents) the losses equal those of one process, and
with a stochastic one they are another unbiased estimate of them.

Rank 0 alone writes checkpoints and shows progress; every rank reads a checkpoint on
resume (the folder must be visible to all ranks, as on one machine or a shared file
system), and each rank's random streams are saved in it, so a resumed job repeats the
losses of an uninterrupted one. A stop (Ctrl-C, SIGTERM, a non-finite loss on any rank)
is agreed by all ranks at the same step through the same all-reduce as the loss.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import torch

__all__ = ["Group", "current_group", "init_from_environment", "shutdown"]


def init_from_environment() -> bool:
    """Start the process group of a ``torchrun`` job (``WORLD_SIZE`` > 1 in the
    environment) if nobody has: NCCL when this rank has a GPU, else gloo. ``True`` when
    a group of several processes is running."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available():
        return False
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
        atexit.register(shutdown, wait=False)  # never reach interpreter teardown with it alive
    return dist.get_world_size() > 1


def shutdown(wait: bool = True) -> None:
    """End this process's part of the ``torch.distributed`` job: wait for every rank at a
    barrier (``wait``; only on a normal end, where every rank gets there), then destroy
    the process group. A process that exits with its group alive, or tears it down while
    another rank still talks to it, can be killed by the C++ runtime at exit (SIGABRT,
    "terminate called without an active exception"). Does nothing outside a job, and
    may be called more than once."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if wait and dist.get_world_size() > 1:
            dist.barrier()
    finally:
        dist.destroy_process_group()


@dataclass
class Group:
    """This process's place in a data-parallel fit."""

    rank: int
    world: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _device(self) -> torch.device:
        import torch.distributed as dist

        return (
            torch.device("cuda", torch.cuda.current_device())
            if dist.get_backend() == "nccl"
            else torch.device("cpu")
        )

    def shard(self, idx: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous piece of a global minibatch's indices."""
        return torch.tensor_split(idx, self.world)[self.rank]

    def check_batches(self, n: int, batch: int) -> None:
        """Every minibatch must give each rank at least one example."""
        last = n % batch or batch
        if min(batch, last) < self.world:
            raise ValueError(
                f"batch_size={batch} over {n} examples gives a minibatch of {min(batch, last)} "
                f"examples, fewer than the {self.world} ranks of this torch.distributed job: each "
                "rank needs at least one example of every minibatch. Choose batch_size (and n) so "
                f"that every minibatch, the last of an epoch included, has at least {self.world}"
            )

    def all_reduce_gradients(self, params: list[torch.Tensor]) -> None:
        """Sum the gradients over ranks (one all-reduce of one flat buffer)."""
        import torch.distributed as dist

        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads]).to(self._device())
        dist.all_reduce(flat)
        offset = 0
        for p in params:
            k = p.numel()
            p.grad = flat[offset : offset + k].view_as(p).to(p.device)
            offset += k

    def sum_and_flag(self, value: float, flag: bool) -> tuple[float, bool]:
        """The sum of ``value`` over ranks, and whether any rank raised ``flag``."""
        import torch.distributed as dist

        t = torch.tensor([value, float(flag)], dtype=torch.float64, device=self._device())
        dist.all_reduce(t)
        return float(t[0]), bool(t[1] > 0)

    def any(self, flag: bool) -> bool:
        return self.sum_and_flag(0.0, flag)[1]

    def broadcast(self, params: list[torch.Tensor]) -> None:
        """Rank 0's parameter values on every rank."""
        import torch.distributed as dist

        with torch.no_grad():
            for p in params:
                buffer = p.detach().to(self._device()).contiguous()
                dist.broadcast(buffer, src=0)
                p.copy_(buffer.to(p.device))

    def gather(self, obj) -> list:
        """``obj`` of every rank, in rank order (on every rank)."""
        import torch.distributed as dist

        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out


def current_group() -> Group | None:
    """The data-parallel group this process is in, or ``None`` outside a
    ``torch.distributed`` job of several processes."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    return Group(dist.get_rank(), dist.get_world_size())
