import warnings

import arviz as az
import numpy as np
import pytest

from pgen.eval import diagnostics as d


def _chains(seed=0):
    """Four AR(1) chains of 400 draws with three parameters: one well mixed, one slow,
    one whose second chain is shifted (R-hat should flag it)."""
    rng = np.random.default_rng(seed)
    x = np.empty((4, 400, 3))
    for j, phi in enumerate((0.1, 0.95, 0.5)):
        e = rng.normal(size=(4, 400))
        for t in range(400):
            x[:, t, j] = (phi * x[:, t - 1, j] if t else 0) + e[:, t]
    x[1, :, 2] += 1.0
    return x


def test_rhat_and_ess_match_arviz():
    x = _chains()
    for j in range(3):
        assert d.rhat(x[..., j]) == pytest.approx(float(az.rhat(x[..., j])), rel=1e-9)
        assert d.ess_bulk(x[..., j]) == pytest.approx(float(az.ess(x[..., j], method="bulk")), rel=1e-9)
        assert d.ess_tail(x[..., j]) == pytest.approx(float(az.ess(x[..., j], method="tail")), rel=1e-9)
    # vectorized over trailing dimensions
    np.testing.assert_allclose(d.ess_bulk(x), [d.ess_bulk(x[..., j]) for j in range(3)])


def test_rhat_flags_disagreeing_chains_and_ess_sees_autocorrelation():
    x = _chains()
    r = d.rhat(x)
    assert r[0] < 1.01 and r[2] > 1.05
    ess = d.ess_bulk(x)
    assert ess[1] < 0.2 * ess[0]  # phi=0.95: ESS per draw about (1-phi)/(1+phi) = 0.026


def test_ess_of_independent_draws_is_near_their_number():
    rng = np.random.default_rng(1)
    ess = [d.ess_bulk(rng.normal(size=(4, 500))) for _ in range(20)]
    assert abs(np.mean(ess) - 2000) < 150


def test_psis_matches_arviz_and_reads_the_tail():
    rng = np.random.default_rng(0)
    for lw in (0.3 * rng.normal(size=4000), rng.standard_t(2, size=3000)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            smoothed, k = az.psislw(lw.copy())
        result = d.psis(lw)
        assert result.khat == pytest.approx(float(k), abs=1e-6)
        np.testing.assert_allclose(result.log_weights, smoothed, atol=1e-6)
    # Gaussian log-ratios with a small sd: light-tailed weights; Cauchy log-ratios: a few
    # draws carry all the weight
    assert d.psis(0.3 * rng.normal(size=4000)).khat < 0.5
    assert d.psis(3.0 * rng.standard_t(1, size=4000)).khat > 0.7


def test_psis_edge_cases():
    assert d.psis(np.zeros(100)).khat == float("-inf")  # q proportional to p
    with pytest.raises(ValueError, match="non-finite"):
        d.psis(np.array([0.0] * 20 + [np.nan]))
    with pytest.raises(ValueError, match="at least 10"):
        d.psis(np.zeros(5))
    with pytest.raises(ValueError, match="chain, draw"):
        d.rhat(np.zeros(10))
