"""Evaluation shared by the families whose guide gives importance weights (latent,
conditional, semi-supervised): the ELBO and the importance-sampled log-likelihood."""

from __future__ import annotations

import time

from ..eval import elbo, log_likelihood
from .base import RunContext, mean_and_se

__all__ = ["importance_metrics", "importance_summary"]


def importance_metrics(
    run: RunContext,
    x,
    kw: dict,
    *,
    split: str,
    seed: int,
    batch_size: int,
    num_samples: int,
    progress: bool,
    **_,
) -> dict:
    """Test ELBO (10 draws per example) and IS log-likelihood (``num_samples`` per
    example), with standard errors over examples; ``log_likelihood_mc_se`` is the mean
    per-example Monte Carlo standard error. Bits/dim for discrete data."""
    m = run.model
    start = time.perf_counter()
    e = elbo(m.model, m.guide, x, num_samples=10, seed=seed, batch_size=batch_size, **kw)
    ll, mc = log_likelihood(
        m.model,
        m.guide,
        x,
        num_samples=num_samples,
        seed=seed,
        batch_size=batch_size,
        return_stderr=True,
        progress=progress,
        **kw,
    )
    e_mean, e_se = mean_and_se(e)
    ll_mean, ll_se = mean_and_se(ll)
    return {
        **run.header(split, x),
        "elbo": e_mean,
        "elbo_se": e_se,
        "log_likelihood": ll_mean,
        "log_likelihood_se": ll_se,
        "log_likelihood_mc_se": mc.mean().item(),
        "num_samples": num_samples,
        "nll": -ll_mean,
        "bits_per_dim": run.bits_per_dim(-ll_mean, int(x[0].numel())),
        "seed": seed,
        "seconds": time.perf_counter() - start,
    }


def importance_summary(m: dict, what: str = "IS log-likelihood") -> list[str]:
    bpd = "" if m.get("bits_per_dim") is None else f", {m['bits_per_dim']:.4f} bits/dim"
    return [
        f"{m['split']} ELBO {m['elbo']:.2f} +- {m['elbo_se']:.2f} nats; {what} "
        f"(K={m['num_samples']}) {m['log_likelihood']:.2f} +- {m['log_likelihood_se']:.2f} nats{bpd} "
        f"({m['n']} examples)"
    ]
