"""Simulation-based calibration (issue 16): NUTS passes, a mean-field guide on a
correlated posterior fails visibly."""

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch

import pgen
from pgen.inference.calibrate import uniformity


def two_sums(n=10, y=None):
    """y_i ~ N(a + b, 1): the data fix a + b, so a and b are strongly anti-correlated
    (posterior sd of a about 0.72 where mean field gives 1/sqrt(11) = 0.30)."""
    a = pyro.sample("a", dist.Normal(0.0, 1.0))
    b = pyro.sample("b", dist.Normal(0.0, 1.0))
    with pyro.plate("n", n):
        pyro.sample("y", dist.Normal(a + b, 1.0), obs=y)


def test_uniformity_statistic():
    # 40 ranks in 0..19, each twice: 10 per bin of 4, chi-square 0, p-value 1
    stat, p = uniformity(np.repeat(np.arange(20), 2), 19, 4)
    assert stat == 0 and p == pytest.approx(1.0)
    stat, p = uniformity(np.zeros(40, dtype=int), 19, 4)  # all in the first bin
    assert stat == pytest.approx(3 * 10**2 / 10 + 30**2 / 10) and p < 1e-10


def test_nuts_passes_and_mean_field_fails_on_a_correlated_posterior(tmp_path):
    c = pgen.calibrate(
        two_sums,
        10,
        y=torch.zeros(10),
        methods=["nuts", "meanfield"],
        num_simulations=40,
        num_draws=19,
        bins=4,
        warmup=100,
        draws=200,
        steps=600,
        lr=0.05,
        progress=False,
    )
    assert not c.errors
    assert c.passed("nuts")
    assert not c.passed("meanfield")
    # too narrow: the truth falls outside the guide's draws, so ranks pile at 0 and L
    # (a share of 2/20 = 0.1 for uniform ranks; measured 0.375 and more)
    for name in ("a", "b"):
        r = c.ranks["meanfield"][name]
        assert np.isin(r, [0, 19]).mean() > 0.3
    fig = pgen.plot.plot_ranks(c)
    pgen.plot.save(fig, tmp_path / "ranks.png")
    assert (tmp_path / "ranks.png").stat().st_size > 10_000


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="num_draws \\+ 1 must be a multiple of bins.*num_draws=19"):
        pgen.calibrate(two_sums, 10, y=torch.zeros(10), num_draws=18, bins=4, num_simulations=8)
    with pytest.raises(ValueError, match="methods must be names"):
        pgen.calibrate(two_sums, 10, y=torch.zeros(10), methods=["gibbs"])
    with pytest.raises(ValueError, match="observes no site"):
        pgen.calibrate(two_sums, 10, num_simulations=10, bins=2, num_draws=9)
