"""Score matching: the sliced objective's mean is the exact one, the denoising objective
differs from the explicit one by a constant, annealed Langevin recovers mixture weights
that plain Langevin misses, and a model trained by pgen.fit puts samples on a 2-D toy."""

import math

import pytest
import torch

import pgen
from pgen.inference.kernels import AnnealedLangevin, Langevin
from pgen.models.score import (
    ScoreModel,
    denoising_score_matching,
    exact_score_matching,
    geometric_sigmas,
    sliced_score_matching,
)

QUIET = dict(progress=False, warn=False, log_likelihood=False)


def test_sliced_score_matching_averages_to_the_exact_objective():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    x = torch.randn(20, 3)
    exact = exact_score_matching(net, x).detach()
    reps = 4000
    xs = x.repeat(reps, 1)
    sliced = sliced_score_matching(net, xs, torch.randn_like(xs)).detach().reshape(reps, 20)
    se = sliced.std(0) / math.sqrt(reps)
    assert torch.all((sliced.mean(0) - exact).abs() < 4 * se + 1e-6)


def test_denoising_score_matching_is_the_explicit_objective_plus_a_constant():
    # data N(0, s^2), perturbed N(0, s^2 + sigma^2); scores s_theta(x) = -theta x. The explicit
    # objective is 1/2 [theta^2 (s^2+sigma^2) - 2 theta + 1/(s^2+sigma^2)] and the denoising one
    # differs by 1/2 (1/sigma^2 - 1/(s^2+sigma^2)) whatever theta is (Vincent 2011)
    s, sigma, n = 1.5, 0.5, 400_000
    g = torch.Generator().manual_seed(0)
    x, z = s * torch.randn(n, 1, generator=g), torch.randn(n, 1, generator=g)
    v = s**2 + sigma**2
    constant = 0.5 * (1 / sigma**2 - 1 / v)
    for theta in (0.1, 1 / v, 1.2):
        dsm = denoising_score_matching(lambda u, _s, t=theta: -t * u, x, sigma, z)
        explicit = 0.5 * (theta**2 * v - 2 * theta + 1 / v)
        se = float(dsm.std()) / math.sqrt(n)
        assert float(dsm.mean()) - explicit == pytest.approx(constant, abs=4 * se)


def _mixture_score(x, sigma, weights=(0.2, 0.8), means=(-5.0, 5.0), sd=1.0):
    # the score of the mixture convolved with N(0, sigma^2): components N(m, sd^2 + sigma^2)
    var = sd**2 + sigma**2
    logs = torch.stack([math.log(w) - (x - m) ** 2 / (2 * var) for w, m in zip(weights, means, strict=True)])
    resp = torch.softmax(logs, 0)
    return sum(r * (m - x) / var for r, m in zip(resp, means, strict=True))


def test_annealed_langevin_recovers_mixture_weights_that_plain_langevin_misses():
    n = 4000
    init = {"x": (torch.rand(n, 1, generator=torch.Generator().manual_seed(0)) - 0.5) * 16}
    sigmas = geometric_sigmas(20.0, 0.1, 10)
    kernel = AnnealedLangevin(
        _mixture_score, sigmas, init=init["x"], steps_per_level=100, step_size=2e-3, num_chains=n
    )
    total = len(sigmas) * 100
    run = pgen.sample(lambda: None, kernel=kernel, chains=1, warmup=total - 1, draws=1, seed=0, **QUIET)
    left = float((torch.as_tensor(run.samples["x"][:, -1]) < 0).double().mean())
    se = math.sqrt(0.2 * 0.8 / n)
    assert left == pytest.approx(0.2, abs=4 * se)

    # plain Langevin with the data score, same number of steps: the chains stay in the basin
    # they start in, so about half end on the left
    def energy(state):  # -log of the mixture, up to a constant
        x = state["x"]
        logs = torch.stack([math.log(w) - (x - m) ** 2 / 2 for w, m in ((0.2, -5.0), (0.8, 5.0))])
        return -torch.logsumexp(logs, 0).sum(-1)

    plain = Langevin(potential_fn=energy, init=init, step_size=0.05, num_chains=n)
    run = pgen.sample(lambda: None, kernel=plain, chains=1, warmup=total - 1, draws=1, seed=0, **QUIET)
    left_plain = float((torch.as_tensor(run.samples["x"][:, -1]) < 0).double().mean())
    assert abs(left_plain - 0.5) < 0.05 and left_plain - 0.2 > 20 * se


def test_a_score_model_trained_by_pgen_fit_samples_the_moons():
    x, _ = pgen.data.load("moons", n=2000, seed=0)
    torch.manual_seed(0)
    m = ScoreModel(2, hidden=(128, 128), sigma_max=1.0, sigma_min=0.02)

    def distance(samples):
        return float(torch.cdist(samples, x).min(1).values.mean())

    before = distance(m.sample(500, steps_per_level=50, step_size=1e-4, seed=0))
    result = pgen.fit(m.model, m.guide, x, steps=2000, lr=3e-3, progress=False)
    after = distance(m.sample(500, steps_per_level=50, step_size=1e-4, seed=0))
    assert before > 0.1 > after, (before, after)
    assert result.history["train_elbo"][-1] > result.history["train_elbo"][0]  # minus the loss rose


def test_bad_input_gets_clear_errors():
    with pytest.raises(ValueError, match="matching"):
        ScoreModel(2, matching="ratio")
    with pytest.raises(ValueError, match="decreasing"):
        ScoreModel(2, sigmas=(0.1, 1.0))
    with pytest.raises(ValueError, match="decreasing"):
        AnnealedLangevin(_mixture_score, [1.0, 2.0], init=torch.zeros(2, 1), num_chains=2)
    with pytest.raises(ValueError, match="step_size"):
        AnnealedLangevin(_mixture_score, [1.0], init=torch.zeros(2, 1), step_size=-1.0, num_chains=2)
    with pytest.raises(ValueError, match="num_chains"):
        AnnealedLangevin(_mixture_score, [1.0], init=torch.zeros(2, 1), num_chains=0)
