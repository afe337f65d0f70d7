"""Unadjusted Langevin steps on a 2-D MLP energy (64-64, SiLU): pgen.sample with pgen's
Langevin kernel against a raw torch loop doing the same energy, gradient and update.

One thread; 1 and 1000 chains; a "sample" is one chain's new position, so samples/s =
chains x steps / seconds. pgen's time is the engine's sampling time (every draw is
stored). Medians over ``--rounds`` rounds in rotating order.

    python bench/langevin.py [--quick]
"""

from __future__ import annotations

import math
import time

import torch
from _chains import sampling_time, side_by_side

from pgen.inference.kernels import Langevin

STEP = 0.005


def energy_net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(2, 64),
        torch.nn.SiLU(),
        torch.nn.Linear(64, 64),
        torch.nn.SiLU(),
        torch.nn.Linear(64, 1),
    )


def raw_loop(chains: int, steps: int) -> float:
    net = energy_net()
    torch.manual_seed(0)
    x = torch.zeros(chains, 2)
    t0 = time.perf_counter()
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(net(x).sum(), x)
        x = x.detach() - STEP * grad + math.sqrt(2 * STEP) * torch.randn_like(x)
    return time.perf_counter() - t0


def through_pgen(chains: int, steps: int) -> float:
    net = energy_net()
    kernel = Langevin(
        potential_fn=lambda s: net(s["x"]).squeeze(-1),
        init={"x": torch.zeros(chains, 2)},
        step_size=STEP,
        num_chains=chains,
    )
    return sampling_time(kernel, steps)


if __name__ == "__main__":
    side_by_side(
        __doc__,
        "ULA on a 2-D MLP energy (64-64)",
        "steps",
        raw_loop,
        through_pgen,
        {1: (2000, 300), 1000: (500, 100)},
    )
