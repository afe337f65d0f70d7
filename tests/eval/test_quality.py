import numpy as np
import pytest
import torch

from pgen.eval import frechet_distance, nearest_neighbour_distance


def test_frechet_distance_matches_the_gaussian_closed_form():
    # for diagonal covariances: ||mu1 - mu2||^2 + sum (s1 - s2)^2 over the standard deviations
    g = torch.Generator().manual_seed(0)
    n = 200000
    a = torch.randn(n, 3, generator=g, dtype=torch.float64) * torch.tensor([1.0, 2.0, 0.5])
    b = torch.randn(n, 3, generator=g, dtype=torch.float64) * torch.tensor([1.5, 2.0, 1.0]) + 1.0
    exact = 3 * 1.0 + (0.5**2 + 0.0 + 0.5**2)
    # sampling error of the fitted moments: a few 1e-2 at n = 2e5
    assert frechet_distance(a, b) == pytest.approx(exact, abs=0.05)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_nearest_neighbour_distance_and_bad_input():
    ref = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    assert nearest_neighbour_distance(torch.tensor([[0.0, 3.0], [10.0, 4.0]]), ref) == pytest.approx(3.5)
    with pytest.raises(ValueError, match="samples have 3 features but reference has 2"):
        nearest_neighbour_distance(np.zeros((4, 3)), ref)
    with pytest.raises(ValueError, match="finite"):
        frechet_distance(np.full((4, 2), np.nan), ref)
