"""The RBM: log Z by enumeration against brute force and against AIS; PCD training on
bars and stripes improves the exact log-likelihood; bad input."""

import itertools
import math

import pyro
import pytest
import torch

import pgen
from pgen.models.rbm import RBM, ais_log_partition, exact_log_partition, raise_log_likelihood


def _random_rbm(visible, hidden, scale, seed):
    torch.manual_seed(seed)
    rbm = RBM(visible, hidden, init_scale=scale)
    with torch.no_grad():
        rbm.visible_bias.normal_(0, 0.5)
        rbm.hidden_bias.normal_(0, 0.5)
    return rbm


def test_exact_log_partition_is_the_sum_over_every_joint_state():
    for visible, hidden in ((6, 5), (4, 7)):  # both enumeration branches
        rbm = _random_rbm(visible, hidden, 1.0, 0)
        v = torch.tensor(list(itertools.product([0.0, 1.0], repeat=visible)))
        h = torch.tensor(list(itertools.product([0.0, 1.0], repeat=hidden)))
        vv, hh = v.repeat_interleave(len(h), 0), h.repeat(len(v), 1)
        with torch.no_grad():
            brute = float(torch.logsumexp(-rbm.energy(vv, hh).double(), 0))
            # and -F(v) is the log of the sum over h
            torch.testing.assert_close(
                -rbm.free_energy(v), torch.logsumexp(-rbm.energy(vv, hh).reshape(len(v), len(h)), 1)
            )
        assert exact_log_partition(rbm) == pytest.approx(brute, abs=1e-5)  # brute: float32 energies


def test_ais_estimate_agrees_with_the_exact_log_partition():
    rbm = _random_rbm(12, 8, 1.0, 1)
    exact = exact_log_partition(rbm)
    est = ais_log_partition(rbm, num_chains=200, num_betas=2000, seed=0, trace_every=500)
    # within 4 AIS standard errors (plus the delta method's own slack)
    assert abs(est["log_z"] - exact) < 4 * est["log_z_se"] + 0.02, (est["log_z"], exact, est["log_z_se"])
    assert est["log_z_se"] < 0.1
    assert len(est["trace"]) == 4 and est["trace"][-1][1] == pytest.approx(est["log_z"])
    # too few intermediate distributions underestimate log Z (Jensen): a weaker check
    rough = ais_log_partition(rbm, num_chains=200, num_betas=4, seed=0)
    assert rough["log_z"] < exact


def test_reverse_ais_is_conservative_and_converges_to_the_exact_log_likelihood():
    rbm = _random_rbm(12, 8, 1.0, 0)
    bits = ((torch.arange(2**12)[:, None] >> torch.arange(12)) & 1).float()
    with torch.no_grad():
        lp = rbm.log_prob(bits, exact_log_partition(rbm))
    idx = torch.multinomial(lp.exp(), 300, replacement=True, generator=torch.Generator().manual_seed(1))
    exact = float(lp[idx].mean())
    rough = raise_log_likelihood(rbm, bits[idx], num_betas=4, seed=0)
    fine = raise_log_likelihood(rbm, bits[idx], num_betas=2000, seed=0)
    # measured: -6.81 with 4 betas, -5.387 with 2,000, exact -5.381. The reverse chains
    # differ per example, so compare the mean with the exact mean over the same examples
    assert float(rough.mean()) < exact - 0.3
    gap = fine - lp[idx]  # per-example error of the estimate; its mean is <= 0 up to noise
    se = float(gap.std()) / math.sqrt(300)
    assert exact - 0.05 < float(fine.mean()) < exact + 4 * se, (float(fine.mean()), exact, se)


def _bars_and_stripes(side=4):
    rows = []
    for bits in itertools.product([0.0, 1.0], repeat=side):
        img = torch.tensor(bits)[:, None].expand(side, side)
        rows += [img.reshape(-1), img.T.reshape(-1)]
    return torch.unique(torch.stack(rows), dim=0)  # 2 * 2^4 - 2 = 30 distinct patterns


def test_pcd_training_raises_the_exact_log_likelihood_on_bars_and_stripes():
    x = _bars_and_stripes()
    assert len(x) == 30
    torch.manual_seed(0)
    rbm = RBM(16, 10)

    def mean_ll():
        with torch.no_grad():
            return float(rbm.log_prob(x, exact_log_partition(rbm)).mean())

    before = mean_ll()
    assert before == pytest.approx(-16 * math.log(2), abs=0.1)  # nearly uniform at the start
    pcd = rbm.contrastive_divergence(method="pcd", k=1, num_chains=100)
    result = pgen.fit(
        rbm.model,
        rbm.guide,
        x.repeat(20, 1),
        objective=pcd,
        epochs=300,
        batch_size=30,
        lr=0.005,
        progress=False,
    )
    after = mean_ll()
    # the best possible is log(1/30) = -3.40; uniform is -11.09
    assert after > -6.0, (before, after)
    assert result.num_steps == 300 * 20 and pcd.chains.shape == (100, 16)
    cd = RBM(16, 10)
    objective = cd.contrastive_divergence(method="cd", k=1)
    pgen.fit(
        cd.model,
        cd.guide,
        x.repeat(20, 1),
        objective=objective,
        epochs=50,
        batch_size=30,
        lr=0.01,
        progress=False,
    )
    with torch.no_grad():
        assert float(cd.log_prob(x, exact_log_partition(cd)).mean()) > before + 1.0
    # samples through pgen.sample's Gibbs kernel: probabilities in [0, 1], one per chain
    s = rbm.sample(8, sweeps=50, seed=0)
    assert s.shape == (8, 16) and float(s.min()) >= 0 and float(s.max()) <= 1


def test_bad_input_gets_clear_errors():
    rbm = RBM(4, 3)
    fit = lambda x: pgen.fit(rbm.model, rbm.guide, x, objective=rbm.contrastive_divergence(), steps=1)  # noqa: E731
    with pytest.raises(ValueError, match="binary 0/1 values"):
        fit(torch.full((5, 4), 0.5))
    with pytest.raises(ValueError, match="has 5 columns; this RBM has visible=4"):
        fit(torch.zeros(5, 5))
    with pytest.raises(ValueError, match="method"):
        rbm.contrastive_divergence(method="gibbs")
    with pytest.raises(ValueError, match="init='noise' applies to persistent chains"):
        rbm.contrastive_divergence(method="cd", init="noise")
    noise = rbm.contrastive_divergence(init="noise", num_chains=7)
    with pyro.get_param_store().scope():
        noise.loss(rbm.model, rbm.guide, torch.zeros(5, 4))  # sets the chains up from random bits
    assert noise.chains.shape == (7, 4) and float(noise.chains.sum()) > 0
    with pytest.raises(ValueError, match="enumerates 2\\*\\*30 states"):
        exact_log_partition(RBM(30, 40))
    with pytest.raises(ValueError, match="hidden"):
        RBM(4, 0)
    assert isinstance(pgen.models.RBM(3, 2), RBM)
