import math

import pytest
import torch

import pgen
from pgen.models import PPCA


@pytest.fixture(scope="module")
def ppca_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=g) @ torch.randn(5, 5, generator=g) * 0.5
    torch.manual_seed(0)
    return PPCA(5, 2), x


def test_log_evidence_is_elbo_plus_kl_to_the_posterior(ppca_data):
    p, x = ppca_data
    d = pgen.teach.elbo_decomposition(p.model, p.guide, x, num_samples=2000, exact=p, seed=1)
    # the closed-form and Monte Carlo KLs agree within the Monte Carlo error
    assert ((d.kl_mc - d.kl_analytic).abs() <= 4 * d.kl_mc_se + 1e-5).all()
    # ELBO = reconstruction - KL; log p(x) - ELBO = KL(q || p(z|x)) up to the reconstruction's MC error
    torch.testing.assert_close(d.elbo, d.reconstruction - d.kl_analytic)
    assert ((d.gap - d.kl_posterior).abs() <= 4 * d.reconstruction_se + 1e-4).all()
    assert (d.kl_posterior > 0).all() and d.summary()["gap"] > 0.1  # an untrained guide is far off
    # with the exact posterior as the guide the gap closes
    exact = pgen.teach.elbo_decomposition(p.model, p.exact_guide, x, num_samples=500, exact=p)
    assert exact.kl_posterior.abs().max() < 1e-4
    assert (exact.gap.abs() <= 4 * exact.reconstruction_se + 1e-4).all()


def test_iwae_bounds_rise_with_k_towards_the_evidence(ppca_data):
    p, x = ppca_data
    curve = pgen.teach.iwae_curve(p.model, p.guide, x[:60], ks=(1, 5, 50, 500), repeats=20, exact=p)
    b, se = curve.bounds, curve.stderr
    for lo, hi, s_lo, s_hi in zip(b, b[1:], se, se[1:], strict=False):
        assert hi >= lo - 3 * math.hypot(s_lo, s_hi)  # monotone in K within Monte Carlo error
    assert b[-1] <= curve.log_evidence + 3 * se[-1]  # a lower bound ...
    assert curve.log_evidence - b[-1] < 0.2 * (curve.log_evidence - b[0])  # ... that closes the gap
    elbo = pgen.teach.elbo_decomposition(p.model, p.guide, x[:60], num_samples=500).elbo.mean()
    assert b[0] == pytest.approx(float(elbo), abs=4 * se[0] + 0.02)  # L_1 is the ELBO


def test_the_terms_over_training_keep_the_identity():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(100, 4, generator=g) @ torch.randn(4, 4, generator=g)
    torch.manual_seed(0)
    p = PPCA(4, 1)
    h = pgen.teach.track_elbo_terms(p, x, rounds=3, steps=60, lr=0.03, num_samples=400, exact=True)
    assert h["step"] == [0, 60, 120, 180] and h["elbo"][-1] > h["elbo"][0]
    for elbo, kl, ev in zip(h["elbo"], h["kl_posterior"], h["log_evidence"], strict=True):
        assert elbo + kl == pytest.approx(ev, abs=0.05)


def test_a_vae_gets_a_closed_form_kl_and_bad_input_is_explained():
    vae = pgen.models.VAE(6, latent_dim=2, hidden=(4,))
    x = torch.bernoulli(torch.full((10, 6), 0.5))
    d = pgen.teach.elbo_decomposition(vae.model, vae.guide, x, num_samples=300)
    assert d.kl_analytic is not None and d.gap is None
    assert ((d.kl_mc - d.kl_analytic).abs() <= 4 * d.kl_mc_se + 1e-5).all()
    with pytest.raises(ValueError, match="num_samples must be an integer >= 2"):
        pgen.teach.elbo_decomposition(vae.model, vae.guide, x, num_samples=1)


def test_pgen_teach_draws_each_figure(tmp_path, capsys):
    from pgen.cli import main

    assert main(["teach", "all", "--out", str(tmp_path), "--quick"]) == 0
    for name in (
        "elbo_terms.png",
        "iwae.png",
        "gradient_variance.png",
        "mean_field.png",
        "score_matching.png",
        "gaussians.png",
        "divergences.png",
        "rate_distortion.png",
        "posterior_collapse.png",
        "planar_steps.png",
        "autoregressive_cost.png",
        "gan_game.png",
        "mode_collapse.png",
    ):
        assert (tmp_path / name).stat().st_size > 5000
    printed = capsys.readouterr().out
    assert "log p(x) - (ELBO + KL(q||p(z|x)))" in printed and "<= log Z" in printed
