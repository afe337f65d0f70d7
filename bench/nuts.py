"""ESS per second of pgen.sample against pyro.infer.MCMC with NUTS, in the same run.

Bayesian logistic regression on the breast-cancer data (569 x 30, standardized;
``pgen.models.bayes.LogisticRegression``), one chain, 500 warm-up + 1000 draws, one
thread. ESS is the smallest bulk ESS over the 31 parameters (computed by
``pgen.eval.diagnostics.ess_bulk`` for every sampler alike); time is the whole run,
warm-up included. Every sampler repeats over ``--seeds`` and the median ESS/s is
reported with each run's figure, as ratios to Pyro's default NUTS and to Pyro with
``jit_compile=True``. The issue's target: pgen >= 4x Pyro default and >= 2x Pyro JIT.

    python bench/nuts.py               # 3 seeds
    python bench/nuts.py --seeds 1     # quicker
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import pyro
import torch
from pyro.infer import MCMC
from pyro.infer import NUTS as PyroNUTS

import pgen
from pgen.eval.diagnostics import ess_bulk
from pgen.models.bayes import LogisticRegression


def pyro_run(model, x, y, seed, warmup, draws, jit):
    pyro.set_rng_seed(seed)
    kernel = PyroNUTS(model, jit_compile=jit, ignore_jit_warnings=True)
    mcmc = MCMC(kernel, num_samples=draws, warmup_steps=warmup, num_chains=1, disable_progbar=True)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mcmc.run(x, y)
    seconds = time.perf_counter() - start
    s = mcmc.get_samples(group_by_chain=True)
    ess = min(float(np.min(ess_bulk(s[k].double().numpy()))) for k in ("bias", "weights"))
    return ess, seconds


def pgen_run(model, x, y, seed, warmup, draws, jit, dense):
    start = time.perf_counter()
    r = pgen.sample(
        model,
        x,
        y,
        chains=1,
        warmup=warmup,
        draws=draws,
        seed=seed,
        jit=jit,
        dense_mass=dense,
        progress=False,
        log_likelihood=False,
        warn=False,
    )
    seconds = time.perf_counter() - start
    return r.min_ess_bulk, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--draws", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    x, y = pgen.data.breast_cancer()
    model = LogisticRegression().model
    methods = {
        "pyro NUTS (default)": lambda s: pyro_run(model, x, y, s, args.warmup, args.draws, False),
        "pyro NUTS jit_compile=True": lambda s: pyro_run(model, x, y, s, args.warmup, args.draws, True),
        "pgen.sample (defaults: eager, dense mass)": lambda s: pgen_run(
            model, x, y, s, args.warmup, args.draws, False, "auto"
        ),
        "pgen.sample jit=True, diagonal mass": lambda s: pgen_run(
            model, x, y, s, args.warmup, args.draws, True, False
        ),
        "pgen.sample jit=True (dense mass)": lambda s: pgen_run(
            model, x, y, s, args.warmup, args.draws, True, "auto"
        ),
    }
    results = {}
    for name, run in methods.items():
        rows = [run(seed) for seed in range(args.seeds)]
        rates = [ess / sec for ess, sec in rows]
        results[name] = statistics.median(rates)
        detail = ", ".join(f"{ess:.0f} ESS / {sec:.1f} s" for ess, sec in rows)
        print(f"{name:45s} {results[name]:8.1f} ESS/s   ({detail})", flush=True)
    base, base_jit = results["pyro NUTS (default)"], results["pyro NUTS jit_compile=True"]
    print()
    print(f"{'method':45s} {'ESS/s':>8s} {'vs pyro':>8s} {'vs pyro jit':>12s}")
    for name, rate in results.items():
        print(f"{name:45s} {rate:8.1f} {rate / base:7.1f}x {rate / base_jit:11.1f}x")


if __name__ == "__main__":
    main()
