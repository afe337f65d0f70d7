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

import argparse
import statistics
import time

import torch

import pgen
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


def _none():
    return None


def through_pgen(chains: int, sweeps: int) -> float:
    w, b, c = weights()
    kernel = RBMGibbs(w, b, c, num_chains=chains)
    r = pgen.sample(
        _none,
        kernel=kernel,
        chains=1,
        warmup=0,
        draws=sweeps,
        seed=0,
        progress=False,
        warn=False,
        log_likelihood=False,
    )
    return r.sampling_time


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    settings = [(1, 300 if args.quick else 2000), (1000, 20 if args.quick else 100)]
    print(f"RBM {VISIBLE}x{HIDDEN} block Gibbs, one thread, median of {args.rounds} rounds")
    for chains, sweeps in settings:
        methods = {"raw torch loop [baseline]": raw_loop, "pgen.sample(RBMGibbs)": through_pgen}
        names = list(methods)
        times = {k: [] for k in names}
        for r in range(args.rounds):
            for name in names[r % 2 :] + names[: r % 2]:
                times[name].append(methods[name](chains, sweeps))
        base = statistics.median(times[names[0]])
        print(f"\n  {chains} chain(s), {sweeps} sweeps")
        for name in names:
            t = statistics.median(times[name])
            print(
                f"    {name:28s} {sweeps / t:9.0f} sweeps/s  {chains * sweeps / t:9.0f} samples/s  "
                f"{base / t:5.2f}x the raw loop's speed"
            )


if __name__ == "__main__":
    main()
