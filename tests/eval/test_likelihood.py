"""Likelihood estimates against probabilistic PCA's exact log p(x)."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch

import pgen
from pgen.eval import bits_per_dim, elbo, log_likelihood
from pgen.models import PPCA

from ..conftest import tiny_vae


def _meanfield_guide_of(true: PPCA):
    """A fixed, imperfect proposal: the exact posterior mean with only the diagonal of its
    covariance, so log p(x) - ELBO is positive but the importance weights behave."""
    _, cov = true.posterior(torch.zeros(1, true.data_dim))
    scale = cov.diagonal().sqrt()

    def guide(x, y=None):
        loc, _ = true.posterior(x)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    return guide


def test_exact_posterior_gives_the_exact_likelihood_for_any_k(ppca_data):
    x, true = ppca_data
    exact = true.log_prob(x[:100])
    for k in (1, 50):
        estimate = log_likelihood(true.model, true.exact_guide, x[:100], num_samples=k)
        torch.testing.assert_close(estimate, exact, atol=2e-4, rtol=0)
    torch.testing.assert_close(elbo(true.model, true.exact_guide, x[:100]), exact, atol=2e-4, rtol=0)


def test_importance_sampled_estimate_rises_to_the_exact_value_from_below(ppca_data):
    # E[log p_K] increases with K and is <= log p(x). For large K the delta method gives
    # its bias: Var(w) / (2 K E[w]^2) = stderr^2 / 2, with the stderr log_likelihood reports.
    x, true = ppca_data
    x = x[:40]
    guide = _meanfield_guide_of(true)
    exact = true.log_prob(x).mean().item()
    reps = 20
    means, ses, predicted = {}, {}, {}
    for k in (1, 10, 100, 1000):
        runs, bias = [], []
        for s in range(reps):
            ll, stderr = log_likelihood(true.model, guide, x, num_samples=k, seed=s, return_stderr=True)
            runs.append(ll.mean())
            bias.append((stderr**2 / 2).mean())
        runs = torch.stack(runs)
        means[k], ses[k] = runs.mean().item(), runs.std().item() / math.sqrt(reps)
        predicted[k] = torch.stack(bias).mean().item()
    gap = {k: exact - m for k, m in means.items()}
    assert gap[1] > 0.05  # the proposal is imperfect: the ELBO is visibly below log p(x)
    for k in means:
        assert means[k] <= exact + 3 * ses[k]  # from below, within Monte Carlo error
    ks = sorted(means)
    for k_small, k_big in zip(ks, ks[1:], strict=False):
        assert means[k_big] - means[k_small] > -3 * math.hypot(ses[k_small], ses[k_big])
        assert gap[k_big] < gap[k_small]
    for k in (10, 100, 1000):
        assert abs(gap[k] - predicted[k]) < 3 * ses[k]


def test_reported_standard_error_matches_the_spread_across_seeds(ppca_data):
    x, true = ppca_data
    guide = _meanfield_guide_of(true)
    one = x[:1]
    _, se = log_likelihood(true.model, guide, one, num_samples=500, return_stderr=True, seed=0)
    spread = torch.stack(
        [log_likelihood(true.model, guide, one, num_samples=500, seed=s) for s in range(1, 61)]
    ).std()
    # a standard deviation estimated from 60 draws has a relative error of about
    # 1/sqrt(2 * 59) = 9%: four of those is +-37%
    assert 0.63 < (spread / se).item() < 1.37


def test_elbo_is_below_the_likelihood_estimate(digits):
    x, _ = digits
    vae = tiny_vae(0)
    pgen.fit(vae.model, vae.guide, x, epochs=3, batch_size=64, progress=False)
    e = elbo(vae.model, vae.guide, x[:64], num_samples=10)
    ll = log_likelihood(vae.model, vae.guide, x[:64], num_samples=200)
    assert (ll > e).float().mean() > 0.95 and ll.mean() > e.mean()


def test_likelihood_ignores_a_kl_weight(digits):
    x, _ = digits
    plain, beta = tiny_vae(0), tiny_vae(0, beta=3.0)
    beta.load_state_dict(plain.state_dict())
    a = log_likelihood(plain.model, plain.guide, x[:20], num_samples=30)
    b = log_likelihood(beta.model, beta.guide, x[:20], num_samples=30)
    torch.testing.assert_close(a, b)


def test_chunked_samples_give_the_same_exact_answer(ppca_data, monkeypatch):
    x, true = ppca_data
    monkeypatch.setattr(pgen.eval.likelihood, "_CHUNK", 7)  # many small chunks
    estimate = log_likelihood(true.model, true.exact_guide, x[:30], num_samples=25, batch_size=8)
    torch.testing.assert_close(estimate, true.log_prob(x[:30]), atol=2e-4, rtol=0)


def test_global_latent_variables_have_no_per_example_likelihood():
    def model(x, y=None):
        mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        with pyro.plate("data", len(x)):
            pyro.sample("obs", dist.Normal(mu, 1.0), obs=x)

    def guide(x, y=None):
        pyro.sample("mu", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="latent site 'mu' is outside pyro.plate"):
        log_likelihood(model, guide, torch.zeros(5, 1), num_samples=3)


def test_bits_per_dim():
    assert bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)
    assert bits_per_dim(0.0, 1, levels=256) == pytest.approx(8.0)
    nll = torch.tensor([100.0, 200.0])
    torch.testing.assert_close(bits_per_dim(nll, 10), nll / (10 * math.log(2)))
    with pytest.raises(ValueError, match="dims must be an integer >= 1"):
        bits_per_dim(1.0, 0)
