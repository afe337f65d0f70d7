"""The hand-written PyTorch VAE step the benchmarks measure pgen against, and the
minibatches they draw."""

import argparse
import statistics

import torch
from torch.nn import functional as F


def vae_step(encoder, decoder_net, optimizer, xb: torch.Tensor, n: int) -> torch.Tensor:
    """One step on the negative ELBO of a Bernoulli VAE with the closed-form Gaussian KL,
    scaled to ``n`` examples as pgen scales a minibatch: reparameterized z, BCE, Adam."""
    loc, scale = encoder(xb)
    z = loc + scale * torch.randn_like(loc)
    rec = -F.binary_cross_entropy_with_logits(decoder_net(z), xb, reduction="none").sum(-1)
    kl = 0.5 * (loc**2 + scale**2 - 1 - 2 * scale.log()).sum(-1)
    loss = -(rec - kl).sum() * (n / len(xb))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


def full_batches(n: int, batch: int, seed: int):
    """Endless shuffled minibatch indices, full batches only, reshuffled each epoch."""
    g = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(n, generator=g)
        for i in range(0, n - batch + 1, batch):
            yield perm[i : i + batch]


def rotating_medians(methods: dict, rounds: int, warmup: int) -> dict[str, float]:
    """Run each of ``methods`` (name -> () -> step times) ``rounds`` times, in an order
    rotated each round so that no method always runs first, and return each one's median
    over rounds of the median step time after ``warmup`` steps."""
    names = list(methods)
    medians = {k: [] for k in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            medians[name].append(statistics.median(methods[name]()[warmup:]))
    return {name: statistics.median(v) for name, v in medians.items()}


def print_ratios(title: str, medians: dict[str, float], width: int = 28) -> None:
    """Each method's median step time in ms and its ratio to the first (the baseline)."""
    base = next(iter(medians.values()))
    print(f"\n  {title}")
    for name, v in medians.items():
        print(f"    {name:{width}s} {1e3 * v:7.2f} ms  {v / base:5.2f}x")


def step_arguments(doc: str):
    """The arguments of the step benchmarks (``--steps``, ``--warmup``, ``--rounds``,
    ``--quick``), parsed, with one torch thread."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.warmup, args.rounds = 60, 10, 2
    torch.set_num_threads(1)
    return args
