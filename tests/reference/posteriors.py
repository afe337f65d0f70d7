"""Reference posteriors of varied geometry, written as users write Pyro models (issue
16). Each entry: the model, its data (made here from fixed seeds), and either a closed
form (``exact``: ``{parameter: (mean, sd)}``) or a summary stored in
``reference_summaries.json`` by ``python tests/reference/make_references.py`` (long,
checked NUTS runs).

* ``funnel_noncentred``: Neal's funnel, v ~ N(0, 3), x_i = exp(v/2) z_i: closed form.
* ``correlated_regression``: intercept and slope on years near 4,000 with known noise:
  conjugate Gaussian, correlation -0.9999993.
* ``garch``: a GARCH(1, 1) volatility recursion on 50 returns, whose density or gradient
  is not finite at far points (the default run rejects such points as it goes).
* ``gp_cholesky``: GP regression with the kernel's Cholesky factor taken in the model.
* ``hmm_forward``: a two-state HMM whose likelihood is the forward algorithm written by
  hand (``pyro.factor``).
* ``eight_schools_noncentred``: the non-centred eight schools.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyro
import pyro.distributions as dist
import torch

from pgen.eval.arviz import flat_parameters

SUMMARIES = Path(__file__).with_name("reference_summaries.json")


def funnel_noncentred():
    v = pyro.sample("v", dist.Normal(0.0, 3.0))
    z = pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
    pyro.deterministic("x", torch.exp(v / 2) * z)


def _years():
    g = torch.Generator().manual_seed(0)
    year = 3990.0 + 20.0 * torch.rand(40, generator=g, dtype=torch.float64)
    y = 2.0 + 0.01 * (year - 4000.0) + 0.5 * torch.randn(40, generator=g, dtype=torch.float64)
    return year, y


def correlated_regression(year, y):
    a = pyro.sample("a", dist.Normal(0.0, 100.0))
    b = pyro.sample("b", dist.Normal(0.0, 10.0))
    with pyro.plate("n", len(year)):
        pyro.sample("y", dist.Normal(a + b * year, 0.5), obs=y)


def _correlated_exact():
    year, y = _years()
    x = torch.stack([torch.ones_like(year), year], 1)
    precision = torch.diag(torch.tensor([100.0**-2, 10.0**-2], dtype=torch.float64)) + x.T @ x / 0.25
    cov = torch.linalg.inv(precision)
    mean = cov @ x.T @ y / 0.25
    sd = cov.diagonal().sqrt()
    return {"a": (float(mean[0]), float(sd[0])), "b": (float(mean[1]), float(sd[1]))}


def _garch_data():
    g = torch.Generator().manual_seed(1)
    omega, alpha, beta = 0.1, 0.2, 0.7
    r, var = [], omega / (1 - alpha - beta)
    prev = 0.0
    for _ in range(50):
        var = omega + alpha * prev**2 + beta * var
        prev = math.sqrt(var) * float(torch.randn(1, generator=g))
        r.append(prev)
    return (torch.tensor(r),)


def garch(returns):
    omega = pyro.sample("omega", dist.LogNormal(-2.0, 1.0))
    alpha = pyro.sample("alpha", dist.Beta(2.0, 5.0))
    beta = pyro.sample("beta", dist.Beta(5.0, 2.0))
    var = omega / (1 - alpha * 0.5 - beta * 0.5)
    prev = torch.tensor(0.0)
    for t in range(len(returns)):
        var = omega + alpha * prev**2 + beta * var
        pyro.sample(f"r_{t}", dist.Normal(0.0, var.sqrt()), obs=returns[t])
        prev = returns[t]


def _gp_data():
    g = torch.Generator().manual_seed(0)
    x = torch.linspace(0, 5, 15)
    return x, torch.sin(x) + 0.1 * torch.randn(15, generator=g)


def gp_cholesky(x, y):
    lengthscale = pyro.sample("lengthscale", dist.LogNormal(0.0, 1.0))
    variance = pyro.sample("variance", dist.LogNormal(0.0, 1.0))
    noise = pyro.sample("noise", dist.LogNormal(-2.0, 1.0))
    k = variance * torch.exp(-0.5 * (x[:, None] - x[None, :]) ** 2 / lengthscale**2) + noise * torch.eye(
        len(x)
    )
    pyro.sample("y", dist.MultivariateNormal(torch.zeros(len(x)), scale_tril=torch.linalg.cholesky(k)), obs=y)


def _hmm_data():
    return (torch.tensor([0.1, -0.3, 0.2, 2.9, 3.2, 2.7, 3.1, 0.2, -0.1, 0.3, 3.0, 2.8]),)


def hmm_forward(ys):
    stay = pyro.sample("stay", dist.Beta(2.0, 2.0))
    loc = pyro.sample("loc", dist.Normal(3.0, 2.0))
    trans = torch.stack([torch.stack([stay, 1 - stay]), torch.stack([1 - stay, stay])])
    emit = torch.stack([dist.Normal(0.0, 0.5).log_prob(ys), dist.Normal(loc, 0.5).log_prob(ys)], -1)
    log_alpha = torch.log(torch.tensor([0.5, 0.5])) + emit[0]
    for t in range(1, len(ys)):
        log_alpha = torch.logsumexp(log_alpha[:, None] + trans.log(), 0) + emit[t]
    pyro.factor("forward", torch.logsumexp(log_alpha, 0))


def _eight_schools():
    y = torch.tensor([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
    sigma = torch.tensor([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
    return sigma, y


def eight_schools_noncentred(sigma, y):
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = pyro.sample("tau", dist.HalfCauchy(5.0))
    with pyro.plate("schools", len(y)):
        theta_tilde = pyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
        pyro.sample("obs", dist.Normal(mu + tau * theta_tilde, sigma), obs=y)


REFERENCES = {
    "funnel_noncentred": (funnel_noncentred, (), {"v": (0.0, 3.0), "z[0]": (0.0, 1.0), "z[1]": (0.0, 1.0)}),
    "correlated_regression": (correlated_regression, _years(), _correlated_exact()),
    "garch": (garch, _garch_data(), None),
    "gp_cholesky": (gp_cholesky, _gp_data(), None),
    "hmm_forward": (hmm_forward, _hmm_data(), None),
    "eight_schools_noncentred": (eight_schools_noncentred, _eight_schools(), None),
}


def reference(name: str) -> dict:
    """``{parameter: (mean, sd)}`` for ``name``: the closed form, or the stored summary."""
    model, args, exact = REFERENCES[name]
    if exact is not None:
        return exact
    stored = json.loads(SUMMARIES.read_text())[name]
    return {p: (v["mean"], v["sd"]) for p, v in stored["parameters"].items()}


def scalar_draws(samples: dict) -> dict[str, np.ndarray]:
    """``{site: (chain, draw, *shape)}`` -> ``{"site" or "site[i]": pooled draws}``."""
    return {k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in flat_parameters(samples).items()}
