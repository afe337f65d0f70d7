"""The Boltzmann machine: exact log Z, and maximum likelihood by PCD reaching the
moment-matching fixed point on data drawn from a known machine."""

import math

import pytest
import torch

import pgen
from pgen.models.ebm import BoltzmannMachine


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
    history = bm.fit(y, epochs=60, batch_size=200, lr=0.005, num_chains=500, progress=False)
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
    assert history["moment_gap"][-1] < history["moment_gap"][0]
    # Gibbs through pgen.sample on the fitted machine reproduces its exact means
    run = pgen.sample(
        bm.model,
        4000,
        kernel=bm.gibbs_kernel(4000),
        chains=1,
        warmup=30,
        draws=1,
        progress=False,
        warn=False,
        log_likelihood=False,
    )
    mean = torch.as_tensor(run.samples["y"][:, -1]).mean(0).float()
    with torch.no_grad():
        exact_mean = (q[:, None] * states).sum(0)
    torch.testing.assert_close(mean, exact_mean, atol=4 / math.sqrt(4000), rtol=0)


def test_bad_input_gets_clear_errors():
    bm = BoltzmannMachine(3)
    with pytest.raises(ValueError, match="spins -1/1"):
        bm.fit(torch.zeros(4, 3), progress=False)
    with pytest.raises(ValueError, match=r"shape \(examples, 3\)"):
        bm.fit(torch.ones(4, 2), progress=False)
    with pytest.raises(ValueError, match="enumerates 2\\*\\*21"):
        BoltzmannMachine(21).exact_log_partition()
