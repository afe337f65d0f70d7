"""Unadjusted Langevin steps on a 2-D MLP energy (64-64, SiLU): pgen.sample with pgen's
Langevin kernel against a raw torch loop doing the same energy, gradient and update.

One thread; 1 and 1000 chains; a "sample" is one chain's new position, so samples/s =
chains x steps / seconds. pgen's time is the engine's sampling time (every draw is
stored). Medians over ``--rounds`` rounds in rotating order.

    python bench/langevin.py [--quick]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

import pgen
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
    run = pgen.sample(
        lambda: None,
        kernel=kernel,
        chains=1,
        warmup=0,
        draws=steps,
        seed=0,
        progress=False,
        warn=False,
        log_likelihood=False,
    )
    return run.sampling_time


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    settings = [(1, 300 if args.quick else 2000), (1000, 100 if args.quick else 500)]
    print(f"ULA on a 2-D MLP energy (64-64), one thread, median of {args.rounds} rounds")
    for chains, steps in settings:
        methods = {"raw torch loop [baseline]": raw_loop, "pgen.sample(Langevin)": through_pgen}
        names = list(methods)
        times = {k: [] for k in names}
        for r in range(args.rounds):
            for name in names[r % 2 :] + names[: r % 2]:
                times[name].append(methods[name](chains, steps))
        base = statistics.median(times[names[0]])
        print(f"\n  {chains} chain(s), {steps} steps")
        for name in names:
            t = statistics.median(times[name])
            print(
                f"    {name:28s} {steps / t:9.0f} steps/s  {chains * steps / t:10.0f} samples/s  "
                f"{base / t:5.2f}x the raw loop's speed"
            )


if __name__ == "__main__":
    main()
