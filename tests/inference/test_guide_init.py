"""Guides started at the posterior mode (``make_guide(..., init="mode")``).

The model is the regression on uncentred covariates that the README's VI recipe (Adam
0.02 decaying to 0.001 over 3,000 steps) could not fit from the prior medians: with a
known noise scale its posterior is Gaussian and known exactly, so the mode, the
Laplace covariance and the mean-field variances 1/Lambda_ii are all checked against
closed forms.
"""

import warnings

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch

import pgen
from pgen.inference import guide_init
from pgen.inference.guides import make_guide

PRIOR_SD = 10.0


def _data():
    g = torch.Generator().manual_seed(0)
    x = 50 + 10 * torch.randn(100, generator=g, dtype=torch.float64)
    y = 9.0 + 0.5 * x + torch.randn(100, generator=g, dtype=torch.float64)
    return x, y


def regression(x, y):
    a = pyro.sample("a", dist.Normal(torch.tensor(0.0, dtype=x.dtype), PRIOR_SD))
    b = pyro.sample("b", dist.Normal(torch.tensor(0.0, dtype=x.dtype), PRIOR_SD))
    with pyro.plate("n", len(x)):
        pyro.sample("y", dist.Normal(a + b * x, 1.0), obs=y)


def _exact(x, y):
    """Posterior precision and mean of (a, b): Lambda = X'X + I/sd^2, mean = Lambda^-1 X'y."""
    X = np.stack([np.ones(len(x)), x.numpy()], 1)
    precision = X.T @ X + np.eye(2) / PRIOR_SD**2
    return precision, np.linalg.solve(precision, X.T @ y.numpy())


def _fit(name, init, steps, lr=0.02, lr_final=0.001):
    x, y = _data()
    guide = make_guide(name, regression, init=init)
    fit = pgen.fit(
        regression, guide, None, model_args=(x, y), steps=steps, lr=lr, lr_final=lr_final, progress=False
    )
    return guide, fit


def test_the_full_rank_guide_starts_at_the_laplace_approximation():
    x, y = _data()
    precision, mean = _exact(x, y)
    guide, _ = _fit("fullrank", "mode", steps=1, lr=1e-12, lr_final=None)
    assert guide.mode_init.report == "started at the posterior mode"
    posterior = guide.get_posterior()
    np.testing.assert_allclose(posterior.loc.detach().numpy(), mean, rtol=1e-6)
    # for a Gaussian posterior the Laplace covariance is exact
    np.testing.assert_allclose(
        posterior.covariance_matrix.detach().numpy(), np.linalg.inv(precision), rtol=1e-4
    )


def test_mean_field_starts_with_the_variances_that_minimize_its_kl():
    x, y = _data()
    precision, mean = _exact(x, y)
    guide, _ = _fit("meanfield", "mode", steps=1, lr=1e-12, lr_final=None)
    locs = np.array([float(guide.locs.a.detach()), float(guide.locs.b.detach())])
    scales = np.array([float(guide.scales.a.detach()), float(guide.scales.b.detach())])
    np.testing.assert_allclose(locs, mean, rtol=1e-6)
    # KL(q || p) for Gaussian p with precision Lambda is minimized by var_i = 1 / Lambda_ii,
    # which is far below the marginal variance here (correlation near -1)
    np.testing.assert_allclose(scales, 1 / np.sqrt(np.diag(precision)), rtol=1e-4)
    assert np.all(scales < 0.25 * np.sqrt(np.diag(np.linalg.inv(precision))))


def test_the_readme_recipe_reaches_the_posterior_from_the_mode_and_not_from_the_medians():
    x, y = _data()
    precision, mean = _exact(x, y)
    sd = np.sqrt(np.diag(np.linalg.inv(precision)))
    guide, fit = _fit("fullrank", "mode", steps=3000)
    draws = fit.posterior(num_draws=4000).samples
    got = np.array([draws["a"].mean(), draws["b"].mean()])
    got_sd = np.array([draws["a"].std(), draws["b"].std()])
    # 4000 draws: the Monte Carlo error of a mean is sd/63, of an sd about 1.1%
    assert np.all(np.abs(got - mean) < 0.1 * sd), (got, mean, sd)
    assert np.all(np.abs(got_sd / sd - 1) < 0.1), (got_sd, sd)
    # the same recipe from the prior medians stays many posterior sds away (the failure)
    _, fit_median = _fit("fullrank", "median", steps=3000)
    a = fit_median.posterior(num_draws=1000).samples["a"].mean()
    assert abs(a - mean[0]) > 5 * sd[0]


def test_without_a_mode_the_guide_starts_at_the_medians_and_says_why():
    # the centred eight schools: the density grows without bound as tau -> 0 with every
    # theta at mu, so the search ends where the Hessian is not positive definite
    y = torch.tensor([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
    sigma = torch.tensor([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])

    def schools(sigma, y):
        mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
        tau = pyro.sample("tau", dist.HalfCauchy(5.0))
        with pyro.plate("school", len(y)):
            theta = pyro.sample("theta", dist.Normal(mu, tau))
            pyro.sample("obs", dist.Normal(theta, sigma), obs=y)

    guide = make_guide("meanfield", schools, init="mode")
    with pytest.warns(RuntimeWarning, match="init='mode': started at the prior medians: no mode was found"):
        fit = pgen.fit(schools, guide, None, model_args=(sigma, y), steps=2, progress=False)
    assert guide.mode_init.report.startswith("started at the prior medians: no mode was found")
    assert guide.mode_init.values is None and len(fit.history["train_elbo"]) == 2


def test_too_many_latent_dimensions_fall_back_with_the_reason(monkeypatch):
    monkeypatch.setattr(guide_init, "MAX_MODE_DIM", 1)
    x, y = _data()
    guide = make_guide("laplace", regression, init="mode")
    with pytest.warns(RuntimeWarning, match="2 latent dimensions is more than the mode search's 1"):
        pgen.fit(regression, guide, None, model_args=(x, y), steps=2, progress=False)


def test_bad_init_arguments_are_named():
    with pytest.raises(ValueError, match="init"):
        make_guide("fullrank", regression, init="prior")
    with pytest.raises(ValueError, match="init='mode' is for the Gaussian, laplace and map guides"):
        make_guide("flow", regression, init="mode")
    x, y = _data()
    with pytest.raises(ValueError, match="guide_init"):
        pgen.compare(regression, x, y, methods=["meanfield"], guide_init="zero", progress=False)


@pytest.mark.parametrize("name", ["lowrank", "structured", "laplace", "map"])
def test_every_other_family_starts_its_means_at_the_mode(name):
    x, y = _data()
    precision, mean = _exact(x, y)
    sd = np.sqrt(np.diag(np.linalg.inv(precision)))
    tolerance = 1e-5 * sd
    if name == "structured":  # Pyro's AutoGaussian refuses float64 models (scatter dtypes)
        x, y = x.float(), y.float()
        tolerance = 0.05 * sd  # the mode in float32 on a posterior of condition number 1e7
    guide = make_guide(name, regression, init="mode")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no fallback here
        pgen.fit(regression, guide, None, model_args=(x, y), steps=1, lr=1e-12, progress=False)
    if name == "laplace":  # AutoLaplaceApproximation: one vector of locations (a, b)
        got = guide.loc.detach().numpy()
    elif name == "structured":  # AutoGaussian: a location per site
        got = [float(guide.locs.a.detach()), float(guide.locs.b.detach())]
    else:
        median = guide.median()
        got = [float(median["a"]), float(median["b"])]
    assert np.all(np.abs(np.asarray(got) - mean) < tolerance), (got, mean)
