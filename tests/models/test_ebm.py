"""The Boltzmann machine: exact log Z, and maximum likelihood by PCD reaching the
moment-matching fixed point on data drawn from a known machine."""

import math

import pytest
import torch

import pgen
from pgen.inference.kernels import Langevin
from pgen.inference.mcmc import final_states
from pgen.models.ebm import BoltzmannMachine, EnergyMLP, ProductOfExperts


def _machine(d, seed, scale=0.5):
    torch.manual_seed(seed)
    bm = BoltzmannMachine(d)
    with torch.no_grad():
        bm.upper.normal_(0, scale)
        bm.bias.normal_(0, 0.3)
    return bm


def test_exact_log_partition_and_log_prob_normalize():
    bm = _machine(6, 0)
    with torch.no_grad():
        p = bm.log_prob(bm.states()).exp()
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-5)
    w = bm.weight.detach()
    assert torch.equal(w, w.T) and float(w.diagonal().abs().max()) == 0


def test_pcd_reaches_the_moment_matching_fixed_point():
    # data: 4000 exact draws from a known 7-spin machine
    true = _machine(7, 1)
    states = true.states()
    with torch.no_grad():
        p = true.log_prob(states).exp()
    idx = torch.multinomial(p, 4000, replacement=True, generator=torch.Generator().manual_seed(0))
    y = states[idx]
    torch.manual_seed(0)
    bm = BoltzmannMachine(7)
    cd = bm.contrastive_divergence(k=1, num_chains=500)
    result = pgen.fit(
        bm.model, bm.guide, y, objective=cd, epochs=60, batch_size=200, lr=0.005, progress=False
    )
    with torch.no_grad():
        q = bm.log_prob(states).exp()
        model_moments = (q[:, None, None] * states[:, :, None] * states[:, None, :]).sum(0)
        data_moments = y.T @ y / len(y)
        # at the maximum-likelihood fit the model's exact moments equal the data's;
        # the chains' Monte Carlo noise (500 chains) and Adam's steps leave about 0.01
        assert float((model_moments - data_moments).abs().max()) < 0.04
        # and the fit is as good as the truth on its own data (within sampling noise)
        ll_fit, ll_true = float(bm.log_prob(y).mean()), float(true.log_prob(y).mean())
        assert ll_fit > ll_true - 0.02, (ll_fit, ll_true)
    # the contrastive gap (mean log p~ of the data minus that of the chains) shrinks to 0
    gap = result.history["train_elbo"]
    assert abs(sum(gap[-10:]) / 10) < 0.1 < gap[0], gap[:3]
    # Gibbs through pgen.sample on the fitted machine reproduces its exact means
    mean = final_states(bm.gibbs_kernel(4000), "y", 31, model=bm.model, n=4000).mean(0).float()
    with torch.no_grad():
        exact_mean = (q[:, None] * states).sum(0)
    torch.testing.assert_close(mean, exact_mean, atol=4 / math.sqrt(4000), rtol=0)


def test_bad_input_gets_clear_errors():
    bm = BoltzmannMachine(3)
    fit = lambda y: pgen.fit(bm.model, bm.guide, y, objective=bm.contrastive_divergence(), steps=1)  # noqa: E731
    with pytest.raises(ValueError, match="spins -1/1"):
        fit(torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"shape \(examples, 3\)"):
        fit(torch.ones(4, 2))
    with pytest.raises(ValueError, match="enumerates 2\\*\\*21"):
        BoltzmannMachine(21).exact_log_partition()


def _nearest(samples, x):
    return float(torch.cdist(samples.float(), x.float()).min(1).values.mean())


def test_an_mlp_energy_trained_by_pcd_puts_langevin_samples_on_the_moons():
    x, _ = pgen.data.load("moons", n=2000, seed=0)
    torch.manual_seed(0)
    m = EnergyMLP(2, hidden=(64, 64))

    def draw():  # 200 ULA steps from uniform noise over [-2, 2]^2, through pgen.sample
        init = torch.rand(500, 2, generator=torch.Generator().manual_seed(0)) * 4 - 2
        return m.sample(500, steps=200, step_size=0.005, init=init, seed=0)

    before = _nearest(draw(), x)
    result = pgen.fit(m.model, m.guide, x, objective=m.contrastive_divergence(), steps=1500, progress=False)
    after = _nearest(draw(), x)
    # threshold 0.1: untrained chains wander over the wide base (about 1.2 from the data)
    assert before > 0.1 > after, (before, after)
    assert result.num_steps == 1500


def test_a_product_of_gaussian_experts_is_sampled_exactly_by_mala():
    # N(m1, S1) x N(m2, S2) is Gaussian with precision P1 + P2 and mean P^-1 (P1 m1 + P2 m2)
    m1, m2 = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 1.0])
    s1 = torch.tensor([[1.0, 0.6], [0.6, 1.0]])
    s2 = torch.tensor([[0.5, 0.0], [0.0, 2.0]])
    e1 = lambda x: -torch.distributions.MultivariateNormal(m1, s1).log_prob(x)  # noqa: E731
    e2 = lambda x: -torch.distributions.MultivariateNormal(m2, s2).log_prob(x)  # noqa: E731
    poe = ProductOfExperts(e1, e2)
    p1, p2 = torch.linalg.inv(s1), torch.linalg.inv(s2)
    cov = torch.linalg.inv(p1 + p2)
    mean = cov @ (p1 @ m1 + p2 @ m2)
    n = 4000
    kernel = Langevin(
        potential_fn=poe.potential,
        init={"x": torch.zeros(n, 2)},
        step_size=0.1,
        metropolis=True,
        num_chains=n,
    )
    last = final_states(kernel, "x", 201).float()  # 200 warm-up transitions and one draw
    sd = cov.diagonal().sqrt()
    torch.testing.assert_close(last.mean(0), mean, atol=float(4 * sd.max() / math.sqrt(n)), rtol=0)
    torch.testing.assert_close(last.T.cov(), cov, atol=float(5 * cov.abs().max() * math.sqrt(2 / n)), rtol=0)
    with pytest.raises(ValueError, match="callable experts"):
        ProductOfExperts()
