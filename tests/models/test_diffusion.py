import math

import pytest
import torch
from torch import nn

import pgen
from pgen.inference.elbo import make_objective
from pgen.models import Diffusion
from pgen.models.diffusion import cosine_betas, linear_betas, q_sample, schedule_constants


@pytest.fixture
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def test_schedules_and_the_posterior_coefficients():
    for betas in (linear_betas(1000), cosine_betas(1000), linear_betas(10)):
        c = schedule_constants(betas)
        assert c["alpha_bar"][-1] < 1e-3  # q(x_T | x_0) is close to N(0, I)
        assert torch.all(c["alpha_bar"][1:] < c["alpha_bar"][:-1])
    c = schedule_constants(linear_betas(50))
    t = 20
    # Bayes' rule by hand for one coordinate: q(x_{t-1}|x_t,x_0) ∝ q(x_t|x_{t-1}) q(x_{t-1}|x_0)
    a, ab_prev = c["alpha"][t], c["alpha_bar"][t - 1]
    precision = a / c["beta"][t] + 1 / (1 - ab_prev)
    assert float(c["sigma2"][t]) == pytest.approx(float(1 / precision), rel=1e-10)
    assert float(c["gamma"][t]) == pytest.approx(float(a.sqrt() / c["beta"][t] / precision), rel=1e-10)
    assert float(c["delta"][t]) == pytest.approx(float(ab_prev.sqrt() / (1 - ab_prev) / precision), rel=1e-10)
    with pytest.raises(ValueError, match="beta_start <= beta_end < 1"):
        linear_betas(100, beta_start=0.5, beta_end=0.1)


def test_the_forward_marginal_is_the_composition_of_steps():
    c = schedule_constants(linear_betas(40))
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor([0.8, -0.3], dtype=torch.float64)
    n, t = 200000, 25
    x = x0.expand(n, 2).clone()
    for s in range(1, t + 1):
        x = (1 - c["beta"][s]).sqrt() * x + c["beta"][s].sqrt() * torch.randn(
            n, 2, generator=g, dtype=torch.float64
        )
    mean, var = c["alpha_bar"][t].sqrt() * x0, 1 - c["alpha_bar"][t]
    # sample mean within 5 se, sample variance within 5 se (var * sqrt(2/n))
    assert torch.all((x.mean(0) - mean).abs() < 5 * math.sqrt(var / n))
    assert torch.all((x.var(0) - var).abs() < 5 * var * math.sqrt(2 / n))
    direct = q_sample(x0, c["alpha_bar"][t], torch.randn(n, 2, generator=g, dtype=torch.float64))
    assert torch.all((direct.var(0) - var).abs() < 5 * var * math.sqrt(2 / n))


def _engine_loss(m, x, calls, copies=50, seed=0):
    """Mean and standard error of the engine's negative ELBO of ``x`` (summed over its
    rows): ``calls`` estimates, each averaged over ``copies`` copies of x in one batch."""
    torch.manual_seed(seed)
    objective = make_objective("meanfield")
    batch = x.repeat(copies, 1)
    with torch.no_grad():
        values = torch.tensor([objective.loss(m.model, m.guide, batch) / copies for _ in range(calls)])
    return float(values.mean()), float(values.std() / math.sqrt(calls))


class _GaussianDenoiser(nn.Module):
    """The exact E[x_0 | x_t] for data x_0 ~ N(mu, s^2 I)."""

    def __init__(self, alpha_bar, mu, s):
        super().__init__()
        self.alpha_bar, self.mu, self.s2 = alpha_bar, mu, s**2

    def forward(self, xt, t):
        ab = self.alpha_bar[t][:, None]
        return self.mu + ab.sqrt() * self.s2 / (ab * self.s2 + 1 - ab) * (xt - ab.sqrt() * self.mu)


def test_the_engine_elbo_of_the_pair_is_the_notes_decomposition(float64):
    # a denoiser near the truth keeps the Monte Carlo error small, so the check is sharp:
    # data N(0.3, 0.5^2) and its exact posterior-mean denoiser (x0 prediction)
    x = 0.3 + 0.5 * torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    full = Diffusion(3, timesteps=5, schedule="cosine", prediction="x0", data_range=None, estimator="full")
    full.denoiser = _GaussianDenoiser(full.alpha_bar, 0.3, 0.5)
    loss, se = _engine_loss(full, x, 60)
    terms = full.elbo_terms(x, num_samples=4000)
    direct = -float(terms["elbo"].sum())
    # the direct terms use independent draws per term (lower variance than one path):
    # allow 4 standard errors of the engine's mean, doubled
    assert loss == pytest.approx(direct, abs=4 * math.sqrt(2) * se)
    # the same denoiser, one timestep per example: unbiased for the same bound
    sampled = Diffusion(3, timesteps=5, schedule="cosine", prediction="x0", data_range=None)
    sampled.denoiser = full.denoiser
    loss_s, se_s = _engine_loss(sampled, x, 60, copies=200, seed=1)
    assert loss_s == pytest.approx(loss, abs=4 * math.hypot(se, se_s))
    # and with t drawn from the weighted proposal, each term weighted 1 / pi_t
    weighted = Diffusion(
        3, timesteps=5, schedule="cosine", prediction="x0", data_range=None, timestep_proposal="weighted"
    )
    weighted.denoiser = full.denoiser
    assert float(weighted.t_prob.sum()) == pytest.approx(1.0) and float(weighted.t_prob[:2].sum()) == 0
    assert not torch.allclose(weighted.t_prob[2:], sampled.t_prob[2:])  # not uniform
    loss_w, se_w = _engine_loss(weighted, x, 60, copies=200, seed=2)
    assert loss_w == pytest.approx(loss, abs=4 * math.hypot(se, se_w))
    # and the prior-matching term is KL(N(sqrt(ab_T) x0, 1 - ab_T) || N(0, 1)) per coordinate
    ab = float(full.alpha_bar[-1])
    kl = 0.5 * ((1 - ab) + ab * x**2 - 1 - math.log(1 - ab)).sum(-1)
    torch.testing.assert_close(terms["prior"], kl)


class _WithVariance(nn.Module):
    """The exact Gaussian denoiser plus a fixed variance output v_t (learned-variance layout)."""

    def __init__(self, exact, v):
        super().__init__()
        self.exact, self.v = exact, v

    def forward(self, xt, t):
        return torch.cat([self.exact(xt, t), self.v[t][:, None].expand_as(xt)], -1)


def test_the_reverse_variance_options_and_the_optimal_variance(float64):
    # Gaussian data N(mu, s^2) with the exact posterior mean: the expected KL at t between
    # q(x_{t-1}|x_t,x_0) = N(m_q, s~^2) and N(m_p, S) is 1/2 [s~^2/S + E(m_q-m_p)^2/S - 1 -
    # log(s~^2/S)], where E(m_q-m_p)^2 = delta^2 Var(x0|x_t); it is least at
    # S* = s~^2 + delta^2 Var(x0|x_t), where it equals 1/2 log(S*/s~^2) per coordinate.
    mu, s, dim, steps = 0.3, 0.5, 3, 6
    # the expectation is over the data too: many x_0, one x_t each
    x = mu + s * torch.randn(4000, dim, generator=torch.Generator().manual_seed(1))
    kw = dict(timesteps=steps, prediction="x0", data_range=None)
    models = {v: Diffusion(dim, variance=v, **kw) for v in ("posterior", "beta", "learned")}
    c = schedule_constants(linear_betas(steps))
    ab, delta, post, beta = c["alpha_bar"], c["delta"], c["sigma2"], c["beta"]
    var_x0 = s**2 * (1 - ab) / (ab * s**2 + 1 - ab)
    best = post + delta**2 * var_x0
    v_star = (best.log() - post.log()) / (beta.log() - post.log())
    v_star[:2] = 0.0  # unused at t = 0, 1
    exact = _GaussianDenoiser(models["posterior"].alpha_bar, mu, s)
    for name, m in models.items():
        m.denoiser = _WithVariance(exact, v_star) if name == "learned" else exact
    terms = {name: m.elbo_terms(x, seed=0)["denoising"] for name, m in models.items()}
    t = torch.arange(2, steps + 1)
    for name, variance in (("posterior", post[t]), ("beta", beta[t]), ("learned", best[t])):
        r = post[t] / variance
        expected = dim * 0.5 * (r + (best[t] - post[t]) / variance - 1 - r.log())
        # each entry is a mean over 12,000 squared normals (relative error about 1.3%)
        torch.testing.assert_close(terms[name].mean(1), expected, rtol=0.05, atol=1e-4)
    assert torch.all(terms["learned"].mean(1) <= terms["posterior"].mean(1))
    assert torch.all(terms["learned"].mean(1) <= terms["beta"].mean(1))
    # v = 0 and v = 1 are the two fixed choices
    ones = _WithVariance(exact, torch.ones(steps + 1))
    models["learned"].denoiser = ones
    torch.testing.assert_close(
        models["learned"].elbo_terms(x[:10], seed=3)["denoising"],
        models["beta"].elbo_terms(x[:10], seed=3)["denoising"],
    )
    with pytest.raises(ValueError, match="variance='learned' needs loss='elbo'"):
        Diffusion(dim, variance="learned", loss="simple")
    with pytest.raises(ValueError, match="variance"):
        Diffusion(dim, variance="fixed")


def test_ddim_with_every_step_follows_the_probability_flow_ode(float64):
    mu, s = 0.3, 0.5
    m = Diffusion(2, timesteps=1000, prediction="x0", hidden=(4,), data_range=None)
    m.denoiser = _GaussianDenoiser(m.alpha_bar, mu, s)
    x_t = torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
    ab_t = m.alpha_bar[-1]
    # in xbar = x / sqrt(ab), sbar^2 = (1 - ab) / ab the probability-flow ODE is
    # dxbar/dsbar = sbar (xbar - mu) / (s^2 + sbar^2), so (xbar - mu) grows as sqrt(s^2 + sbar^2):
    # at sbar = 0, x_0 = mu + (xbar_T - mu) s / sqrt(s^2 + sbar_T^2)
    xbar, sbar2 = x_t / ab_t.sqrt(), (1 - ab_t) / ab_t
    exact = mu + (xbar - mu) * s / torch.sqrt(s**2 + sbar2)
    errors = {}
    for steps in (10, 100, 1000):
        out = m.sample(500, sampler="ddim", steps=steps, x_t=x_t, clip=False)
        errors[steps] = float((out - exact).abs().max())
    # DDIM is a first-order discretization of the ODE: the error shrinks as 1/steps
    # (measured 0.44, 0.045, 0.0048 for 10, 100, 1000 steps)
    assert errors[1000] < 0.01
    assert 5 < errors[100] / errors[1000] < 20 and 5 < errors[10] / errors[100] < 20
    again = m.sample(500, sampler="ddim", steps=1000, x_t=x_t, clip=False, seed=5)
    torch.testing.assert_close(again, m.sample(500, sampler="ddim", steps=1000, x_t=x_t, clip=False))  # eta=0


def test_a_trained_model_puts_samples_on_a_2d_toy():
    x, _ = pgen.data.load("moons", n=2000, seed=0)
    torch.manual_seed(0)
    m = Diffusion(2, timesteps=100, hidden=(128, 128), data_range=None, loss="simple")

    def distance(samples):  # mean distance from a sample to its nearest data point
        return float(torch.cdist(samples, x).min(1).values.mean())

    before = distance(m.sample(500, seed=0))
    pgen.fit(m.model, m.guide, x, steps=2500, lr=3e-3, progress=False, objective="meanfield")
    after = distance(m.sample(500, seed=0))
    # threshold 0.1: the untrained model's samples are a blob over the moons (0.21)
    assert before > 0.1 > after, (before, after)


def test_sampling_options_and_bad_input():
    torch.manual_seed(0)
    m = Diffusion(16, timesteps=20, hidden=(16,), num_classes=3)
    known = torch.rand(2, 16)
    mask = torch.zeros(16, dtype=torch.bool)
    mask[:8] = True
    out = m.sample(2, y=torch.tensor([0, 2]), guidance=2.0, known=known, mask=mask, seed=0)
    torch.testing.assert_close(out[:, :8], known[:, :8])
    torch.testing.assert_close(m.sample(2, seed=3), m.sample(2, seed=3))
    with pytest.raises(ValueError, match="at most timesteps=20"):
        m.sample(2, sampler="ddim", steps=50)
    with pytest.raises(ValueError, match="use sampler='ddim'"):
        m.sample(2, steps=5)
    with pytest.raises(ValueError, match="class-conditional"):
        Diffusion(4, timesteps=5, hidden=(8,)).sample(2, guidance=1.0)
    with pytest.raises(ValueError, match="prediction"):
        Diffusion(4, prediction="score")
    with pytest.raises(ValueError, match="needs image_shape"):
        Diffusion(64, denoiser="unet")


def test_mixed_precision_runs_the_unet_in_bf16_and_keeps_the_elbo_in_float32():
    """bf16 autocast of the denoiser only: its output comes back in float32, close to the
    full-precision output (bf16 keeps 8 bits of mantissa, relative error ~2^-8 per op),
    and the bound, gradients and parameters stay float32."""
    torch.manual_seed(0)
    full = Diffusion(64, timesteps=50, image_shape=(8, 8), denoiser="unet")
    mixed = Diffusion(64, timesteps=50, image_shape=(8, 8), denoiser="unet", mixed_precision=True)
    mixed.load_state_dict(full.state_dict())
    x = torch.rand(16, 64)
    t = torch.randint(1, 51, (16,))
    out_full, out_mixed = full._net(x, t, None), mixed._net(x, t, None)
    assert out_mixed.dtype == torch.float32
    assert not torch.equal(out_full, out_mixed)  # the convolutions did run in bf16
    rel = (out_mixed - out_full).norm() / out_full.norm()
    assert rel < 0.05, rel
    fit = pgen.fit(mixed.model, mixed.guide, x, steps=3, batch_size=16, objective="meanfield", progress=False)
    assert all(math.isfinite(v) for v in fit.losses)
    assert all(p.dtype == torch.float32 for p in mixed.parameters())
    with pytest.raises(TypeError, match="mixed_precision must be True or False"):
        Diffusion(64, image_shape=(8, 8), mixed_precision="bf16")


def test_the_unet_denoises_colour_images_stored_as_channel_planes():
    from pgen.models.diffusion.model import _data_args

    x = torch.rand(6, 3 * 8 * 8)
    assert _data_args(x, None)["image_shape"] == [3, 8, 8]  # CIFAR-10's layout, read off the data
    assert _data_args(torch.rand(6, 64), None)["image_shape"] == [8, 8]
    m = Diffusion(192, timesteps=20, image_shape=(3, 8, 8), denoiser="unet", variance="learned")
    assert m.denoiser.inp.in_channels == 3
    t = torch.randint(1, 21, (6,))
    out = m._net(x, t, None)
    assert out.shape == (6, 2 * 192)  # eps and the variance output, each 3 x 8 x 8
    # channel c of the input at pixel (i, j) only reaches the outputs through convolutions:
    # the output keeps the plane layout, so a change in the blue plane changes its own output
    x2 = x.clone()
    x2[:, 128:] += 0.5
    assert not torch.allclose(m._net(x2, t, None)[:, 128:192], out[:, 128:192])
    fit = pgen.fit(m.model, m.guide, x, steps=2, batch_size=6, objective="meanfield", progress=False)
    assert all(math.isfinite(v) for v in fit.losses)
    with pytest.raises(ValueError, match="holding data_dim = 192 values"):
        Diffusion(192, image_shape=(3, 8, 4))
