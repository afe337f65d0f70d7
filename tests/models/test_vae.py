"""The VAE: its ELBO terms, helpers and argument checks."""

import pytest
import torch

import pgen
from pgen.inference import MeanFieldELBO
from pgen.models.vae import VAE, lerp, slerp


def _vae(**kw):
    torch.manual_seed(0)
    kw.setdefault("latent_dim", 3)
    kw.setdefault("hidden", (16,))
    return VAE(10, **kw)


def _binary(n=8):
    torch.manual_seed(1)
    return torch.bernoulli(torch.full((n, 10), 0.4))


def test_beta_weights_exactly_the_kl_term():
    x = _binary()
    plain, beta = _vae(), _vae(beta=2.5)
    beta.load_state_dict(plain.state_dict())
    loc, scale = plain.encode(x)
    kl = 0.5 * (loc**2 + scale**2 - 1 - 2 * scale.log()).sum()  # closed form vs N(0, I)
    torch.manual_seed(3)
    loss_1 = MeanFieldELBO().loss(plain.model, plain.guide, x)
    torch.manual_seed(3)
    loss_b = MeanFieldELBO().loss(beta.model, beta.guide, x)
    assert loss_b - loss_1 == pytest.approx(1.5 * kl.item(), rel=1e-4)


def test_gaussian_sigma_is_learned_or_fixed():
    learned, fixed = _vae(likelihood="gaussian"), _vae(likelihood="gaussian", sigma=0.2)
    assert "decoder.raw_sigma" in dict(learned.named_parameters())
    assert learned.decoder.sigma().item() == pytest.approx(1.0, abs=1e-3)
    assert "decoder.raw_sigma" not in dict(fixed.named_parameters())
    assert (fixed.decoder.distribution(torch.zeros(1, 3)).base_dist.scale == 0.2).all()


def test_helpers_have_the_right_shapes_and_ranges():
    vae, x = _vae(), _binary()
    loc, scale = vae.encode(x)
    assert loc.shape == scale.shape == (8, 3) and (scale > 0).all()
    recon = vae.reconstruct(x)
    assert recon.shape == x.shape and 0 <= recon.min() and recon.max() <= 1
    state = torch.get_rng_state()
    a, b = vae.sample(5, seed=4), vae.sample(5, seed=4)
    assert torch.equal(a, b) and a.shape == (5, 10)
    assert torch.equal(torch.get_rng_state(), state)  # a seeded sample leaves the global stream
    draws = vae.sample(200, seed=0, mean=False)
    assert set(draws.unique().tolist()) <= {0.0, 1.0}


def test_interpolation_ends_at_the_two_reconstructions():
    vae, x = _vae(), _binary()
    for method in ("linear", "spherical"):
        path = vae.interpolate(x[0], x[1], steps=6, method=method)
        assert path.shape == (6, 10)
        torch.testing.assert_close(path[0], vae.reconstruct(x[0]))
        torch.testing.assert_close(path[-1], vae.reconstruct(x[1]))
    assert vae.interpolate(x[:3], x[3:6], steps=4).shape == (3, 4, 10)


def test_slerp_keeps_the_norm_and_moves_at_constant_angular_speed():
    torch.manual_seed(0)
    a = torch.randn(5)
    b = torch.randn(5)
    b = b / b.norm() * a.norm()
    t = torch.linspace(0, 1, 9)[:, None]
    path = slerp(a, b, t)
    torch.testing.assert_close(path.norm(dim=1), a.norm().expand(9))
    angles = torch.arccos(torch.nn.functional.cosine_similarity(path, a.expand(9, 5), dim=1).clamp(-1, 1))
    torch.testing.assert_close(angles, angles[-1] * t.squeeze(1), atol=1e-4, rtol=0)
    torch.testing.assert_close(slerp(a, 2 * a, t), lerp(a, 2 * a, t))  # parallel: linear


def test_manifold_puts_z1_right_and_z2_up():
    vae = _vae(latent_dim=2)
    grid = vae.manifold(n=4, extent=2.0)
    g = torch.linspace(-2, 2, 4)
    assert grid.shape == (4, 4, 10)
    torch.testing.assert_close(grid[0, 3], vae.decode(torch.tensor([g[3], g[3]])))
    torch.testing.assert_close(grid[3, 0], vae.decode(torch.tensor([g[0], g[0]])))
    with pytest.raises(ValueError, match="manifold needs latent_dim=2"):
        _vae().manifold()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(latent_dim=0), "latent_dim must be an integer >= 1"),
        (dict(hidden=(16, 0)), r"hidden\[1\] must be an integer >= 1"),
        (dict(likelihood="poisson"), "likelihood must be one of 'bernoulli', 'gaussian'"),
        (dict(sigma=0.5), "applies to likelihood='gaussian' only"),
        (dict(likelihood="gaussian", sigma=-1.0), "sigma must be > 0"),
        (dict(beta=0.0), "beta must be > 0"),
        (dict(activation="sigmoid"), "activation must be one of"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        _vae(**kwargs)


def test_bad_calls():
    vae, x = _vae(), _binary()
    with pytest.raises(ValueError, match="the guide q\\(z\\|x\\) needs x"):
        vae.guide(None)
    with pytest.raises(ValueError, match="n=3 but x has 8 examples"):
        vae.model(x, n=3)
    with pytest.raises(ValueError, match=r"x has shape \(8, 9\); expected \(\.\.\., 10\)"):
        vae.encode(x[:, :9])
    with pytest.raises(ValueError, match="must be binary"):
        vae.validate_data(x * 0.5)
    with pytest.raises(ValueError, match="z has shape"):
        vae.decode(torch.zeros(2, 5))
    assert pgen.models.registry.get("vae").data_args(x, None) == {"data_dim": 10}
    names = ", ".join(sorted(pgen.models.registry.names()))
    with pytest.raises(ValueError, match=f"unknown model 'glow'; registered models: {names}$"):
        pgen.models.registry.get("glow")


def test_traversal_varies_one_latent_coordinate_per_row():
    torch.manual_seed(0)
    vae = VAE(12, latent_dim=3, hidden=(8,))
    x = torch.bernoulli(torch.full((12,), 0.5))
    values = torch.tensor([-2.0, 0.0, 2.0])
    out = vae.traverse(x, dims=[0, 2], values=values)
    assert out.shape == (2, 3, 12)
    base = vae.encode(x)[0]
    z = base.repeat(3, 1)
    z[:, 2] = values
    torch.testing.assert_close(out[1], vae.decode(z))
    torch.testing.assert_close(vae.traverse(dims=[1], values=[0.0])[0, 0], vae.decode(torch.zeros(3)))
    with pytest.raises(ValueError, match=r"dims must be latent coordinates in \[0, 3\)"):
        vae.traverse(x, dims=[3])
    with pytest.raises(ValueError, match="one example"):
        vae.traverse(torch.zeros(2, 12))


def test_rate_plus_distortion_is_minus_the_elbo():
    torch.manual_seed(0)
    vae = VAE(12, latent_dim=3, hidden=(8,))
    x = torch.bernoulli(torch.full((40, 12), 0.3))
    rate, distortion = vae.rate_distortion(x, num_samples=400)
    elbo = pgen.eval.elbo(vae.model, vae.guide, x, num_samples=400)
    # the ELBO averages 400 draws per example: its Monte Carlo error is far below 0.05 nats
    assert -(rate + distortion) == pytest.approx(elbo.mean().item(), abs=0.05)
    loc, scale = vae.encode(x)
    kl = torch.distributions.kl_divergence(
        torch.distributions.Normal(loc, scale), torch.distributions.Normal(0.0, 1.0)
    ).sum(-1)
    assert rate == pytest.approx(kl.mean().item(), rel=1e-5)
