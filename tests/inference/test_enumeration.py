"""Discrete latent sites in pgen.sample: summed out of the potential (Pyro's enumeration)
and drawn afterwards from their conditional (issue 16, "any model Pyro accepts").
The models are written as Pyro's examples write them."""

import math

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine

import pgen
from pgen.inference.potential import Potential

P1, SHIFT, Y = 0.3, 2.0, 1.0


def switch(y):
    """z ~ Bernoulli(0.3), x ~ N(0, 1), y ~ N(x + 2 z, 1): the posterior of x is a
    two-component Gaussian mixture, known in closed form."""
    z = pyro.sample("z", dist.Bernoulli(P1))
    x = pyro.sample("x", dist.Normal(0.0, 1.0))
    pyro.sample("y", dist.Normal(x + SHIFT * z, 1.0), obs=y)


def _exact():
    """p(z=1 | y), and the mean and variance of x | y."""
    # given z, y ~ N(2 z, 2) marginally and x | y, z ~ N((y - 2 z) / 2, 1/2)
    like = [math.exp(-((Y - SHIFT * z) ** 2) / 4) for z in (0, 1)]
    w1 = P1 * like[1] / ((1 - P1) * like[0] + P1 * like[1])
    means = [(Y - SHIFT * z) / 2 for z in (0, 1)]
    mean = (1 - w1) * means[0] + w1 * means[1]
    var = 0.5 + (1 - w1) * means[0] ** 2 + w1 * means[1] ** 2 - mean**2
    return w1, mean, var


def _log_joint(x):
    """log p(y, x) with z summed out, by hand."""
    like = (1 - P1) * math.exp(-0.5 * (Y - x) ** 2) + P1 * math.exp(-0.5 * (Y - x - SHIFT) ** 2)
    return math.log(like) - math.log(2 * math.pi) - 0.5 * x * x


def test_the_potential_sums_the_discrete_site_out():
    pot = Potential(switch, (torch.tensor(Y),), jit=True)
    assert pot.enumerated == ["z"] and pot.names == ["x"]
    assert pot.compiled is not None
    h = 1e-4
    for x in (-1.0, 0.3, 2.0):
        u, g = pot.numpy_value_and_grad(np.array([x]))
        assert u == pytest.approx(-_log_joint(x), abs=1e-5)
        # the gradient too: central differences of the exact log density
        assert g[0] == pytest.approx(-(_log_joint(x + h) - _log_joint(x - h)) / (2 * h), abs=1e-3)


def test_nuts_samples_the_marginal_and_draws_the_discrete_site_from_its_conditional():
    w1, mean, var = _exact()
    r = pgen.sample(
        switch, torch.tensor(Y), chains=2, warmup=300, draws=1500, seed=0, progress=False, warn=False
    )
    assert r.config["enumerated"] == ["z"]
    x, z = r.draws_of("x"), r.draws_of("z")
    assert set(np.unique(z)) <= {0.0, 1.0}
    ess = float(r.summary.loc["x", "ess_bulk"])
    sd = math.sqrt(var)
    assert abs(x.mean() - mean) < 4 * sd / math.sqrt(ess)
    assert abs(x.var() / var - 1) < 4 * math.sqrt(2 / ess)
    # z is drawn exactly given each x: its mean is p(z=1 | y) up to the error of x's ESS
    assert abs(z.mean() - w1) < 4 * math.sqrt(w1 * (1 - w1) / ess)
    # and given x, z follows its conditional: E[z | x] rises with x (y - x is explained by 2 z)
    low, high = z[x < np.quantile(x, 0.25)].mean(), z[x > np.quantile(x, 0.75)].mean()
    assert low > high


def test_a_gaussian_mixture_written_as_in_pyros_tutorial():
    # Pyro's "Gaussian mixture model" tutorial: global weights, locs and scale, a local
    # assignment per point enumerated in the data plate.
    data = torch.tensor([0.0, 1.0, 10.0, 11.0, 12.0])

    def model(data):
        weights = pyro.sample("weights", dist.Dirichlet(0.5 * torch.ones(2)))
        scale = pyro.sample("scale", dist.LogNormal(0.0, 2.0))
        with pyro.plate("components", 2):
            locs = pyro.sample("locs", dist.Normal(0.0, 10.0))
        with pyro.plate("data", len(data)):
            assignment = pyro.sample("assignment", dist.Categorical(weights))
            pyro.sample("obs", dist.Normal(locs[assignment], scale), obs=data)

    r = pgen.sample(model, data, chains=1, warmup=200, draws=400, seed=0, progress=False, warn=False)
    assert r.config["enumerated"] == ["assignment"] and r.config["compiled"]
    a = r.draws_of("assignment")
    assert a.shape == (400, 5) and set(np.unique(a)) <= {0, 1}
    # Each assignment is drawn from its conditional given the draw of (weights, locs,
    # scale): p_i = w_1 N(x_i; l_1, s) / sum_k w_k N(x_i; l_k, s). Given the chain, the
    # draws are independent Bernoulli(p_i), so their mean matches the mean of p_i to
    # within sqrt(mean p (1 - p) / n).
    w, locs, scale = r.draws_of("weights"), r.draws_of("locs"), r.draws_of("scale")
    logp = (
        np.log(w)[:, None, :]
        - 0.5 * ((data.numpy()[None, :, None] - locs[:, None, :]) / scale[:, None, None]) ** 2
    )
    p = np.exp(logp[..., 1] - np.logaddexp(logp[..., 0], logp[..., 1]))
    sd = np.sqrt((p * (1 - p)).mean(0) / len(p))
    assert np.all(np.abs(a.mean(0) - p.mean(0)) < 4 * sd + 1e-9)
    # points that sit together are mostly assigned together
    assert (a[:, 0] == a[:, 1]).mean() > 0.8 and (a[:, 2] == a[:, 3]).mean() > 0.8


def test_an_hmm_with_the_forward_algorithm_left_to_enumeration():
    # a two-state HMM written with pyro.markov, as Pyro's hmm example does
    ys = torch.tensor([0.1, -0.2, 3.1, 2.9, 3.2, 0.0])

    def hmm(ys):
        stay = pyro.sample("stay", dist.Beta(5.0, 1.0))
        probs = torch.stack([torch.stack([stay, 1 - stay]), torch.stack([1 - stay, stay])])
        state = 0
        for t in pyro.markov(range(len(ys))):
            state = pyro.sample(f"s_{t}", dist.Categorical(probs[state]))
            pyro.sample(f"y_{t}", dist.Normal(3.0 * state, 0.5), obs=ys[t])

    pot = Potential(hmm, (ys,))
    assert pot.names == ["stay"] and len(pot.enumerated) == len(ys)
    # the potential equals the forward algorithm done by hand
    stay = 0.8
    z = np.array([math.log(stay) - math.log(1 - stay)])  # logit: the unit interval's transform
    trans = torch.tensor([[stay, 1 - stay], [1 - stay, stay]], dtype=torch.float64)
    emit = torch.stack([dist.Normal(3.0 * s, 0.5).log_prob(ys).double().exp() for s in (0, 1)], 1)
    alpha = trans[0] * emit[0]
    for t in range(1, len(ys)):
        alpha = (alpha @ trans) * emit[t]
    log_prior = dist.Beta(5.0, 1.0).log_prob(torch.tensor(stay)).item()
    log_jac = math.log(stay * (1 - stay))
    u, _ = pot.numpy_value_and_grad(z)
    assert u == pytest.approx(-(math.log(alpha.sum()) + log_prior + log_jac), abs=1e-4)
    r = pgen.sample(hmm, ys, chains=1, warmup=100, draws=100, seed=0, progress=False, warn=False)
    states = np.stack([r.draws_of(f"s_{t}") for t in range(len(ys))], 1)
    assert states.shape == (100, 6)
    assert (states[:, 2:5] == 1).mean() > 0.95 and (states[:, [0, 1, 5]] == 0).mean() > 0.95


def test_discrete_sites_of_infinite_support_are_refused_with_the_reason():
    def model():
        n = pyro.sample("n", dist.Poisson(3.0))
        pyro.sample("x", dist.Normal(0.0, 1.0))
        pyro.sample("y", dist.Normal(n, 1.0), obs=torch.tensor(2.0))

    with pytest.raises(ValueError, match=r"'n' \(Poisson\) whose support is not finite"):
        pgen.sample(model, chains=1, warmup=5, draws=5, progress=False)


def test_a_model_with_only_discrete_latents_is_explained():
    def model():
        z = pyro.sample("z", dist.Bernoulli(0.5))
        pyro.sample("y", dist.Normal(z, 1.0), obs=torch.tensor(1.0))

    with pytest.raises(ValueError, match=r"no continuous latent sites.*\['z'\]"):
        pgen.sample(model, chains=1, warmup=5, draws=5, progress=False)


def test_the_traced_model_is_left_unenumerated_for_other_engines():
    # enumeration wraps a copy: the user's model, traced afterwards, still samples z
    Potential(switch, (torch.tensor(Y),))
    trace = poutine.trace(switch).get_trace(torch.tensor(Y))
    assert trace.nodes["z"]["value"].shape == ()


def test_a_vi_fit_with_enumeration_sums_the_discrete_site_out_of_its_diagnostics():
    # The guide covers x only (make_guide hides the enumerated z, as Pyro advises);
    # each log ratio must be log sum_z p(y, z, x) - log q(x), so importance sampling
    # with the guide estimates the exact evidence log p(y), and z is drawn from
    # p(z | x, y). Before, z was drawn from its prior inside the ratio.
    from pyro.infer import config_enumerate

    from pgen.inference.guides import make_guide

    model = config_enumerate(switch)
    guide = make_guide("meanfield", model)
    y = torch.tensor(Y)
    fit = pgen.fit(
        model, guide, None, model_args=(y,), steps=300, lr=0.05, objective="enum", progress=False, seed=0
    )
    post = fit.posterior(num_draws=2000, seed=0)
    log_evidence = -0.25 - 0.5 * math.log(4 * math.pi)  # y ~ N(2 z, 2): equal for z = 0, 1
    r = post.log_ratios
    w = np.exp(r - r.max())
    estimate = math.log(w.mean()) + r.max()
    se = w.std() / (math.sqrt(len(w)) * w.mean())
    assert abs(estimate - log_evidence) < 4 * se + 1e-3
    assert post.elbo < log_evidence + 1e-3
    x, z = post.samples["x"][0], post.samples["z"][0]
    like1 = P1 * np.exp(-0.5 * (Y - x - SHIFT) ** 2)
    p = like1 / (like1 + (1 - P1) * np.exp(-0.5 * (Y - x) ** 2))
    assert abs(z.mean() - p.mean()) < 4 * math.sqrt((p * (1 - p)).mean() / len(p))
