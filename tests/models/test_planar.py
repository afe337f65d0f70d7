"""Planar and radial flows against the change-of-variables identity: inverses, the
closed-form log-determinants against autograd's Jacobian, and a density that
integrates to 1 on a 2-D grid."""

import pyro
import pyro.distributions as dist
import pytest
import torch

import pgen
from pgen.models.planar import PlanarFlow, PlanarModel, RadialFlow


def _layer(cls, seed):
    torch.manual_seed(seed)
    layer = cls(2).double()
    with torch.no_grad():  # well away from the identity, and near the invertibility limit
        for p in layer.parameters():
            p.copy_(torch.randn_like(p) * 1.5)
        if cls is PlanarFlow:
            layer.u.copy_(
                -2.0 * layer.w / (layer.w @ layer.w)
            )  # w^T u = -2: u_hat is pulled to -1 + softplus
    return layer


@pytest.mark.parametrize("cls", [PlanarFlow, RadialFlow])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_inverse_and_log_determinant(cls, seed):
    layer = _layer(cls, seed)
    z = torch.randn(200, 2, dtype=torch.float64) * 2
    x = layer(z)
    torch.testing.assert_close(layer._inverse(x), z, atol=1e-9, rtol=0)
    jac = torch.stack([torch.autograd.functional.jacobian(layer._call, zi) for zi in z])
    torch.testing.assert_close(
        layer.log_abs_det_jacobian(z, x), torch.linalg.slogdet(jac)[1], atol=1e-10, rtol=0
    )


@pytest.mark.parametrize("cls", [PlanarFlow, RadialFlow])
def test_a_stack_of_layers_is_a_density_that_integrates_to_one(cls):
    """Riemann sum over [-9, 9]^2 with step 0.03: the quadrature error of a smooth
    density is far below the 1e-3 allowed; the mass outside is below 1e-12 for the base."""
    layers = [_layer(cls, s) for s in range(3)]
    flow = dist.TransformedDistribution(
        dist.Normal(torch.zeros(2, dtype=torch.float64), 1.0).to_event(1), layers
    )
    grid = torch.linspace(-9, 9, 601, dtype=torch.float64)
    xx, yy = torch.meshgrid(grid, grid, indexing="ij")
    points = torch.stack([xx.reshape(-1), yy.reshape(-1)], -1)
    with torch.no_grad():
        mass = flow.log_prob(points).exp().sum() * (grid[1] - grid[0]) ** 2
    assert abs(float(mass) - 1) < 1e-3, float(mass)


def test_pgen_fit_trains_a_planar_flow_to_a_higher_exact_likelihood():
    x, _ = pgen.data.load("moons", n=500, seed=0)
    torch.manual_seed(0)
    layers = torch.nn.ModuleList([PlanarFlow(2) for _ in range(4)])

    def model(x):
        pyro.module("flows", layers)
        base = dist.Normal(torch.zeros(2), 1.0).to_event(1)
        with pyro.plate("data", len(x)):
            pyro.sample("obs", dist.TransformedDistribution(base, list(layers)), obs=x)

    def guide(x):
        pass

    def nll():
        base = dist.Normal(torch.zeros(2), 1.0).to_event(1)
        with torch.no_grad():
            return -float(dist.TransformedDistribution(base, list(layers)).log_prob(x).mean())

    # the best axis-aligned Gaussian (the data's means and sds): what a flow must beat
    gaussian = -float(dist.Normal(x.mean(0), x.std(0, unbiased=False)).log_prob(x).sum(-1).mean())
    assert nll() > gaussian + 0.5  # the flow starts near the standard Normal
    pgen.fit(model, guide, x, steps=300, batch_size=None, lr=0.02, progress=False, seed=0)
    assert nll() < gaussian  # the exact NLL after training: the flow bends towards the moons


def test_the_planar_density_has_the_gradient_of_its_exact_inverse():
    """log p(x) goes through the bisection inverse; one Newton step from its root gives
    the implicit-function gradient, checked against central differences in float64."""
    torch.manual_seed(0)
    m = PlanarModel(2, transforms=3).double()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.5 * torch.randn_like(p))
    x = torch.randn(7, 2, dtype=torch.float64)
    params = [p for p in m.parameters()]
    grads = torch.autograd.grad(m.log_prob(x).sum(), params)
    eps = 1e-6
    for p, g in zip(params, grads, strict=True):
        for i in range(p.numel()):
            with torch.no_grad():
                flat = p.view(-1)
                flat[i] += eps
                up = m.log_prob(x).sum()
                flat[i] -= 2 * eps
                down = m.log_prob(x).sum()
                flat[i] += eps
            assert float(g.view(-1)[i]) == pytest.approx(float((up - down) / (2 * eps)), abs=1e-5)
