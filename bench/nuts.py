"""NUTS with default arguments: pgen.sample against Pyro and NumPyro, in the same run.

Bayesian logistic regression on the breast-cancer data (569 x 30, standardized;
``pgen.models.bayes.LogisticRegression``, written again for NumPyro), 500 warm-up +
1000 draws per chain, with 1 and with 4 chains. Each library runs with its defaults on
the whole machine, as a user's script would: pgen compiles the potential and runs
chains in processes; Pyro runs one chain in-process (and 4 in processes), eagerly, and
with ``jit_compile=True`` as a second row; NumPyro compiles with XLA, "cold" (a fresh
process for each seed, compile included: jax caches compiled code within a process) and
"warm" (the same ``MCMC`` run again, compiled already), its chains vectorized. ESS is
the smallest bulk ESS over the 31 parameters (``pgen.eval.diagnostics.ess_bulk`` for
every sampler alike); time is the whole run.
The medians over ``--seeds`` are reported, as ratios to NumPyro cold.

The second problem is a strongly correlated regression (intercept and slope on years
near 4,000, posterior correlation about -0.99999): pgen with defaults, the time and ESS.

NumPyro is a bench-only install (``make bench-deps``); without it its rows are skipped.

    python bench/nuts.py               # 3 seeds
    python bench/nuts.py --seeds 1     # quicker
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.infer import MCMC
from pyro.infer import NUTS as PyroNUTS

import pgen
from pgen.eval.diagnostics import ess_bulk
from pgen.models.bayes import LogisticRegression


def min_ess(samples: dict) -> float:
    """Smallest bulk ESS over every scalar parameter of ``{site: (chain, draw, ...)}``."""
    return min(float(np.min(ess_bulk(np.asarray(v, dtype=np.float64)))) for v in samples.values())


def pgen_run(model, data, seed, warmup, draws, chains):
    start = time.perf_counter()
    r = pgen.sample(
        model, *data, chains=chains, warmup=warmup, draws=draws, seed=seed, progress=False, warn=False
    )
    return min_ess(r.samples), time.perf_counter() - start


def pyro_run(model, data, seed, warmup, draws, chains, jit):
    pyro.set_rng_seed(seed)
    kernel = PyroNUTS(model, jit_compile=jit, ignore_jit_warnings=True)
    mcmc = MCMC(kernel, num_samples=draws, warmup_steps=warmup, num_chains=chains, disable_progbar=True)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mcmc.run(*data)
    seconds = time.perf_counter() - start
    s = mcmc.get_samples(group_by_chain=True)
    return min_ess({k: v.double().numpy() for k, v in s.items()}), seconds


def numpyro_runs(data, seed, warmup, draws, chains):
    """(cold, warm) results of NumPyro's NUTS on the same logistic regression, each seed
    in a fresh process: jax caches compiled code within a process, so only a process's
    first run is cold (and jax's threads must not be forked by pgen's chains)."""
    x, y = data
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/data.npz"
        np.savez(path, x=x.numpy(), y=y.numpy())
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--numpyro-worker",
                path,
                str(seed),
                str(warmup),
                str(draws),
                str(chains),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    return [tuple(r) for r in json.loads(out.stdout.strip().splitlines()[-1])]


def numpyro_worker(path, seed, warmup, draws, chains):
    """Runs in its own process: NumPyro cold (compile included), then warm."""
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as nd
    from numpyro.infer import MCMC as NMCMC
    from numpyro.infer import NUTS as NNUTS

    def model(x, y):
        bias = numpyro.sample("bias", nd.Normal(0.0, 5.0))
        weights = numpyro.sample("weights", nd.Normal(jnp.zeros(x.shape[1]), 1.0).to_event(1))
        with numpyro.plate("data", x.shape[0]):
            numpyro.sample("obs", nd.Bernoulli(logits=bias + x @ weights), obs=y)

    data = np.load(path)
    x, y = jnp.asarray(data["x"]), jnp.asarray(data["y"])
    mcmc = NMCMC(
        NNUTS(model),
        num_warmup=warmup,
        num_samples=draws,
        num_chains=chains,
        chain_method="vectorized",
        progress_bar=False,
    )
    out = []
    for run in range(2):
        start = time.perf_counter()
        mcmc.run(jax.random.PRNGKey(seed + 1000 * run), x, y)
        jax.block_until_ready(mcmc.get_samples())
        seconds = time.perf_counter() - start
        s = mcmc.get_samples(group_by_chain=True)
        out.append((min_ess({k: np.asarray(v) for k, v in s.items()}), seconds))
    print(json.dumps(out))


def correlated_regression(seed: int = 0):
    """y = a + b * year + noise on 40 years near 4,000: a and b have posterior
    correlation of about -0.99999 (the intercept is 4,000 slopes away from the data)."""
    g = torch.Generator().manual_seed(seed)
    year = 3990.0 + 20.0 * torch.rand(40, generator=g)
    y = 2.0 + 0.01 * (year - 4000.0) + 0.5 * torch.randn(40, generator=g)

    def model(year, y=None):
        a = pyro.sample("a", dist.Normal(0.0, 100.0))
        b = pyro.sample("b", dist.Normal(0.0, 10.0))
        sigma = pyro.sample("sigma", dist.HalfNormal(1.0))
        with pyro.plate("n", len(year)):
            pyro.sample("y", dist.Normal(a + b * year, sigma), obs=y)

    return model, (year, y)


def report(name, rows, results):
    rates = [ess / sec for ess, sec in rows]
    results[name] = statistics.median(rates)
    detail = ", ".join(f"{ess:.0f} / {sec:.1f} s" for ess, sec in rows)
    print(f"{name:42s} {results[name]:8.1f} ESS/s   (min bulk ESS / seconds: {detail})", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--numpyro-worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.numpyro_worker:
        path, *numbers = args.numpyro_worker
        numpyro_worker(path, *map(int, numbers))
        return
    x, y = pgen.data.breast_cancer()
    model, data = LogisticRegression().model, (x, y)
    seeds = range(args.seeds)
    w, d = args.warmup, args.draws
    numpyro_ok = importlib.util.find_spec("numpyro") is not None  # imported only in workers
    if not numpyro_ok:
        print("NumPyro is not installed (make bench-deps): its rows are skipped")
    for chains in (1, 4):
        print(f"\n== logistic regression, {chains} chain(s) x ({w} + {d})")
        results: dict[str, float] = {}
        report("pgen.sample (defaults)", [pgen_run(model, data, s, w, d, chains) for s in seeds], results)
        if numpyro_ok:
            runs = [numpyro_runs(data, s, w, d, chains) for s in seeds]
            report("NumPyro NUTS, cold (compile included)", [r[0] for r in runs], results)
            report("NumPyro NUTS, warm (compiled already)", [r[1] for r in runs], results)
        report(
            "Pyro NUTS (default)", [pyro_run(model, data, s, w, d, chains, False) for s in seeds[:1]], results
        )
        report(
            "Pyro NUTS jit_compile=True",
            [pyro_run(model, data, s, w, d, chains, True) for s in seeds[:1]],
            results,
        )
        base = results.get("NumPyro NUTS, cold (compile included)")
        if base:
            print(f"\n{'sampler':42s} {'ESS/s':>8s} {'vs NumPyro cold':>16s}")
            for name, rate in results.items():
                print(f"{name:42s} {rate:8.1f} {rate / base:15.2f}x")
    print(f"\n== correlated regression (years near 4,000), pgen defaults, 4 chains x ({w} + {d})")
    cmodel, cdata = correlated_regression()
    for s in seeds:
        start = time.perf_counter()
        r = pgen.sample(cmodel, *cdata, warmup=w, draws=d, seed=s, progress=False, warn=False)
        seconds = time.perf_counter() - start
        corr = np.corrcoef(r.draws_of("a"), r.draws_of("b"))[0, 1]
        print(
            f"seed {s}: {seconds:.1f} s, min bulk ESS {r.min_ess_bulk:.0f}, corr(a, b) {corr:.6f}, "
            f"{r.divergences} divergences",
            flush=True,
        )


if __name__ == "__main__":
    main()
