import math

import arviz as az
import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch

import pgen
from pgen.inference.kernels import hmc as k
from pgen.inference.potential import Potential
from pgen.models.bayes import CorrelatedGaussian, EightSchools, LinearRegression


@pytest.fixture(scope="module")
def linreg():
    x, y, _ = pgen.data.synthetic_regression(40, 2, seed=0)  # uncentred: correlated posterior
    m = LinearRegression()
    return m, x, y, m.exact_posterior(x, y)


@pytest.fixture(scope="module")
def nuts_linreg(linreg):
    m, x, y, _ = linreg
    return pgen.sample(m.model, x, y, chains=2, warmup=300, draws=1000, seed=0, jit=True, progress=False)


# --------------------------------------------------------------------------- pure step maths


def _gaussian_potential(prec):
    def value_and_grad(z):
        return 0.5 * float(z @ prec @ z), prec @ z

    return value_and_grad


def test_leapfrog_is_reversible_and_conserves_energy_to_second_order():
    prec = np.array([[2.0, 0.6], [0.6, 1.0]])
    vg = _gaussian_potential(prec)
    metric = k.Metric.identity(2, dense=True)
    z0, p0 = np.array([1.0, -0.5]), np.array([0.3, 0.8])
    u0, g0 = vg(z0)
    errors = []
    for eps in (0.1, 0.05):
        z, p, g = z0, p0, g0
        for _ in range(int(round(1 / eps))):
            z, p, u, g = k.leapfrog(z, p, g, eps, metric, vg)
        errors.append(abs(u + metric.kinetic(p) - u0 - metric.kinetic(p0)))
        for _ in range(int(round(1 / eps))):  # run backwards: back to the start
            z, p, u, g = k.leapfrog(z, p, g, -eps, metric, vg)
        np.testing.assert_allclose(z, z0, atol=1e-10)
        np.testing.assert_allclose(p, p0, atol=1e-10)
    assert errors[1] < errors[0] / 3  # halving eps divides the energy error by ~4


def test_momentum_has_the_inverse_of_the_metric_as_covariance():
    sigma = np.array([[2.0, 0.9], [0.9, 1.0]])
    metric = k.Metric(sigma)
    rng = np.random.default_rng(0)
    p = np.stack([metric.sample_momentum(rng) for _ in range(20000)])
    np.testing.assert_allclose(np.cov(p.T), np.linalg.inv(sigma), atol=0.05)


def test_stan_windows_and_welford():
    assert k.adaptation_windows(1000) == [(75, 100), (100, 150), (150, 250), (250, 450), (450, 950)]
    assert k.adaptation_windows(10) == []
    windows = k.adaptation_windows(100)  # short warm-up: 15% / 75% / 10%
    assert windows[0][0] == 15 and windows[-1][1] == 90
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    w = k.WelfordCovariance(3, dense=True)
    for row in x:
        w.update(row)
    np.testing.assert_allclose(w.covariance(regularize=False), np.cov(x.T), atol=1e-12)


def test_dual_averaging_finds_the_step_size_with_the_target_acceptance():
    # acceptance exp(-step): the target 0.8 is reached at step = -log(0.8)
    da = k.DualAveraging(1.0, target=0.8)
    step = 1.0
    for _ in range(2000):
        step = da.update(math.exp(-step))
    assert da.final_step_size == pytest.approx(-math.log(0.8), rel=0.05)


def test_nuts_transition_leaves_a_gaussian_invariant():
    """Exact draws pushed through one transition each stay N(0, Sigma)."""
    sigma = np.array([[1.0, 0.8], [0.8, 1.0]])
    prec = np.linalg.inv(sigma)
    vg = _gaussian_potential(prec)
    rng = np.random.default_rng(0)
    chol = np.linalg.cholesky(sigma)
    metric = k.Metric.identity(2, dense=True)
    out = []
    for _ in range(4000):
        z = chol @ rng.normal(size=2)
        u, g = vg(z)
        point, _ = k.nuts_transition(k.Point(z, u, g), rng, 0.4, metric, vg)
        out.append(point.z)
    out = np.array(out)
    # sample covariance of 4000 draws: sd of each entry about sqrt(2/4000) ~ 0.022
    np.testing.assert_allclose(np.cov(out.T), sigma, atol=0.1)
    np.testing.assert_allclose(out.mean(0), 0, atol=0.1)


def test_hmc_transition_leaves_a_gaussian_invariant_and_rejects_when_it_must():
    """Exact draws pushed through five fixed-length transitions each stay N(0, Sigma).

    The step is big enough that a quarter of proposals are rejected: without the
    Metropolis correction the leapfrog error inflates the second variance to about 1.36
    (measured), far outside the tolerance."""
    sigma = np.array([[1.0, 0.8], [0.8, 1.0]])
    prec = np.linalg.inv(sigma)
    vg = _gaussian_potential(prec)
    rng = np.random.default_rng(1)
    chol = np.linalg.cholesky(sigma)
    metric = k.Metric(np.diag([0.5, 2.0]))  # deliberately not the posterior covariance
    out, accepts = [], []
    for _ in range(2000):
        z = chol @ rng.normal(size=2)
        point = k.Point(z, *vg(z))
        for _ in range(5):
            point, stats = k.hmc_transition(point, rng, 0.6, 3, metric, vg)
            accepts.append(stats.accept_stat)
        out.append(point.z)
    out = np.array(out)
    assert 0.6 < np.mean(accepts) < 0.9
    # 2000 draws: each covariance entry has sd about sqrt(2/2000) ~ 0.032
    np.testing.assert_allclose(np.cov(out.T), sigma, atol=0.13)
    np.testing.assert_allclose(out.mean(0), 0, atol=0.13)


# --------------------------------------------------------------------------- the engine


def _assert_matches(r, exact):
    """Draws agree with the exact Gaussian posterior within their Monte Carlo error:
    sd/sqrt(ESS) for a mean, about sd/sqrt(2 ESS) for an sd."""
    for name in ("bias", "weights"):
        draws = r.draws_of(name)
        mean, sd = exact.means[name].numpy(), exact.sds[name].numpy()
        ess = r.summary.loc[[i for i in r.summary.index if i.startswith(name)], "ess_bulk"].to_numpy()
        np.testing.assert_array_less(np.abs(draws.mean(0) - mean), 4 * sd / np.sqrt(ess))
        np.testing.assert_array_less(np.abs(draws.std(0) - sd), 4 * sd / np.sqrt(2 * ess) + 0.02 * sd)


def test_nuts_recovers_the_conjugate_posterior(linreg, nuts_linreg):
    _, _, _, exact = linreg
    r = nuts_linreg
    assert r.divergences == 0
    _assert_matches(r, exact)
    assert (r.summary["r_hat"] < 1.01).all()


def test_hmc_kernel_recovers_the_conjugate_posterior(linreg):
    m, x, y, exact = linreg
    r = pgen.sample(
        m.model,
        x,
        y,
        kernel="hmc",
        num_steps=10,
        chains=2,
        warmup=300,
        draws=800,
        seed=1,
        progress=False,
        jit=True,
    )
    assert r.kernel == "hmc" and r.divergences == 0
    accept = r.sample_stats["acceptance_rate"]
    assert 0.5 < accept.mean() < 0.99  # the step size was adapted towards the 0.8 target
    _assert_matches(r, exact)


def test_result_carries_inference_data_that_arviz_reads(nuts_linreg, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    idata = nuts_linreg.inference_data
    for group in ("posterior", "sample_stats", "log_likelihood", "observed_data"):
        assert hasattr(idata, group)
    assert idata.posterior["weights"].shape == (2, 1000, 2)
    assert idata.log_likelihood["obs"].shape == (2, 1000, 40)
    for stat in ("diverging", "step_size", "tree_depth", "acceptance_rate", "energy", "lp"):
        assert stat in idata.sample_stats
    summary = az.summary(idata)
    np.testing.assert_allclose(
        summary.loc["bias", "mean"], nuts_linreg.summary.loc["bias", "mean"], atol=1e-3
    )
    axes = az.plot_trace(idata, var_names=["bias"])
    axes.ravel()[0].figure.savefig(tmp_path / "trace.png")
    assert nuts_linreg.ess_per_second > 0 and nuts_linreg.wall_time > 0


def test_compiled_potential_equals_the_model(linreg):
    m, x, y, _ = linreg
    eager = Potential(m.model, (x, y))
    compiled = Potential(m.model, (x, y), jit=True)
    assert compiled.compiled is not None
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        z = torch.randn(eager.dim, generator=gen)
        u1, g1 = eager.value_and_grad(z)
        u2, g2 = compiled.value_and_grad(z)
        assert float(u1) == pytest.approx(float(u2), rel=1e-5)
        torch.testing.assert_close(g1, g2, rtol=1e-4, atol=1e-4)


def test_same_seed_same_draws_and_parallel_matches_sequential():
    m = CorrelatedGaussian()
    a = pgen.sample(m.model, chains=2, warmup=50, draws=50, seed=3, progress=False, warn=False)
    b = pgen.sample(m.model, chains=2, warmup=50, draws=50, seed=3, progress=False, warn=False, parallel=True)
    np.testing.assert_array_equal(a.samples["x"], b.samples["x"])
    assert not np.array_equal(a.samples["x"][0], a.samples["x"][1])  # chains differ


def test_parallel_chains_end_quietly_under_a_raising_sigterm_handler(capfd):
    """The CLI turns SIGTERM into an exception; the forked chain processes inherit that
    handler, and the parent ends them with SIGTERM, which must not print tracebacks."""
    import signal

    def raising(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, raising)
    try:
        m = CorrelatedGaussian()
        r = pgen.sample(
            m.model, chains=2, warmup=30, draws=30, seed=3, progress=False, warn=False, parallel=True
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert r.samples["x"].shape[:2] == (2, 30)
    assert "Traceback" not in capfd.readouterr().err


def test_centred_eight_schools_divergences_are_reported():
    sigma, y = pgen.data.eight_schools()
    # the funnel: with a diagonal mass matrix (Stan's default) NUTS cannot enter its neck
    with pytest.warns(RuntimeWarning, match="divergent"):
        r = pgen.sample(
            EightSchools(centered=True).model,
            sigma,
            y,
            chains=1,
            warmup=300,
            draws=500,
            seed=0,
            dense_mass=False,
            jit=True,
            progress=False,
        )
    assert r.divergences > 0
    assert r.samples["theta"].shape == (1, 500, 8)


def test_noncentred_eight_schools_keeps_theta_as_a_posterior_variable():
    sigma, y = pgen.data.eight_schools()
    r = pgen.sample(
        EightSchools(centered=False).model,
        sigma,
        y,
        chains=1,
        warmup=200,
        draws=200,
        seed=0,
        progress=False,
        warn=False,
        posterior_predictive=True,
        jit=True,
    )
    theta, mu, tau = r.samples["theta"], r.samples["mu"], r.samples["tau"]
    np.testing.assert_allclose(theta, mu[..., None] + tau[..., None] * r.samples["theta_tilde"], atol=1e-5)
    assert r.inference_data.posterior_predictive["obs"].shape == (1, 200, 8)
    assert (r.samples["tau"] > 0).all()


def test_pyro_kernels_run_on_the_same_engine():
    def model(y):
        mu = pyro.sample("mu", dist.Normal(0.0, 10.0))
        sigma = pyro.sample("sigma", dist.HalfNormal(5.0))
        with pyro.plate("data", len(y)):
            pyro.sample("obs", dist.Normal(mu, sigma), obs=y)

    y = torch.tensor([1.0, 2.0, 0.5, 1.5, 3.0])
    r = pgen.sample(
        model, y, kernel=pyro.infer.NUTS(model), chains=1, warmup=50, draws=50, progress=False, warn=False
    )
    assert (r.samples["sigma"] > 0).all()  # mapped back to the constrained space
    assert "diverging" in r.sample_stats


def test_bad_input_is_explained():
    def discrete(y):
        k_ = pyro.sample("k", dist.Categorical(torch.ones(3)))
        pyro.sample("obs", dist.Normal(k_.float(), 1.0), obs=y)

    with pytest.raises(ValueError, match=r"no continuous latent sites.*\[.k.\]"):
        pgen.sample(discrete, torch.tensor(1.0), progress=False)
    m = CorrelatedGaussian()
    with pytest.raises(ValueError, match="draws must be an integer >= 1, got 0"):
        pgen.sample(m.model, draws=0, progress=False)
    with pytest.raises(ValueError, match="kernel must be one of"):
        pgen.sample(m.model, kernel="gibbs", progress=False)
    with pytest.raises(TypeError, match="arguments given failed"):
        pgen.sample(
            LinearRegression().model, torch.zeros(3, 2), torch.zeros(3), torch.zeros(3), progress=False
        )
    with pytest.raises(ValueError, match="not latent sites"):
        pgen.sample(m.model, init={"nope": 1.0}, progress=False)
    with pytest.raises(ValueError, match="step_size_jitter must be < 1.0, got 1.5"):
        k.HMC(m.model, step_size_jitter=1.5)


def test_a_foreign_kernel_reports_its_step_size_and_divergences_through_the_adapter():
    # a user's kernel written against Pyro's MCMCKernel, keeping what Pyro's HMC keeps:
    # a list of divergent iterations and a step size; no last_stats of its own
    from pyro.infer.mcmc.mcmc_kernel import MCMCKernel

    from pgen.inference.kernels.base import ForeignKernel

    class Every3rdDiverges(MCMCKernel):
        def setup(self, warmup_steps, *args, **kwargs):
            self.t, self._divergences, self.step_size, self.transforms = 0, [], 0.5, {}
            self._params = {"x": torch.tensor(0.0)}

        @property
        def initial_params(self):
            return self._params

        @initial_params.setter
        def initial_params(self, params):
            self._params = params

        def sample(self, params):
            self.t += 1
            if self.t % 3 == 0:
                self._divergences.append(self.t)
            self.step_size = 0.5 / self.t
            return {"x": params["x"] + 1.0}

    r = pgen.sample(
        lambda: None, kernel=Every3rdDiverges(), chains=1, warmup=4, draws=6, progress=False, warn=False
    )
    diverging = np.asarray(r.sample_stats["diverging"]).reshape(-1)
    np.testing.assert_array_equal(diverging, [t % 3 == 0 for t in range(5, 11)])
    np.testing.assert_allclose(
        np.asarray(r.sample_stats["step_size"]).reshape(-1), [0.5 / t for t in range(5, 11)]
    )
    np.testing.assert_array_equal(r.samples["x"][0], np.arange(5.0, 11.0))
    assert r.divergences == 2
    assert isinstance(
        pgen.inference.mcmc.chains.make_kernel(
            Every3rdDiverges(),
            None,
            jit=False,
            init=None,
            target_accept=0.8,
            max_tree_depth=10,
            dense_mass=False,
            metric_init="mode",
            step_size=None,
            num_steps=1,
        ),
        ForeignKernel,
    )
