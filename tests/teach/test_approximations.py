"""Pieces 4 (mean field vs full rank), 5 (rate-distortion) and 6 (posterior collapse)."""

import itertools
import math

import numpy as np
import pytest
import torch

import pgen
from pgen.teach import (
    BinaryMarkovChain,
    gaussian_approximations,
    gaussian_kl,
    posterior_collapse,
    rate_distortion_sweep,
)


def test_meanfield_closed_form_is_the_reverse_kl_optimum():
    cov = torch.tensor([[1.0, 0.9], [0.9, 1.0]], dtype=torch.float64)
    mu = torch.zeros(2, dtype=torch.float64)
    d = torch.diag(1.0 / torch.linalg.inv(cov).diagonal())
    best = gaussian_kl(mu, d, mu, cov)
    assert best == pytest.approx(-0.5 * math.log(1 - 0.81), rel=1e-10)
    for scale in (0.9, 1.1):  # any other diagonal covariance is farther in KL(q || p)
        for i in range(2):
            other = d.clone()
            other[i, i] *= scale
            assert gaussian_kl(mu, other, mu, cov) > best
    assert gaussian_kl(mu, torch.diag(cov.diagonal()), mu, cov) > best  # moment matching


def test_elbo_fits_reach_the_closed_form_gaussian_approximations():
    g = gaussian_approximations([[1.0, 0.9], [0.9, 1.0]], mean=[1.0, -1.0], steps=1000)
    mf_var = g.fitted["meanfield"][1].diagonal().numpy()
    # stochastic optimization ends near, not at, the optimum (measured 1-3 % off in variance)
    np.testing.assert_allclose(mf_var, [0.19, 0.19], rtol=0.08)
    np.testing.assert_allclose(g.fitted["meanfield"][0].numpy(), [1.0, -1.0], atol=0.05)
    assert np.all(mf_var < 0.3)  # far below the marginal variances 1: mean field underestimates
    np.testing.assert_allclose(g.fitted["fullrank"][1].numpy(), g.cov.numpy(), atol=0.08)
    # KL is second order in the parameter error: the fits are within 0.02 nats of the optima
    assert g.kl["meanfield"] == pytest.approx(g.kl_closed_form["meanfield"], abs=0.02)
    assert g.kl["fullrank"] < 0.02
    assert g.kl["meanfield"] >= g.kl_closed_form["meanfield"] - 1e-9  # nothing beats the optimum
    # the target is normalized, so the negative ELBO the engine minimized estimates KL(q || p)
    assert g.final_loss["meanfield"] == pytest.approx(g.kl["meanfield"], abs=0.05)


@pytest.fixture(scope="module")
def digits():
    x, _ = pgen.data.load("digits", "train", binarize="threshold")
    x_test, _ = pgen.data.load("digits", "test", binarize="threshold")
    return x, x_test


def test_rate_distortion_sweep_trades_rate_for_distortion(digits):
    x, x_test = digits
    s = rate_distortion_sweep(x, x_test, betas=(0.5, 1.0, 4.0), epochs=25, latent_dim=6, num_samples=30)
    assert s.rates[0] > s.rates[1] > s.rates[2]
    assert s.distortions[0] < s.distortions[1] < s.distortions[2]
    np.testing.assert_allclose(s.elbos, -(np.asarray(s.rates) + np.asarray(s.distortions)))
    for i, beta in enumerate(s.betas):
        # the engine's beta-weighted loss is D + beta R: two Monte Carlo estimates, independent draws
        se = math.hypot(s.engine_se[i], s.distortion_se[i])
        assert s.engine_loss[i] == pytest.approx(s.distortions[i] + beta * s.rates[i], abs=4 * se)
    assert s.best_model_for_each_beta() == [0, 1, 2]
    with pytest.raises(ValueError, match="beta"):
        rate_distortion_sweep(x, x_test, betas=(1.0, -1.0))


def test_markov_chain_log_prob_is_exact():
    chain = BinaryMarkovChain(dim=6, stay=0.8)
    every = torch.tensor(list(itertools.product([0.0, 1.0], repeat=6)))
    p = chain.log_prob(every).exp()
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-12)
    assert chain.entropy() == pytest.approx(float(-(p * p.log()).sum()), rel=1e-10)
    x = chain.sample(20000, seed=3)
    freq = torch.bincount((x * 2 ** torch.arange(5, -1, -1)).sum(1).long(), minlength=64).double() / 20000
    assert ((freq - p).abs() <= 5 * (p * (1 - p) / 20000).sqrt()).all()
    with pytest.raises(ValueError, match="stay"):
        BinaryMarkovChain(stay=1.0)


def test_a_made_decoder_collapses_the_posterior_and_a_factorized_one_does_not():
    chain = BinaryMarkovChain(dim=16, stay=0.9)
    x, x_test = chain.sample(8000, seed=0), chain.sample(1000, seed=1)
    s = posterior_collapse(x, x_test, latent_dim=4, rounds=3, epochs_per_round=6, exact=chain)
    kl_made, kl_fact = s.final("autoregressive", "kl"), s.final("factorized", "kl")
    assert kl_made < 0.5 and kl_made < 0.2 * kl_fact
    # the MADE models the chain itself: its ELBO is near the exact log-likelihood; the
    # factorized decoder can only correlate pixels through z, and pays for it
    assert s.final("autoregressive", "elbo") == pytest.approx(s.log_likelihood, abs=0.3)
    assert s.final("factorized", "elbo") < s.log_likelihood - 0.5
    assert s.final("autoregressive", "elbo") > s.final("factorized", "elbo")
    assert s.epochs == [0, 6, 12, 18]
