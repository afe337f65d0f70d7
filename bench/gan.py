"""GANs: one adversarial step through pgen.fit against a hand-written PyTorch loop with
the same networks.

The generator and critic are pgen.models.GAN's MLPs (16-D z, 256-256 hidden) on the 8x8
digits (grey levels), batch 128, one thread. One step is what the engine's step is:
``critic_steps`` critic updates (fresh fakes each, no generator gradient), then one
generator update. Two games: non-saturating (1 critic step) and WGAN-GP (5 critic steps
with the gradient penalty). The median step time over steps ``--warmup``..``--steps`` is
reported, over ``--rounds`` rounds in rotating order. The issue's target is <= 1.10x.

    python bench/gan.py [--quick]
"""

from __future__ import annotations

import functools
import time

import torch
from _baseline import full_batches, print_ratios, rotating_medians, step_arguments
from torch.nn import functional as F

import pgen
from pgen.models import GAN


def hand_written(x, loss, steps, batch=128, seed=0):
    """The same game in plain PyTorch: Adam(0.5, 0.999) or (0.5, 0.9), lr 2e-4 critic and
    1e-3 generator, as pgen's defaults."""
    torch.manual_seed(seed)
    m = GAN(x.shape[1], latent_dim=16)
    g, d = m.generator, m.critic
    wgan = loss == "wgan-gp"
    g_opt = torch.optim.Adam(g.parameters(), lr=1e-3)
    d_opt = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.9 if wgan else 0.999))
    critic_steps = 5 if wgan else 1
    times, it = [], full_batches(len(x), batch, seed)
    for _ in range(steps):
        real = x.index_select(0, next(it))
        t0 = time.perf_counter()
        for _ in range(critic_steps):
            with torch.no_grad():
                fake = g(torch.randn(batch, 16))
            if wgan:
                t = torch.rand(batch, 1)
                mixed = (t * real + (1 - t) * fake).requires_grad_(True)
                (grad,) = torch.autograd.grad(d(mixed).sum(), mixed, create_graph=True)
                d_loss = d(fake).mean() - d(real).mean() + 10 * ((grad.norm(dim=1) - 1) ** 2).mean()
            else:
                d_loss = F.softplus(-d(real)).mean() + F.softplus(d(fake)).mean()
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            d_opt.step()
        score = d(g(torch.randn(batch, 16)))
        g_loss = -score.mean() if wgan else F.softplus(-score).mean()
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        times.append(time.perf_counter() - t0)
    return times


def pgen_fit(x, loss, steps, batch=128, seed=0):
    torch.manual_seed(seed)
    m = GAN(x.shape[1], latent_dim=16)
    game = m.adversarial(loss=loss, critic_steps=5 if loss == "wgan-gp" else 1)
    r = pgen.fit(m.model, m.guide, x, objective=game, steps=steps, batch_size=batch, lr=1e-3, progress=False)
    return list(r.step_times)


def main():
    args = step_arguments(__doc__)
    x, _ = pgen.data.load("digits", "train")
    print(
        f"GAN step (critic steps + one generator step), 8x8 digits, batch 128, 1 thread, {args.rounds} rounds"
    )
    for loss in ("nonsaturating", "wgan-gp"):
        methods = {
            "torch loop [baseline]": functools.partial(hand_written, x, loss, args.steps),
            "pgen.fit": functools.partial(pgen_fit, x, loss, args.steps),
        }
        print_ratios(loss, rotating_medians(methods, args.rounds, args.warmup), 24)


if __name__ == "__main__":
    main()
