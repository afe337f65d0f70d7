"""Flows and autoregressive models: a training step of pgen.fit against a hand-written
PyTorch loop on the same zuko flow, and PixelCNN's sampling throughput.

Training: RealNVP (6 coupling layers) and NSF (5 spline layers), 128-128 hidden, on the
8x8 digits dequantized once to (k + u)/17, through the logit map; batch 128, Adam,
one thread. The loop computes the same exact negative log-likelihood (the model's own
``log_prob``, summed and scaled to the data set as pgen scales a minibatch), so the
ratio is pgen's overhead per step: the Pyro trace of a model without latents, the
engine's bookkeeping. The median step time over steps ``--warmup``..``--steps`` is
reported, over ``--rounds`` rounds in rotating order. The issue's target is <= 1.10x.

Sampling: a PixelCNN (32 channels, 5 gated layers) on binary 8x8 and 28x28 images: a
batch of draws takes one network pass per pixel, its log-likelihood one pass; images per
second of both, and their ratio (which grows with the number of pixels).

    python bench/flows.py [--quick]
"""

from __future__ import annotations

import functools
import time

import torch
from _baseline import full_batches, print_ratios, rotating_medians, step_arguments

import pgen
from pgen.models import NSF, PixelCNN, RealNVP

FLOWS = {
    "RealNVP": lambda d: RealNVP(d, transforms=6, hidden=(128, 128), data_range=(0, 1)),
    "NSF": lambda d: NSF(d, transforms=5, hidden=(128, 128), data_range=(0, 1)),
}


def hand_written(x, name, steps, batch=128, seed=0):
    """A plain PyTorch loop on the same flow: -log p of the minibatch, Adam."""
    torch.manual_seed(seed)
    m = FLOWS[name](x.shape[1])
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    n, times, it = len(x), [], full_batches(len(x), batch, seed)
    for _ in range(steps):
        xb = x.index_select(0, next(it))
        t0 = time.perf_counter()
        loss = -m.log_prob(xb).sum() * (n / batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return times


def pgen_fit(x, name, steps, batch=128, seed=0):
    torch.manual_seed(seed)
    m = FLOWS[name](x.shape[1])
    r = pgen.fit(m.model, m.guide, x, steps=steps, batch_size=batch, lr=1e-3, progress=False, seed=seed)
    return list(r.step_times)


def sampling_rates(side: int, n: int, seed: int = 0) -> tuple[float, float, int]:
    """Images per second of ``n`` draws and of the log-likelihood of ``n`` images."""
    torch.manual_seed(seed)
    m = PixelCNN(side * side, levels=2, channels=32, layers=5).eval()
    t0 = time.perf_counter()
    x = m.sample(n, seed=seed)
    draw = time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.no_grad():
        m.log_prob(x)
    once = time.perf_counter() - t0
    return n / draw, n / once, side * side


def main():
    args = step_arguments(__doc__)
    grey, _ = pgen.data.load("digits", "train")
    x = pgen.data.dequantize(grey, levels=17, generator=torch.Generator().manual_seed(0))
    print(
        f"flow training step, 8x8 digits dequantized, batch 128, 1 thread, median ms over {args.rounds} "
        "rounds"
    )
    for name in FLOWS:
        methods = {
            "torch loop [baseline]": functools.partial(hand_written, x, name, args.steps),
            "pgen.fit": functools.partial(pgen_fit, x, name, args.steps),
        }
        print_ratios(name, rotating_medians(methods, args.rounds, args.warmup), 24)

    print("\nPixelCNN (32 channels, 5 gated layers), binary images, 1 thread")
    print("  pixels   draws/s   log-likelihood images/s   ratio")
    for side, n in ((8, 64), (28, 4 if args.quick else 16)):
        draws, scored, d = sampling_rates(side, n)
        print(f"  {d:6d} {draws:9.2f} {scored:20.1f} {scored / draws:10.0f}")


if __name__ == "__main__":
    main()
