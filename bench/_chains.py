"""The side-by-side driver both sampler benchmarks use: a raw torch loop against
pgen.sample with a batched kernel, for 1 and 1000 chains."""

from __future__ import annotations

import argparse
import statistics

import torch

import pgen


def sampling_time(kernel, draws: int) -> float:
    """The engine's sampling time for ``draws`` transitions of ``kernel`` (no warm-up;
    the kernel needs no model)."""
    run = pgen.sample(
        lambda: None,
        kernel=kernel,
        chains=1,
        warmup=0,
        draws=draws,
        seed=0,
        progress=False,
        warn=False,
        log_likelihood=False,
    )
    return run.sampling_time


def side_by_side(doc: str, title: str, unit: str, raw_loop, through_pgen, steps: dict) -> None:
    """Parse ``--rounds``/``--quick``, then time ``raw_loop(chains, n)`` [baseline] and
    ``through_pgen(chains, n)`` (each returning seconds) in rotating order, and print
    medians as ``unit``/s, samples/s (chains x n / s) and the ratio to the baseline.
    ``steps``: ``{chains: (full, quick)}`` transitions per run."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{title}, one thread, median of {args.rounds} rounds")
    methods = {"raw torch loop [baseline]": raw_loop, "pgen.sample": through_pgen}
    names = list(methods)
    for chains, (full, quick) in steps.items():
        n = quick if args.quick else full
        times = {k: [] for k in names}
        for r in range(args.rounds):
            for name in names[r % 2 :] + names[: r % 2]:
                times[name].append(methods[name](chains, n))
        base = statistics.median(times[names[0]])
        print(f"\n  {chains} chain(s), {n} {unit}")
        for name in names:
            t = statistics.median(times[name])
            print(
                f"    {name:28s} {n / t:9.0f} {unit}/s  {chains * n / t:10.0f} samples/s  "
                f"{base / t:5.2f}x the raw loop's speed"
            )
