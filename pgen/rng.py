"""Random streams: save, restore and fork every generator pgen draws from.

pgen's engines (``pgen.fit``, ``pgen.sample``, the run layer) draw from torch's global
generator and, through Pyro and user code, from Python's ``random`` and NumPy's global
state. Entry points run inside :func:`forked`, so a caller's streams are left exactly as
they were: ``torch.rand(3)`` after ``pgen.fit(..., seed=0)`` gives what it would have
given without the fit.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch

from .checks import check_int

__all__ = ["forked", "get_state", "set_state", "MAX_SEED"]

MAX_SEED = 2**63 - 1  # torch.manual_seed takes a signed 64-bit integer


def _cuda_states() -> list[torch.Tensor] | None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.get_rng_state_all()
    return None


def get_state() -> dict:
    """The state of torch's CPU generator, Python's ``random`` and NumPy's global
    generator, as tensors and plain data (what a pgen checkpoint can hold); with them,
    once a GPU has been used, each GPU's generator (``"cuda"``)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    cuda = _cuda_states()
    return {
        **({} if cuda is None else {"cuda": cuda}),
        "torch": torch.get_rng_state(),
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "numpy": [
            np_state[0],
            torch.from_numpy(np_state[1].astype(np.int64)),
            int(np_state[2]),
            int(np_state[3]),
            float(np_state[4]),
        ],
    }


def set_state(state: dict) -> None:
    """Restore what :func:`get_state` returned. GPU generators are restored where the
    machine has as many GPUs; a state written on a GPU machine restored on a CPU-only
    one sets the CPU streams only (a GPU's draws cannot be repeated on a CPU anyway)."""
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
        torch.cuda.set_rng_state_all([c.cpu() for c in cuda])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npy = state["numpy"]
    np.random.set_state((npy[0], npy[1].numpy().astype(np.uint32), npy[2], npy[3], npy[4]))


def check_seed(name: str, seed) -> int:
    """``seed`` as an integer in ``[0, 2**63 - 1]`` (torch's range), or a clear error."""
    seed = check_int(name, seed, minimum=0)
    if seed > MAX_SEED:
        raise ValueError(f"{name} must be at most 2**63 - 1 = {MAX_SEED} (torch's seed range), got {seed}")
    return seed


@contextlib.contextmanager
def forked(seed: int | None = None) -> Iterator[None]:
    """Run a block on its own random streams and restore the caller's on exit (also on
    an exception). With ``seed``, torch, Python and NumPy are seeded inside (NumPy with
    ``seed mod 2**32``, its range), as ``pyro.set_rng_seed`` does."""
    saved, cuda = get_state(), _cuda_states()
    try:
        if seed is not None:
            seed = check_seed("seed", seed)
            torch.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed % 2**32)
        yield
    finally:
        set_state(saved)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
