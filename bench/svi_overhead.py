"""Per-step cost of pgen.fit against hand-written PyTorch loops, side by side.

The same networks (pgen.models.nets), the same loss (Bernoulli log-likelihood minus the
closed-form Gaussian KL, scaled to the full data), the same minibatches and one thread.
Each method runs ``--steps`` steps; the median step time after ``--warmup`` steps is
reported, over ``--rounds`` rounds in rotating order (median of the round medians). A
step runs from the forward pass to the optimizer step. "Whole loop" adds each loop's
mean time outside the step: minibatch indexing, and for pgen also its bookkeeping
(RNG state for the NaN diagnosis, per-epoch checks and snapshots).
The baseline is the hand-written loop with ``Adam(fused=True)``; the issue's target for
pgen is <= 1.10x at batch 128.

    python bench/svi_overhead.py            # 784-400-20 at batch 128 and 16, and a big net
    python bench/svi_overhead.py --quick    # fewer steps
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import pyro
import torch
from _baseline import vae_step
from pyro.infer import SVI, Trace_ELBO

import pgen
from pgen.models import VAE


def batches(n, batch, seed):
    g = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, batch):
            yield perm[i : i + batch]


def hand_written(x, hidden, latent, batch, steps, fused, seed=0):
    """The baseline: a plain PyTorch VAE step, timed from forward to optimizer step."""
    torch.manual_seed(seed)
    vae = VAE(x.shape[1], latent_dim=latent, hidden=hidden)
    enc, dec = vae.encoder, vae.decoder.net
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3, fused=fused)
    n = len(x)
    times = []
    it = batches(n, batch, seed)
    start = time.perf_counter()
    for _ in range(steps):
        xb = x.index_select(0, next(it))
        t0 = time.perf_counter()
        vae_step(enc, dec, opt, xb, n)
        times.append(time.perf_counter() - t0)
    return times, (time.perf_counter() - start - sum(times)) / steps


def plain_pyro(x, hidden, latent, batch, steps, seed=0):
    """Pyro's own SVI(Trace_ELBO) with pyro.optim.Adam, for reference."""
    torch.manual_seed(seed)
    vae = VAE(x.shape[1], latent_dim=latent, hidden=hidden)
    n = len(x)
    model = pgen.inference.scale_data_plate(vae.model, n / batch)
    guide = pgen.inference.scale_data_plate(vae.guide, n / batch)
    times = []
    with pyro.get_param_store().scope():
        svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-3}), Trace_ELBO())
        it = batches(n, batch, seed)
        start = time.perf_counter()
        for _ in range(steps):
            xb = x.index_select(0, next(it))
            if len(xb) != batch:
                xb = x.index_select(0, next(it))  # keep the scale exact: full batches only
            t0 = time.perf_counter()
            svi.step(xb)
            times.append(time.perf_counter() - t0)
    return times, (time.perf_counter() - start - sum(times)) / steps


def pgen_fit(x, hidden, latent, batch, steps, jit, seed=0):
    torch.manual_seed(seed)
    vae = VAE(x.shape[1], latent_dim=latent, hidden=hidden)
    result = pgen.fit(
        vae.model,
        vae.guide,
        x,
        steps=steps,
        batch_size=batch,
        objective="meanfield",
        jit=jit,
        progress=False,
        seed=seed,
    )
    outside = (result.wall_time - result.step_times.sum()) / result.num_steps
    return list(result.step_times), outside


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="300 steps, 2 rounds")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.rounds = 300, 2
    torch.set_num_threads(args.threads)
    x, _ = pgen.data.load("mnist5k", binarize="threshold")
    print(
        f"pgen.fit vs hand-written loops: {len(x)} MNIST digits, {args.threads} thread(s), "
        f"median ms/step over steps {args.warmup}..{args.steps}, {args.rounds} rounds"
    )
    setups = [
        ("784-400-20", (400,), 20, 128),
        ("784-400-20", (400,), 20, 16),
        ("784-1024-1024-64", (1024, 1024), 64, 128),
    ]
    for label, hidden, latent, batch in setups:
        run = functools.partial
        methods = {
            "torch loop, Adam(fused=True) [baseline]": run(
                hand_written, x, hidden, latent, batch, args.steps, True
            ),
            "torch loop, default Adam": run(hand_written, x, hidden, latent, batch, args.steps, False),
            "pyro SVI(Trace_ELBO), pyro.optim.Adam": run(plain_pyro, x, hidden, latent, batch, args.steps),
            "pgen.fit (meanfield)": run(pgen_fit, x, hidden, latent, batch, args.steps, False),
            "pgen.fit (meanfield, jit=True)": run(pgen_fit, x, hidden, latent, batch, args.steps, True),
        }
        names = list(methods)
        medians = {name: [] for name in names}
        outside = {name: [] for name in names}
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                times, extra = methods[name]()
                medians[name].append(statistics.median(times[args.warmup :]))
                outside[name].append(extra)
        base = statistics.median(medians[names[0]])
        base_loop = base + statistics.median(outside[names[0]])
        print(f"\n{label}, batch {batch}{'':30s} step (median)        whole loop per step")
        for name in names:
            m = statistics.median(medians[name])
            loop = m + statistics.median(outside[name])
            step_col = f"{1e3 * m:7.2f} ms {m / base:5.2f}x"
            loop_col = f"{1e3 * loop:7.2f} ms {loop / base_loop:5.2f}x"
            print(f"  {name:42s} {step_col}    {loop_col}")


if __name__ == "__main__":
    main()
