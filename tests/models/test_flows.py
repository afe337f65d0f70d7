"""The contract of every flow, as zuko tests its own: invertibility, the
log-determinant against autograd's Jacobian, a density that integrates to 1 on a 2-D
grid, and the exact likelihood that pgen.fit raises above the best Gaussian's."""

import pytest
import torch

import pgen
from pgen.models import MAF, NSF, PlanarModel, RealNVP

FLOWS = {
    "realnvp": lambda d, **kw: RealNVP(d, transforms=3, hidden=(16,), **kw),
    "maf": lambda d, **kw: MAF(d, transforms=3, hidden=(16,), **kw),
    "nsf": lambda d, **kw: NSF(d, transforms=2, hidden=(16,), bins=4, **kw),
    "planar": lambda d, **kw: PlanarModel(d, transforms=8, **kw),
    "radial": lambda d, **kw: PlanarModel(d, transforms=8, kind="radial", **kw),
}


def _perturbed(name, d, **kw):
    """A flow away from the identity (zuko initializes near it)."""
    torch.manual_seed(0)
    m = FLOWS[name](d, **kw).double()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return m


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_the_transform_inverts_and_its_log_determinant_is_autograds(name):
    m = _perturbed(name, 3)
    t = m.flow().transform  # data -> base
    x = torch.randn(20, 3, dtype=torch.float64)
    z = t(x)
    torch.testing.assert_close(t.inv(z), x, atol=1e-6, rtol=0)
    jac = torch.stack([torch.autograd.functional.jacobian(t, xi) for xi in x])
    torch.testing.assert_close(t.log_abs_det_jacobian(x, z), torch.linalg.slogdet(jac)[1], atol=1e-8, rtol=0)


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_the_density_integrates_to_one_on_a_grid(name):
    m = _perturbed(name, 2)  # the perturbed RealNVP has tails out to |x| ~ 15
    grid = torch.linspace(-25, 25, 1601, dtype=torch.float64)
    xx, yy = torch.meshgrid(grid, grid, indexing="ij")
    points = torch.stack([xx.reshape(-1), yy.reshape(-1)], -1)
    with torch.no_grad():
        mass = m.log_prob(points).exp().sum() * (grid[1] - grid[0]) ** 2
    assert abs(float(mass) - 1) < 2e-3, float(mass)


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_the_logit_map_keeps_it_a_density_of_images(name):
    """On [0, 1]^2 the logit-mapped flow still integrates to 1 (midpoint rule)."""
    m = _perturbed(name, 2, data_range=(0, 1))
    k = 1000
    mid = (torch.arange(k, dtype=torch.float64) + 0.5) / k
    xx, yy = torch.meshgrid(mid, mid, indexing="ij")
    points = torch.stack([xx.reshape(-1), yy.reshape(-1)], -1)
    with torch.no_grad():
        mass = m.log_prob(points).exp().mean()
    assert abs(float(mass) - 1) < 1e-2, float(mass)
    with pytest.raises(ValueError, match="must lie in \\[0, 1\\]"):
        m.validate_data(torch.full((2, 2), 1.5, dtype=torch.float64))


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_pgen_fit_raises_the_exact_likelihood_above_the_best_gaussian(name):
    x, _ = pgen.data.load("moons", n=600, seed=0)
    torch.manual_seed(0)
    m = FLOWS[name](2)
    gaussian = torch.distributions.MultivariateNormal(x.mean(0), torch.cov(x.T))
    best_gaussian = -float(gaussian.log_prob(x).mean())
    steps, lr = (1000, 1e-2) if name in ("planar", "radial") else (400, 3e-3)  # weaker maps
    pgen.fit(m.model, m.guide, x, steps=steps, batch_size=200, lr=lr, progress=False, seed=0)
    with torch.no_grad():
        nll = -float(m.log_prob(x).mean())
    assert nll < best_gaussian - 0.2, (nll, best_gaussian)
