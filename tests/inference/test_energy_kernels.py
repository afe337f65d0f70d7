"""Langevin/MALA and the Gibbs kernels against exact answers, through pgen.sample."""

import itertools
import math

import pyro
import pyro.distributions as dist
import pytest
import torch

import pgen
from pgen.inference.kernels import (
    Langevin,
    PairwiseGibbs,
    RBMGibbs,
    checkerboard,
    langevin_proposal,
    mala_log_accept,
)

QUIET = dict(progress=False, warn=False, log_likelihood=False)


def _none():  # energy kernels given a potential need no model; the engine traces this
    return None


def test_mala_acceptance_satisfies_detailed_balance():
    # pi(x) q(y|x) a(x->y) = pi(y) q(x|y) a(y->x) for E(x) = |x|^4 / 4 (not Gaussian)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(50, 3, generator=g), torch.randn(50, 3, generator=g)
    eps = 0.3

    def energy(z):
        return (z**2).sum(-1) ** 2 / 4

    def grad(z):
        return (z**2).sum(-1, keepdim=True) * z

    def log_q(b, a):  # N(b; a - eps grad(a), 2 eps I)
        return -((b - a + eps * grad(a)) ** 2).sum(-1) / (4 * eps)

    a_xy = mala_log_accept(x, y, energy(x), energy(y), grad(x), grad(y), eps)
    a_yx = mala_log_accept(y, x, energy(y), energy(x), grad(y), grad(x), eps)
    lhs = -energy(x) + log_q(y, x) + a_xy
    rhs = -energy(y) + log_q(x, y) + a_yx
    torch.testing.assert_close(lhs, rhs)
    assert torch.all(a_xy <= 0) and torch.any(a_xy < 0)
    # and the proposal is x - eps grad + sqrt(2 eps) noise
    noise = torch.randn(50, 3, generator=g)
    torch.testing.assert_close(
        langevin_proposal(x, grad(x), eps, noise), x - eps * grad(x) + math.sqrt(2 * eps) * noise
    )


def _gaussian_potential(state):
    return 0.5 * (state["x"] ** 2).sum(-1)  # N(0, 1) per coordinate


def test_ula_has_its_exact_bias_and_mala_removes_it():
    # ULA on N(0, 1) with step e is the AR(1) x' = (1 - e) x + sqrt(2e) xi, whose stationary
    # variance is 1 / (1 - e/2); MALA's stationary law is N(0, 1) exactly
    n, eps = 4000, 0.5
    init = {"x": torch.zeros(n, 2)}
    results = {}
    for metropolis in (False, True):
        kernel = Langevin(
            potential_fn=_gaussian_potential,
            init=init,
            step_size=eps,
            metropolis=metropolis,
            adapt_step_size=False,
            num_chains=n,
        )
        r = pgen.sample(_none, kernel=kernel, chains=1, warmup=100, draws=5, seed=1, **QUIET)
        assert r.samples["x"].shape == (n, 5, 2) and r.chains == n
        results[metropolis] = r.samples["x"][:, -1].reshape(-1)  # independent chains, last draw
    se = math.sqrt(2 / (2 * n))  # of a variance estimate from 2n normal values, relative
    ula, mala = results[False].var(), results[True].var()
    assert ula == pytest.approx(1 / (1 - eps / 2), rel=4 * se)
    assert mala == pytest.approx(1.0, rel=4 * se)
    assert ula > 1 + 8 * se  # the bias is far outside the noise


def test_mala_adapts_its_step_size_on_a_pyro_model():
    # a correlated 2-D Gaussian written as a Pyro model with a plate of chains
    cov = torch.tensor([[1.0, 0.8], [0.8, 1.0]])
    mean = torch.tensor([1.0, -2.0])

    def model(n):
        with pyro.plate("chains", n):
            pyro.sample("x", dist.MultivariateNormal(mean, cov))

    n = 2000
    kernel = Langevin(model, step_size=1e-3, metropolis=True, num_chains=n)
    r = pgen.sample(model, n, kernel=kernel, chains=1, warmup=300, draws=20, seed=0, **QUIET)
    last = r.samples["x"][:, -1]
    se = math.sqrt(1 / n)
    assert torch.allclose(torch.as_tensor(last.mean(0)), mean.double(), atol=4 * se)
    emp = torch.as_tensor(last).T.cov()
    assert torch.allclose(emp, cov.double(), atol=5 * math.sqrt(2 / n))
    # the step size moved from 1e-3 towards acceptance 0.574
    accept = r.sample_stats["accept_prob"]
    assert kernel.step_size > 0.05 and 0.45 < accept.mean() < 0.7


def _enumerate_spins(w, b):
    d = len(b)
    states = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=d)))
    logp = 0.5 * ((states @ w) * states).sum(-1) + states @ b
    p = torch.softmax(logp, 0)
    return (p[:, None] * states).sum(0), (p[:, None, None] * states[:, :, None] * states[:, None, :]).sum(0)


def _moments(y):
    y = torch.as_tensor(y)
    return y.mean(0), (y[:, :, None] * y[:, None, :]).mean(0)


def test_gibbs_on_a_boltzmann_machine_matches_enumeration():
    g = torch.Generator().manual_seed(3)
    d = 8
    w = 0.4 * torch.randn(d, d, generator=g)
    w = torch.triu(w, 1) + torch.triu(w, 1).T
    b = 0.3 * torch.randn(d, generator=g)
    mean, second = _enumerate_spins(w, b)
    n = 4000
    r = pgen.sample(
        _none, kernel=PairwiseGibbs(w, b, num_chains=n), chains=1, warmup=50, draws=2, seed=0, **QUIET
    )
    m, s = _moments(r.samples["y"][:, -1])
    tol = 4 / math.sqrt(n)  # spins are bounded by 1: se <= 1/sqrt(n)
    torch.testing.assert_close(m.float(), mean, atol=tol, rtol=0)
    torch.testing.assert_close(s.float(), second, atol=tol, rtol=0)


def test_checkerboard_gibbs_on_an_ising_grid_matches_enumeration():
    rows, cols, coupling = 3, 4, 0.35
    d = rows * cols
    w = torch.zeros(d, d)
    for r_ in range(rows):
        for c in range(cols):
            i = r_ * cols + c
            if c + 1 < cols:
                w[i, i + 1] = w[i + 1, i] = coupling
            if r_ + 1 < rows:
                w[i, i + cols] = w[i + cols, i] = coupling
    b = torch.full((d,), 0.1)
    mean, second = _enumerate_spins(w, b)
    n = 4000
    kernel = PairwiseGibbs(w, b, blocks=checkerboard(rows, cols), num_chains=n)
    r = pgen.sample(_none, kernel=kernel, chains=1, warmup=50, draws=2, seed=0, **QUIET)
    m, s = _moments(r.samples["y"][:, -1])
    tol = 4 / math.sqrt(n)
    torch.testing.assert_close(m.float(), mean, atol=tol, rtol=0)
    torch.testing.assert_close(s.float(), second, atol=tol, rtol=0)
    with pytest.raises(ValueError, match="block 0 is not an independent set"):
        PairwiseGibbs(w, b, blocks=[torch.arange(d)])


def test_rbm_block_gibbs_matches_the_exact_marginal():
    g = torch.Generator().manual_seed(1)
    nv, nh = 5, 3
    w, bv, bh = (
        torch.randn(nv, nh, generator=g),
        0.5 * torch.randn(nv, generator=g),
        torch.randn(nh, generator=g),
    )
    v = torch.tensor(list(itertools.product([0.0, 1.0], repeat=nv)))
    # log p(v) = b^T v + sum_j softplus(c_j + v^T W_j) + const
    p = torch.softmax(v @ bv + torch.nn.functional.softplus(v @ w + bh).sum(-1), 0)
    mean, second = (p[:, None] * v).sum(0), (p[:, None, None] * v[:, :, None] * v[:, None, :]).sum(0)
    n = 4000
    r = pgen.sample(
        _none, kernel=RBMGibbs(w, bv, bh, num_chains=n), chains=1, warmup=50, draws=2, seed=0, **QUIET
    )
    m, s = _moments(r.samples["v"][:, -1])
    tol = 4 * 0.5 / math.sqrt(n)  # 0/1 units: se <= 1/(2 sqrt(n))
    torch.testing.assert_close(m.float(), mean, atol=tol, rtol=0)
    torch.testing.assert_close(s.float(), second, atol=tol, rtol=0)


def test_bad_input_gets_clear_errors():
    init = {"x": torch.zeros(3, 2)}
    with pytest.raises(ValueError, match="step_size"):
        Langevin(potential_fn=_gaussian_potential, init=init, step_size=0.0, num_chains=3)
    with pytest.raises(ValueError, match="num_chains"):
        Langevin(potential_fn=_gaussian_potential, init=init, num_chains=0)
    with pytest.raises(ValueError, match="adapt_step_size needs metropolis=True"):
        Langevin(potential_fn=_gaussian_potential, init=init, adapt_step_size=True)
    with pytest.raises(ValueError, match="exactly one of model"):
        Langevin(step_size=0.1)
    with pytest.raises(ValueError, match=r"init\['x'\] must have num_chains=4 rows"):
        pgen.sample(
            _none, kernel=Langevin(potential_fn=_gaussian_potential, init=init, num_chains=4), **QUIET
        )
    with pytest.raises(ValueError, match="symmetric with a zero diagonal"):
        PairwiseGibbs(torch.eye(3), torch.zeros(3))
    with pytest.raises(ValueError, match="weight must be"):
        RBMGibbs(torch.zeros(4, 3), torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="0/1 values"):
        pgen.sample(
            _none,
            kernel=RBMGibbs(torch.zeros(4, 3), torch.zeros(4), torch.zeros(3), init=torch.full((1, 4), 0.5)),
            **QUIET,
        )
