"""README "Bayesian models": every guide on a regression with uncentred covariates,
started at the prior medians and at the posterior mode, against NUTS.

    .venv/bin/python docs/reproduce/vi_uncentred.py     # about 1 minute
"""

import time
import warnings

import pyro
import pyro.distributions as dist
import torch

import pgen
from pgen.inference.guides import make_guide

warnings.simplefilter("ignore")
g = torch.Generator().manual_seed(0)
x = 50 + 10 * torch.randn(100, generator=g)
y = 9.0 + 0.5 * x + torch.randn(100, generator=g)


def model(x, y=None):
    a = pyro.sample("a", dist.Normal(0.0, 10.0))
    b = pyro.sample("b", dist.Normal(0.0, 10.0))
    s = pyro.sample("s", dist.HalfNormal(5.0))
    with pyro.plate("n", len(x)):
        pyro.sample("y", dist.Normal(a + b * x, s), obs=y)


nuts = pgen.sample(model, x, y, seed=0, progress=False, warn=False)
a = nuts.draws_of("a")
print(f"NUTS: intercept {a.mean():.2f} (sd {a.std():.2f})")
print("| init | guide | intercept | sd | k-hat | seconds |")
print("|---|---|---|---|---|---|")
for init in ("median", "mode"):
    for name in ("meanfield", "fullrank", "lowrank", "structured", "laplace", "map"):
        start = time.perf_counter()
        guide = make_guide(name, model, init=init)
        fit = pgen.fit(
            model, guide, None, model_args=(x, y), steps=3000, lr=0.02, lr_final=0.001, progress=False
        )
        post = fit.posterior(num_draws=1000)
        draws = post.samples["a"]
        print(
            f"| {init} | {name} | {draws.mean():.2f} | {draws.std():.2f} | {post.khat:.2f} | "
            f"{time.perf_counter() - start:.1f} |"
        )
