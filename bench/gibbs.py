"""Block Gibbs sweeps of a 784x500 RBM: pgen.sample with pgen's RBMGibbs kernel against a
raw torch loop doing the same matrix products and uniform draws, side by side.

Both run one thread, float32, on the same random weights (scale 0.01, as at the start of
training). A sweep is h ~ p(h | v) then v ~ p(v | h) for every chain; a "sample" is one
chain's new visible vector, so samples/s = chains x sweeps / seconds. pgen's time is the
engine's sampling time (every draw is stored, as pgen.sample always does; the R-hat/ESS
summary afterwards is not timed). Medians over ``--rounds`` rounds in rotating order.
The issue's target: pgen >= 0.8x the raw loop, and >= 30k samples/s with 1000 chains.

    python bench/gibbs.py [--quick]
"""

from __future__ import annotations

import time

import torch
from _chains import sampling_time, side_by_side

from pgen.inference.kernels import RBMGibbs

VISIBLE, HIDDEN = 784, 500


def weights(seed=0):
    g = torch.Generator().manual_seed(seed)
    return 0.01 * torch.randn(VISIBLE, HIDDEN, generator=g), torch.zeros(VISIBLE), torch.zeros(HIDDEN)


def raw_loop(chains: int, sweeps: int) -> float:
    w, b, c = weights()
    torch.manual_seed(0)
    v = torch.randint(0, 2, (chains, VISIBLE)).float()
    wt = w.T.contiguous()
    t0 = time.perf_counter()
    for _ in range(sweeps):
        h = (torch.rand(chains, HIDDEN) < torch.sigmoid(v @ w + c)).float()
        v = (torch.rand(chains, VISIBLE) < torch.sigmoid(h @ wt + b)).float()
    return time.perf_counter() - t0


def through_pgen(chains: int, sweeps: int) -> float:
    w, b, c = weights()
    return sampling_time(RBMGibbs(w, b, c, num_chains=chains), sweeps)


if __name__ == "__main__":
    side_by_side(
        __doc__,
        f"RBM {VISIBLE}x{HIDDEN} block Gibbs",
        "sweeps",
        raw_loop,
        through_pgen,
        {1: (2000, 300), 1000: (100, 20)},
    )
