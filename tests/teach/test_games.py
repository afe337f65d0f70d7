"""The GAN game, computed: the optimal discriminator and 2 JSD - log 4 by quadrature,
a critic trained by pgen's adversarial objective against D*, and gradient steps on xy."""

import math

import numpy as np
import pytest

from pgen.teach.games import (
    bilinear_game,
    gaussian_mixture_logpdf,
    optimal_discriminator,
    trained_discriminator,
)

GRID_1D = np.linspace(-12, 12, 4801)[:, None]


def _grid_2d(extent=8.0, size=401):
    g = np.linspace(-extent, extent, size)
    xx, yy = np.meshgrid(g, g, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], 1), (g[1] - g[0]) ** 2


@pytest.mark.parametrize("dim", [1, 2])
def test_the_value_at_the_optimal_discriminator_is_two_jsd_minus_log_4(dim):
    """V(D*) = 2 JSD(p, q) - log 4 (Goodfellow et al. 2014, prop. 1 and thm. 1), each side
    by its own quadrature; on the grid they differ by (mass_p + mass_q - 2) log 2."""
    if dim == 1:
        points, cell = GRID_1D, float(GRID_1D[1, 0] - GRID_1D[0, 0])
        lp = gaussian_mixture_logpdf(points, [[-2.0], [2.0]], [0.7, 0.7])
        lq = gaussian_mixture_logpdf(points, [[0.5]], [1.5])
    else:
        points, cell = _grid_2d()
        lp = gaussian_mixture_logpdf(points, [[-2.0, 0.0], [2.0, 1.0]], [0.8, 0.8])
        lq = gaussian_mixture_logpdf(points, [[0.0, 0.0]], [1.5])
    r = optimal_discriminator(lp, lq, cell)
    assert abs(r.mass_p - 1) < 1e-6 and abs(r.mass_q - 1) < 1e-6
    assert r.value == pytest.approx(2 * r.jsd - math.log(4), abs=1e-6)
    assert 0 < r.jsd < math.log(2)
    same = optimal_discriminator(lp, lp, cell)
    assert same.value == pytest.approx(-math.log(4), abs=1e-6) and abs(same.jsd) < 1e-9
    np.testing.assert_allclose(same.d_star, 0.5)
    far = [[-6.0] + [0.0] * (dim - 1)], [[6.0] + [0.0] * (dim - 1)]  # disjoint supports, in effect
    apart = optimal_discriminator(
        gaussian_mixture_logpdf(points, far[0], [0.5]), gaussian_mixture_logpdf(points, far[1], [0.5]), cell
    )
    assert apart.jsd == pytest.approx(math.log(2), abs=1e-4)  # saturated (the grid cuts 3e-5 of mass)


def test_a_critic_trained_by_the_adversarial_objective_approaches_d_star():
    """The minimax critic loss is a logistic regression of p against q; its minimizer is
    D*. Measured: mean |D - D*| 0.015 under (p + q)/2 with 10,000 draws of each."""
    rng = np.random.default_rng(0)
    real = np.concatenate([rng.normal(-2, 0.7, 5000), rng.normal(2, 0.7, 5000)])[:, None]
    fake = rng.normal(0.5, 1.5, 10000)[:, None]
    x = np.linspace(-6, 6, 1201)[:, None]
    lp = gaussian_mixture_logpdf(x, [[-2.0], [2.0]], [0.7, 0.7])
    lq = gaussian_mixture_logpdf(x, [[0.5]], [1.5])
    d_star = optimal_discriminator(lp, lq, float(x[1, 0] - x[0, 0])).d_star
    learned = trained_discriminator(real, fake, x, steps=2000, seed=0)
    w = np.exp(lp) + np.exp(lq)
    assert (np.abs(learned - d_star) * w).sum() / w.sum() < 0.04


def test_simultaneous_steps_spiral_out_and_alternating_ones_circle():
    """On min_x max_y xy with step eta: simultaneous steps scale the distance to (0, 0)
    by sqrt(1 + eta^2) per step; alternating steps keep x^2 + y^2 - eta x y fixed."""
    eta, steps = 0.1, 200
    g = bilinear_game(lr=eta, steps=steps, start=(1.0, 1.0))
    np.testing.assert_allclose(g.simultaneous, g.simultaneous_exact, atol=1e-10)
    np.testing.assert_allclose(g.alternating, g.alternating_exact, atol=1e-10)
    radius = np.linalg.norm(g.simultaneous, axis=1)
    np.testing.assert_allclose(radius, math.sqrt(2) * (1 + eta**2) ** (np.arange(steps + 1) / 2), rtol=1e-10)
    x, y = g.alternating[:, 0], g.alternating[:, 1]
    np.testing.assert_allclose(x**2 + y**2 - eta * x * y, 2 - eta, rtol=1e-10)
    assert np.linalg.norm(g.alternating, axis=1).min() > 1.2  # it never approaches the equilibrium
