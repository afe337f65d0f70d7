"""From a fitted guide to exact MCMC (issue 16, "bridges from the notes' VI vs Monte
Carlo"): NUTS started from a guide, and independence Metropolis-Hastings with a guide
as the proposal. Checked against the exact conjugate posterior."""

import warnings

import numpy as np
import pytest

import pgen
from pgen.inference.bridges import GuideStart, IndependenceMH
from pgen.inference.guides import make_guide
from pgen.inference.kernels.hmc import NUTS
from pgen.models.bayes import CorrelatedGaussian, LinearRegression


@pytest.fixture(scope="module")
def linreg():
    x, y, _ = pgen.data.synthetic_regression(40, 2, offset=0.0, seed=1)
    m = LinearRegression()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = pgen.fit(
            m.model,
            make_guide("fullrank", m.model),
            None,
            model_args=(x, y),
            steps=3000,
            lr=0.05,
            lr_final=5e-4,
            num_particles=8,
            progress=False,
        )
    return m, x, y, m.exact_posterior(x, y), fit


def _check_exact(result, exact):
    """Means within 4 Monte Carlo standard errors and sds within 4 standard errors of a
    variance estimate (sqrt(1/(2 ESS)) relative)."""
    ess = float(result.summary["ess_bulk"].min())
    for site in ("bias", "weights"):
        draws = result.samples[site].reshape(-1, *result.samples[site].shape[2:])
        mean, sd = exact.means[site].numpy(), exact.sds[site].numpy()
        assert np.all(np.abs(draws.mean(0) - mean) < 4 * sd / np.sqrt(ess))
        assert np.all(np.abs(draws.std(0) / sd - 1) < 4 / np.sqrt(2 * ess))


def test_imh_with_a_good_guide_is_exact_and_accepts_almost_everything(linreg):
    m, x, y, exact, fit = linreg
    r = pgen.sample(
        m.model,
        x,
        y,
        kernel=IndependenceMH(fit),
        chains=2,
        warmup=100,
        draws=1000,
        seed=0,
        progress=False,
        warn=False,
    )
    accept = float(np.mean(r.sample_stats["acceptance_rate"]))
    assert accept > 0.8  # the full-rank guide is (almost) the Gaussian posterior
    _check_exact(r, exact)


def test_imh_acceptance_falls_with_a_poor_guide():
    # mean field on a correlated Gaussian (rho = 0.95) is far narrower than the
    # posterior: its proposals rarely leave the centre, and IMH says so
    m = CorrelatedGaussian(cov=[[1.0, 0.95], [0.95, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        good = pgen.fit(
            m.model,
            make_guide("fullrank", m.model),
            None,
            steps=3000,
            lr=0.05,
            lr_final=5e-4,
            num_particles=8,
            progress=False,
        )
        poor = pgen.fit(m.model, make_guide("meanfield", m.model), None, steps=1500, lr=0.05, progress=False)
    rates = {}
    for name, fit in (("good", good), ("poor", poor)):
        r = pgen.sample(
            m.model,
            kernel=IndependenceMH(fit),
            chains=1,
            warmup=0,
            draws=2000,
            seed=0,
            progress=False,
            warn=False,
        )
        rates[name] = float(np.mean(r.sample_stats["acceptance_rate"]))
    assert rates["good"] > 0.8 and rates["poor"] < rates["good"] - 0.3, rates


def test_nuts_started_from_a_guide(linreg):
    m, x, y, exact, fit = linreg
    start = GuideStart(fit, num_draws=500)
    kernel = NUTS(m.model, init=start)
    kernel.setup(100, x, y)
    # the first metric is the covariance of the guide's draws, unconstrained
    z = start.unconstrained(kernel.potential)
    np.testing.assert_allclose(kernel.metric.inverse_mass, np.cov(z.T), rtol=1e-10)
    assert kernel.mode_metric == "not used: the metric came from the guide"
    assert any(np.allclose(kernel.point.z, row) for row in z)  # it starts at one of them
    r = pgen.sample(
        m.model, x, y, init=fit, chains=2, warmup=100, draws=500, seed=0, progress=False, warn=False
    )
    assert r.config["init"] == "guide"
    _check_exact(r, exact)


def test_bridges_refuse_what_is_not_a_fitted_guide(linreg):
    m, x, y, _, _ = linreg
    with pytest.raises(TypeError, match="IndependenceMH needs an SVIResult"):
        IndependenceMH(make_guide("fullrank", m.model))
    with pytest.raises(TypeError, match="init must be"):
        pgen.sample(m.model, x, y, init=3.0, chains=1, warmup=5, draws=5, progress=False)
