"""Fit your own Pyro model with pgen.fit: Bayesian linear regression, minibatched.

A user's model and guide, written in plain Pyro, no pgen classes. The weights are a
global latent variable (outside the data plate), the observations are per example
(inside ``pyro.plate("data", len(x))``). pgen.fit scales only the per-example sites by
N/B, so each minibatch estimates the full-data ELBO. The model is conjugate, so the
exact posterior is known: a full-covariance Gaussian guide trained by SVI should find
it.

    python examples/custom_model.py [--steps 1500] [--batch-size 128]
"""

from __future__ import annotations

import argparse

import pyro
import pyro.distributions as dist
import torch

import pgen

NOISE, PRIOR = 0.5, 1.0  # observation noise and prior standard deviations


def model(x, y=None):
    d = x.shape[1]
    w = pyro.sample("w", dist.Normal(torch.zeros(d), PRIOR).to_event(1))
    with pyro.plate("data", x.shape[0]):
        return pyro.sample("obs", dist.Normal(x @ w, NOISE), obs=y)


def guide(x, y=None):
    d = x.shape[1]
    loc = pyro.param("w_loc", torch.zeros(d))
    scale_tril = pyro.param("w_scale_tril", 0.01 * torch.eye(d), constraint=dist.constraints.lower_cholesky)
    pyro.sample("w", dist.MultivariateNormal(loc, scale_tril=scale_tril))


def exact_posterior(x, y):
    """N(m, S) with S = (X^T X / s^2 + I / p^2)^-1 and m = S X^T y / s^2."""
    precision = x.T @ x / NOISE**2 + torch.eye(x.shape[1]) / PRIOR**2
    cov = torch.linalg.inv(precision)
    return cov @ x.T @ y / NOISE**2, cov


def main(steps: int = 1500, batch_size: int = 128, seed: int = 0, progress: bool = True):
    torch.manual_seed(seed)
    n, d = 500, 3
    x = torch.randn(n, d)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + NOISE * torch.randn(n)
    result = pgen.fit(
        model,
        guide,
        (x, y),
        steps=steps,
        batch_size=batch_size,
        lr=0.01,
        seed=seed,
        progress=progress,
    )
    mean, cov = exact_posterior(x, y)
    fitted_mean = result.params["w_loc"]
    tril = result.params["w_scale_tril"]
    fitted_sd = (tril @ tril.T).diagonal().sqrt()
    print("                 exact posterior        SVI (full-covariance guide)")
    for j in range(d):
        print(
            f"  w[{j}]   mean {mean[j]:+.4f} sd {cov[j, j].sqrt():.4f}    "
            f"mean {fitted_mean[j]:+.4f} sd {fitted_sd[j]:.4f}"
        )
    return result, (mean, cov)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.steps, args.batch_size, args.seed)
