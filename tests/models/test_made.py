import itertools

import pytest
import torch

import pgen
from pgen.models import MADE, AutoregressiveVAE
from pgen.models.made import AutoregressiveBernoulli


def _all_binary(d):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=d)))


def test_made_output_d_sees_only_earlier_inputs():
    torch.manual_seed(0)
    made = MADE(6, (10, 12), context_dim=2)
    x, c = torch.randn(6), torch.randn(2)
    jac = torch.autograd.functional.jacobian(lambda v: made(v, c), x)  # [output, input]
    nonzero = jac.abs() > 0
    assert not nonzero.triu().any()  # output d never depends on x_j, j >= d
    assert nonzero.tril(-1).sum() == 15  # and (with random weights) on every x_j, j < d
    assert (torch.autograd.functional.jacobian(lambda v: made(x, v), c).abs() > 0).all()


def test_autoregressive_bernoulli_is_normalized_and_samples_from_itself():
    torch.manual_seed(1)
    made = MADE(5, (8,), context_dim=3)
    c = torch.randn(2, 3)
    d = AutoregressiveBernoulli(made, c)
    with torch.no_grad():
        log_p = d.log_prob(_all_binary(5)[:, None, :])  # (32, 2): every sequence, both contexts
    torch.testing.assert_close(log_p.exp().sum(0), torch.ones(2, dtype=log_p.dtype), rtol=0, atol=1e-6)
    draws = AutoregressiveBernoulli(made, c[:1]).sample((20000,))[:, 0]  # (20000, 5)
    codes = (draws * 2 ** torch.arange(4, -1, -1)).sum(-1).long()
    freq = torch.bincount(codes, minlength=32).double() / 20000
    p = log_p[:, 0].double().exp()
    # each frequency is binomial: sd sqrt(p(1-p)/n); 5 sd over 32 cells
    assert ((freq - p).abs() <= 5 * (p * (1 - p) / 20000).sqrt() + 1e-4).all()


def test_made_rejects_too_narrow_layers_and_vae_rejects_other_likelihoods():
    with pytest.raises(ValueError, match="at least dim - 1 = 9"):
        MADE(10, (8,))
    with pytest.raises(ValueError, match="likelihood"):
        AutoregressiveVAE(10, likelihood="gaussian")


def test_arvae_log_likelihood_matches_enumeration_for_a_one_dimensional_latent():
    # log p(x) = log int p(z) p(x|z) dz: quadrature over z vs the importance-sampled estimate
    torch.manual_seed(2)
    m = AutoregressiveVAE(4, latent_dim=1, hidden=(8,), made_hidden=(6,))
    x = _all_binary(4)
    z = torch.linspace(-8, 8, 4001)
    with torch.no_grad():
        log_px_z = m.decoder.distribution(z[:, None, None].expand(-1, 16, 1)).log_prob(x)  # (Z, 16)
    log_pz = torch.distributions.Normal(0.0, 1.0).log_prob(z)
    exact = torch.logsumexp(log_px_z + log_pz[:, None], 0) + torch.log(z[1] - z[0])
    torch.testing.assert_close(exact.exp().sum(), torch.tensor(1.0), rtol=0, atol=1e-4)
    ll, se = pgen.eval.log_likelihood(m.model, m.guide, x, num_samples=4000, seed=0, return_stderr=True)
    assert ((ll - exact).abs() <= 5 * se + 1e-3).all()
