"""NUTS's warm-up on posteriors whose scales differ by orders of magnitude: the first
metric from the curvature at the mode, the start from the Laplace approximation, and
window estimates shrunk towards the metric in use (issue 16, "fast by default")."""

import numpy as np
import pyro
import pyro.distributions as dist
import torch

import pgen
from pgen.inference.kernels.adaptation import WelfordCovariance
from pgen.inference.kernels.hmc import NUTS
from pgen.inference.kernels.mode_metric import metric_at_mode
from pgen.inference.potential import Potential
from pgen.models.bayes import EightSchools

NOISE = 0.5
PRIOR_SD = torch.tensor([100.0, 10.0], dtype=torch.float64)


def _years():
    """40 years near 4,000 and a response on them: the intercept is 4,000 slopes away
    from the data, so intercept and slope have posterior correlation -0.9999993."""
    g = torch.Generator().manual_seed(0)
    year = 3990.0 + 20.0 * torch.rand(40, generator=g, dtype=torch.float64)
    y = 2.0 + 0.01 * (year - 4000.0) + NOISE * torch.randn(40, generator=g, dtype=torch.float64)
    return year, y


def _regression(year, y=None):
    a = pyro.sample("a", dist.Normal(0.0, PRIOR_SD[0].item()))
    b = pyro.sample("b", dist.Normal(0.0, PRIOR_SD[1].item()))
    with pyro.plate("n", len(year)):
        pyro.sample("y", dist.Normal(a + b * year, NOISE), obs=y)


def _exact(year, y):
    """The conjugate Gaussian posterior of (a, b)."""
    x = torch.stack([torch.ones_like(year), year], 1)
    precision = torch.diag(PRIOR_SD**-2) + x.T @ x / NOISE**2
    cov = torch.linalg.inv(precision)
    return (cov @ x.T @ y / NOISE**2).numpy(), cov.numpy()


def test_the_mode_metric_is_the_exact_covariance_of_a_gaussian_posterior():
    year, y = _years()
    mean, cov = _exact(year, y)
    pot = Potential(_regression, (year, y), jit=True)
    failures = dict(pot.failures)
    mode, found, why = metric_at_mode(pot, np.zeros(2))
    assert why is None
    # The Laplace approximation of a Gaussian is the Gaussian; the latent sites are
    # float32 (Normal(0.0, 100.0)), and at a condition number of 1e13 that leaves errors
    # of about 0.5% in the whitened space, where the exact covariance is the identity.
    chol = np.linalg.cholesky(cov)
    whitened = np.linalg.solve(chol, np.linalg.solve(chol, found).T)
    np.testing.assert_allclose(np.linalg.eigvalsh(whitened), [1.0, 1.0], atol=0.01)
    # the mode is the mean, to within a small fraction of the posterior sd in every direction
    assert np.abs(np.linalg.solve(chol, mode - mean)).max() < 0.01
    assert dict(pot.failures) == failures  # the search's trial points are not the sampler's


def test_a_funnel_has_no_mode_and_keeps_the_identity():
    sigma, y = pgen.data.eight_schools()
    kernel = NUTS(EightSchools(centered=True).model)
    kernel.setup(100, sigma, y)
    assert kernel.mode_metric.startswith("not used: ")
    np.testing.assert_array_equal(kernel.metric.inverse_mass, np.eye(10))


def test_a_correlated_regression_is_sampled_with_defaults_in_a_short_run():
    # Before: the identity start and Stan's regularization towards the identity gave
    # R-hat 1.9-2.6 and min ESS 5 after minutes; here a short default run is exact.
    year, y = _years()
    mean, cov = _exact(year, y)
    r = pgen.sample(_regression, year, y, chains=2, warmup=150, draws=300, seed=0, progress=False, warn=False)
    assert r.config["mode_metric"] == ["used", "used"]
    assert r.summary["r_hat"].max() < 1.05
    ess = r.summary["ess_bulk"].min()
    assert ess > 150
    draws = np.stack([r.draws_of("a"), r.draws_of("b")], 1)
    # whitened by the exact posterior, the draws have mean 0 and identity covariance, to
    # within Monte Carlo error (sd of a mean 1/sqrt(ESS), of a variance sqrt(2/ESS))
    chol = np.linalg.cholesky(cov)
    white = np.linalg.solve(chol, (draws - mean).T).T
    assert np.abs(white.mean(0)).max() < 4 / np.sqrt(ess)
    eig = np.linalg.eigvalsh(np.cov(white.T))
    assert np.all(np.abs(eig - 1) < 4 * np.sqrt(2 / ess)), eig


def test_a_start_the_user_gives_is_kept():
    year, y = _years()
    kernel = NUTS(_regression, init={"a": 3.0, "b": 0.01})
    kernel.setup(100, year, y)
    assert kernel.mode_metric == "used"
    np.testing.assert_allclose(kernel.point.z, [3.0, 0.01])


def test_window_estimates_shrink_towards_the_metric_in_use():
    # draws along a ridge whose narrow direction has variance 1e-9
    rng = np.random.default_rng(0)
    true = np.array([[1.0, -1.0 + 1e-9], [-1.0 + 1e-9, 1.0]])
    x = rng.multivariate_normal(np.zeros(2), true, size=200, method="eigh")
    w = WelfordCovariance(2, dense=True)
    for row in x:
        w.update(row)
    sample = w.covariance(regularize=False)
    n = w.n
    stan = w.covariance()
    np.testing.assert_allclose(stan, n / (n + 5) * sample + 1e-3 * 5 / (n + 5) * np.eye(2))
    towards = w.covariance(towards=true)
    np.testing.assert_allclose(towards, n / (n + 5) * sample + 1e-3 * 5 / (n + 5) * true)
    narrow = np.linalg.eigvalsh(sample)[0]
    # towards the identity the narrow variance grows by orders of magnitude (2.4e-5 is
    # the identity's share); towards a metric with the right shape it stays in scale
    assert np.linalg.eigvalsh(stan)[0] > 1000 * narrow
    assert np.linalg.eigvalsh(towards)[0] < 1.1 * narrow
    diag = WelfordCovariance(2, dense=False)
    for row in x:
        diag.update(row)
    np.testing.assert_allclose(
        diag.covariance(towards=true), n / (n + 5) * np.diag(sample) + 2.4390243902439024e-05
    )
