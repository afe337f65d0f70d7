"""pgen.sample on models that fail at some points, on runs that stop early, and on
arguments in the forms other people pass them (issue 16)."""

import math
import sys
import warnings

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine

import pgen
from pgen.inference.kernels.hamiltonian import Metric, metric_from_covariance
from pgen.models.bayes import LinearRegression

# A standard normal truncated to [-A, A]: mean 0 and variance 1 - 2 A phi(A) / (2 Phi(A) - 1).
A = 1.5
_phi = math.exp(-0.5 * A * A) / math.sqrt(2 * math.pi)
_mass = math.erf(A / math.sqrt(2))
TRUNCATED_SD = math.sqrt(1 - 2 * A * _phi / _mass)  # 0.7426


def _raises_outside(x):
    """A model that raises beyond |x| = A, as Pyro's validation does at a bad point."""
    z = pyro.sample("z", dist.Normal(0.0, 1.0))
    if float(z.abs()) > A:
        raise ValueError(f"Expected value argument to be within the support, got {float(z):.3f}")


class _ZeroWithNaNGradientOutside(torch.autograd.Function):
    """0, with a gradient that is NaN beyond |z| = A (as a hand-written operation's
    backward may be)."""

    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return torch.zeros_like(z)

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return torch.where(z.abs() > A, torch.full_like(z, float("nan")), torch.zeros_like(z)) * grad


def _nan_gradient_outside(x):
    """Finite log density everywhere, NaN gradient beyond |x| = A."""
    z = pyro.sample("z", dist.Normal(0.0, 1.0))
    pyro.factor("edge", _ZeroWithNaNGradientOutside.apply(z))


def _cholesky_fails_outside(x):
    """An in-model Cholesky factor that fails beyond |x| = A, where the covariance
    [[1, z/A], [z/A, 1]] stops being positive definite."""
    z = pyro.sample("z", dist.Normal(0.0, 1.0))
    r = z / A
    cov = torch.stack([torch.stack([torch.ones(()), r]), torch.stack([r, torch.ones(())])])
    pyro.factor("chol", 0.0 * torch.linalg.cholesky(cov).sum())


@pytest.mark.parametrize(
    "model, reason, jit, compiled",
    [
        (_raises_outside, "ValueError: Expected value argument", False, False),
        # reads float(z): jit must not bake one branch in, so it runs eagerly
        (_raises_outside, "ValueError: Expected value argument", True, False),
        (_nan_gradient_outside, "the gradient is not finite", False, False),
        (_cholesky_fails_outside, "linalg.cholesky", False, False),
        (_cholesky_fails_outside, "linalg.cholesky", True, True),
    ],
    ids=["raises", "raises-jit-falls-back", "nan-gradient", "cholesky", "cholesky-compiled"],
)
def test_points_where_the_model_fails_are_rejections_and_sampling_goes_on(model, reason, jit, compiled):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = pgen.sample(model, None, chains=2, warmup=200, draws=800, seed=0, progress=False, jit=jit)
    assert run.config["compiled"] is compiled
    if jit and not compiled:
        assert any("reads the values of its latent variables" in str(w.message) for w in caught)
    z = run.draws_of("z")
    assert np.all(np.isfinite(z)) and np.all(np.abs(z) <= A)
    # the sampler saw the target restricted to |z| <= A: a truncated standard normal
    ess = float(run.summary.loc["z", "ess_bulk"])
    assert ess > 200
    assert abs(z.mean()) < 4 * TRUNCATED_SD / math.sqrt(ess)
    assert abs(z.std() - TRUNCATED_SD) < 4 * TRUNCATED_SD / math.sqrt(2 * ess)
    assert not run.partial
    assert any(reason in why for why in run.rejections), run.rejections
    assert run.divergences > 0  # the rejected proposals are counted as divergences
    assert any("rejected as divergences" in str(w.message) for w in caught)


def test_rejections_do_not_depend_on_numbers_in_the_message():
    run = pgen.sample(
        _raises_outside, None, chains=1, warmup=100, draws=200, seed=1, progress=False, warn=False
    )
    assert len(run.rejections) == 1  # one reason, whatever the value in the message was
    assert sum(run.rejections.values()) > 1


def test_a_model_that_fails_at_every_point_names_its_error():
    def not_differentiable(x):  # works in a plain trace, fails once z needs a gradient
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        pyro.factor("f", float(np.log1p(z.numpy() ** 2)))

    with pytest.raises(ValueError, match=r"starting point.*RuntimeError: Can't call numpy\(\)"):
        pgen.sample(not_differentiable, None, chains=1, warmup=10, draws=10, progress=False)

    def never_positive_definite(x):
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        pyro.factor("f", torch.linalg.cholesky(-torch.eye(2) * z.exp()).sum())

    with pytest.raises(ValueError, match="failed at each of 10 draws from its prior.*linalg.cholesky"):
        pgen.sample(never_positive_definite, None, chains=1, warmup=10, draws=10, progress=False)


# --------------------------------------------------------------------------- mass matrix


def test_the_metric_stays_finite_and_positive_definite():
    previous = Metric(np.array([2.0, 3.0]))
    good = np.array([[1.0, 0.5], [0.5, 2.0]])
    metric, note = metric_from_covariance(good, previous)
    assert note is None and metric.dense
    np.testing.assert_allclose(metric.inverse_mass, good)

    for bad in (np.array([[np.nan, 0.0], [0.0, 1.0]]), np.array([[1e40, 0.0], [0.0, 1.0]])):
        metric, note = metric_from_covariance(bad, previous)
        assert metric is previous and "previous metric is kept" in note
    metric, note = metric_from_covariance(np.array([0.0, 1.0]), previous)
    assert metric is previous and "not all positive" in note

    indefinite = np.array([[1.0, 2.0], [2.0, 1.0]])
    metric, note = metric_from_covariance(indefinite, previous)
    assert not metric.dense and "diagonal" in note
    np.testing.assert_allclose(metric.inverse_mass, [1.0, 1.0])
    p = np.array([1e3, -1e3])
    assert np.isfinite(metric.kinetic(p))


# --------------------------------------------------------------------------- partial runs


def _chain_seeds(seed, chains):
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(chains)]


def _failing_in_chain(bad_seed, error, after=0):
    """A normal model that raises ``error`` in the chain run with ``bad_seed`` (pgen seeds
    torch with the chain's seed), after ``after`` evaluations of that chain."""
    calls = {"n": 0}

    def model():
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        if torch.initial_seed() == bad_seed:
            calls["n"] += 1
            if calls["n"] > after:
                raise error
        return z

    return model


@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "parallel"])
def test_a_failing_chain_keeps_the_chains_that_finished(parallel):
    if parallel and sys.platform == "win32":
        pytest.skip("fork")
    seeds = _chain_seeds(0, 3)
    model = _failing_in_chain(seeds[1], MemoryError("out of memory in chain 2"), after=50)
    with pytest.warns(RuntimeWarning, match="partial"):
        run = pgen.sample(
            model, chains=3, warmup=100, draws=200, seed=0, progress=False, parallel=parallel, jit=False
        )
    assert run.partial and run.chains == 2
    assert "1 of 3 chains failed; chain 2" in run.stop_reason and "MemoryError" in run.stop_reason
    assert run.samples["z"].shape == (2, 200)
    assert run.seeds == [seeds[0], seeds[2]]
    assert "PARTIAL" in repr(run)
    # the chains kept are the ones a full run draws
    full = pgen.sample(
        _failing_in_chain(-1, MemoryError()),
        chains=3,
        warmup=100,
        draws=200,
        seed=0,
        progress=False,
        warn=False,
        jit=False,
    )
    np.testing.assert_allclose(run.samples["z"][0], full.samples["z"][0])
    np.testing.assert_allclose(run.samples["z"][1], full.samples["z"][2])


def test_ctrl_c_returns_what_was_drawn():
    seeds = _chain_seeds(0, 3)
    model = _failing_in_chain(seeds[1], KeyboardInterrupt(), after=20)
    with pytest.warns(RuntimeWarning, match="partial"):
        run = pgen.sample(
            model, chains=3, warmup=50, draws=100, seed=0, progress=False, jit=False, parallel=False
        )
    assert run.partial and run.chains == 1 and "interrupted (Ctrl-C) during chain 2 of 3" in run.stop_reason
    assert run.samples["z"].shape == (1, 100)


def test_ctrl_c_before_any_chain_finished_is_still_ctrl_c():
    model = _failing_in_chain(_chain_seeds(0, 2)[0], KeyboardInterrupt(), after=20)
    with pytest.raises(KeyboardInterrupt, match="no chain had finished"):
        pgen.sample(model, chains=2, warmup=50, draws=100, seed=0, progress=False, jit=False, parallel=False)


# --------------------------------------------------------------------------- arguments


@pytest.fixture(scope="module")
def regression():
    x, y, _ = pgen.data.synthetic_regression(30, 2, seed=0)
    return LinearRegression(), x, y


def _short(**kw):
    return {"chains": 1, "warmup": 100, "draws": 100, "seed": 0, "progress": False, "warn": False, **kw}


@pytest.mark.parametrize(
    "name, pgen_name",
    [("num_samples", "draws"), ("warmup_steps", "warmup"), ("num_chains", "chains"), ("jit_compile", "jit")],
)
def test_pyro_option_names_are_answered_with_pgens(regression, name, pgen_name):
    m, x, y = regression
    with pytest.raises(TypeError, match=f"{name}= is pgen's {pgen_name}="):
        pgen.sample(m.model, x, y, **{name: 10})


def test_model_kwargs_reach_the_model_even_under_an_option_name():
    seen = {}

    def model(num_samples=None):
        seen["num_samples"] = num_samples
        pyro.sample("z", dist.Normal(0.0, 1.0))

    pgen.sample(model, model_kwargs={"num_samples": 7}, **_short(draws=5, warmup=5))
    assert seen["num_samples"] == 7
    with pytest.raises(TypeError, match="model_kwargs must be a dict"):
        pgen.sample(model, model_kwargs=[("num_samples", 7)], **_short())


def test_numpy_pandas_and_list_data_give_the_tensor_result(regression):
    pd = pytest.importorskip("pandas")
    m, x, y = regression
    reference = pgen.sample(m.model, x, y, **_short())
    forms = [
        (x.double().numpy(), y.numpy()),
        (pd.DataFrame(x.numpy()), pd.Series(y.numpy())),
        (x.tolist(), y.tolist()),
    ]
    for xs, ys in forms:
        run = pgen.sample(m.model, xs, ys, **_short())
        for site in ("bias", "weights"):
            np.testing.assert_allclose(run.samples[site], reference.samples[site], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda x: x.index_put((torch.tensor([3]), torch.tensor([1])), torch.tensor(float("nan"))),
            r"argument 1 after the model holds 1 non-finite.*\[3, 1\]",
        ),
        (lambda x: x[:0], "argument 1 after the model is empty"),
        (lambda x: x[:, 0], r"x must have shape \(N, D\).*reshape\(-1, 1\)"),
        (lambda x: x.long(), "covariates must be floating point"),
    ],
    ids=["nan", "empty", "one-dimensional", "integer"],
)
def test_bad_data_is_refused_naming_the_argument(regression, change, message):
    m, x, y = regression
    with pytest.raises((ValueError, TypeError), match=message):
        pgen.sample(m.model, change(x), y=None, **_short())


def test_y_of_the_wrong_length_is_refused(regression):
    m, x, y = regression
    with pytest.raises(ValueError, match=r"y must be a tensor of shape \(30,\)"):
        pgen.sample(m.model, x, y[:-1], **_short())


def test_compare_checks_the_models_arguments_before_anything_runs(regression):
    m, x, y = regression
    bad = x.clone()
    bad[0, 0] = float("inf")
    with pytest.raises(ValueError, match="non-finite"):
        pgen.compare(m.model, bad, y, methods=["meanfield"], reference="exact", progress=False)
    with pytest.raises(TypeError, match="num_chains= is pgen's chains="):
        pgen.compare(m.model, x, y, methods=["meanfield"], num_chains=2, progress=False)
    with pytest.raises(TypeError, match="num_samples= is pgen's draws="):
        pgen.compare(m.model, x, y, methods=["nuts"], reference_options={"num_samples": 10}, progress=False)
    with pytest.raises(ValueError, match="reference_options has unknown option"):
        pgen.compare(m.model, x, y, methods=["nuts"], reference_options={"chain": 2}, progress=False)
    with pytest.raises(ValueError, match=r"reference_options\['chains'\] must be an integer >= 1"):
        pgen.compare(m.model, x, y, methods=["nuts"], reference_options={"chains": 0}, progress=False)


def test_a_mass_matrix_that_went_bad_is_replaced_and_reported(monkeypatch):
    from pgen.inference.kernels import adaptation

    monkeypatch.setattr(adaptation.WelfordCovariance, "covariance", lambda self, **_: np.full((2, 2), np.nan))

    def model():
        pyro.sample("z", dist.MultivariateNormal(torch.zeros(2), torch.tensor([[1.0, 0.9], [0.9, 1.0]])))

    with pytest.warns(RuntimeWarning, match="mass-matrix adaptation fell back at warm-up step"):
        run = pgen.sample(model, chains=1, warmup=200, draws=400, seed=0, progress=False)
    z = run.samples["z"][0]
    assert np.all(np.isfinite(z))
    ess = float(run.summary["ess_bulk"].min())
    assert np.all(np.abs(z.mean(0)) < 4 / np.sqrt(ess))  # the identity metric still samples N(0, S)


def test_a_compiled_potential_keeps_the_models_linear_algebra_checks():
    """make_fx splits linalg.cholesky into a factorization and a check that returns
    nothing, which torch.jit.trace drops: the compiled potential must still fail where
    the model fails, not return a garbage factor of a matrix that is not positive
    definite."""
    from pgen.inference.potential import Potential

    def gp(x, y):
        lengthscale = pyro.sample("lengthscale", dist.LogNormal(0.0, 1.0))
        jitter = pyro.sample("jitter", dist.Normal(0.0, 1.0))  # a "noise" that may go negative
        cov = torch.exp(-0.5 * (x[:, None] - x[None, :]) ** 2 / lengthscale**2) + jitter * torch.eye(len(x))
        pyro.sample("y", dist.MultivariateNormal(torch.zeros(len(x)), covariance_matrix=cov), obs=y)

    x = torch.linspace(0.0, 1.0, 6)
    pot = Potential(gp, (x, torch.sin(3 * x)), jit=True)
    assert pot.compiled is not None
    good, bad = torch.tensor([0.0, 0.5]), torch.tensor([0.0, -2.0])  # jitter 0.5 and -2
    np.testing.assert_allclose(pot.value_and_grad(good)[0], pot._eager(good)[0], rtol=1e-4)
    with pytest.raises((ValueError, torch.linalg.LinAlgError)):  # Pyro's validation or the factorization
        pot._eager(bad)
    with pytest.raises(torch.linalg.LinAlgError, match="linalg.cholesky"):
        pot.value_and_grad(bad)
    u, g = pot.numpy_value_and_grad(bad.double().numpy())
    assert u == math.inf and any("linalg.cholesky" in why for why in pot.failures)


_SLOW_SECOND_CHAIN = """
import signal, sys, time, numpy as np, pyro, pyro.distributions as dist, torch, pgen
# Ctrl-C as in a terminal, even when the tests run as a background job (which starts
# with SIGINT ignored, and Python then keeps it ignored)
signal.signal(signal.SIGINT, signal.default_int_handler)
seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(0).spawn(2)]
calls = [0]
def model():
    z = pyro.sample("z", dist.Normal(0.0, 1.0))
    if torch.initial_seed() == seeds[1]:
        # the second chain is slow, and slower still once it has said so: Ctrl-C comes while
        # it runs even on a loaded machine (about 20 s of margin)
        time.sleep(0.01 if calls[0] < 300 else 0.05)
        calls[0] += 1
        if calls[0] == 300:  # by now the first chain (150 transitions, no sleep) is done
            print("SLOW", flush=True)
run = pgen.sample(model, chains=2, warmup=50, draws=100, seed=0, progress=False, jit=False,
                  parallel=sys.argv[1] == "parallel", warn=False)
print("RESULT", run.partial, run.chains, run.samples["z"].shape, run.stop_reason, flush=True)
"""


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
def test_a_real_ctrl_c_returns_the_finished_chains(mode):
    import os
    import signal
    import subprocess
    import time

    process = subprocess.Popen(
        [sys.executable, "-c", _SLOW_SECOND_CHAIN, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    deadline = time.monotonic() + 120
    while process.stdout.readline().strip() != "SLOW":
        assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()[-2000:]
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches every process of the group
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err[-2000:]
    assert "RESULT True 1 (1, 100) interrupted (Ctrl-C)" in out, out + err[-2000:]


def test_masked_observations_are_left_out_of_the_pointwise_log_likelihood():
    # Pyro's way to leave observations out (poutine.mask, as in its forecasting and
    # missing-data examples): they contribute nothing to the density, and must not
    # count in the pointwise log-likelihood (loo/waic) either.
    from pgen.inference.guides import make_guide

    y = torch.tensor([0.5, -1.0, 2.0, 100.0])  # the last is a masked-out placeholder
    keep = torch.tensor([True, True, True, False])

    def model(y):
        mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        with pyro.plate("n", len(y)), poutine.mask(mask=keep):
            pyro.sample("y", dist.Normal(mu, 1.0), obs=y)

    r = pgen.sample(model, y, chains=1, warmup=50, draws=50, seed=0, progress=False, warn=False)
    ll = r.inference_data.log_likelihood["y"].values[0]
    mu = r.draws_of("mu")
    expected = dist.Normal(torch.as_tensor(mu)[:, None], 1.0).log_prob(y[:3]).numpy()
    np.testing.assert_allclose(ll[:, :3], expected, rtol=1e-5)
    np.testing.assert_array_equal(ll[:, 3], 0.0)
    fit = pgen.fit(model, make_guide("meanfield", model), None, model_args=(y,), steps=5, progress=False)
    vi_ll = fit.posterior(num_draws=20).inference_data.log_likelihood["y"].values[0]
    np.testing.assert_array_equal(vi_ll[:, 3], 0.0)
    assert np.all(vi_ll[:, :3] < 0)
