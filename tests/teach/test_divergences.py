import math

import pytest
import torch

from pgen.teach import DIVERGENCES, GaussianMixture1D, divergence, fit_gaussian


def test_divergences_against_closed_forms():
    single = GaussianMixture1D(weights=(1.0,), means=(0.5,), sds=(1.5,))
    # between two Gaussians: KL(N(a, s^2) || N(b, t^2)) = log(t/s) + (s^2 + (a-b)^2) / (2 t^2) - 1/2
    kl = math.log(1.5 / 0.8) + (0.8**2 + 1.2**2) / (2 * 1.5**2) - 0.5
    assert float(divergence("reverse_kl", single, -0.7, 0.8)) == pytest.approx(kl, rel=1e-6)
    for name in DIVERGENCES:
        assert float(divergence(name, single, 0.5, 1.5)) == pytest.approx(0.0, abs=1e-8)
    assert float(divergence("js", single, 40.0, 0.5)) == pytest.approx(math.log(2), rel=1e-6)  # disjoint


def test_forward_kl_matches_moments_and_reverse_kl_picks_a_mode():
    target = GaussianMixture1D()
    mean, var = target.moments()
    fwd = fit_gaussian("forward_kl", target)
    assert fwd.mu == pytest.approx(mean, abs=1e-4) and fwd.sigma == pytest.approx(math.sqrt(var), rel=1e-4)
    rev = fit_gaussian("reverse_kl", target)
    assert rev.mu == pytest.approx(2.0, abs=0.01) and rev.sigma == pytest.approx(0.6, rel=0.02)
    # on one of two well-separated, equal modes q = that component, so KL(q || p) -> log 2
    assert rev.value == pytest.approx(math.log(2), abs=0.005)
    left = fit_gaussian("reverse_kl", target, init=(-1.0, 0.5))
    assert left.mu == pytest.approx(-2.0, abs=0.01)  # the other mode, from the other side
    fits = {name: fit_gaussian(name, target, init=(0.0, 2.0)) for name in DIVERGENCES}
    fits["reverse_kl"] = rev
    for name in DIVERGENCES:  # each optimum is the best of the four under its own divergence
        own = float(divergence(name, target, fits[name].mu, fits[name].sigma))
        others = [float(divergence(name, target, f.mu, f.sigma)) for f in fits.values()]
        assert own <= min(others) + 1e-6, name
    # JS has a second, worse local minimum on a mode
    js_mode = fit_gaussian("js", target, init=(1.0, 0.5))
    assert js_mode.mu == pytest.approx(2.0, abs=0.05) and js_mode.value > fits["js"].value + 0.03
    with pytest.raises(ValueError, match="divergence must be one of"):
        divergence("tv", target, 0.0, 1.0)
    assert torch.isfinite(divergence("mmd", target, 0.0, 1.0, bandwidth=0.3))
