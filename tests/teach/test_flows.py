"""The change-of-variables page: log-determinants against autograd, densities that
integrate to 1, planar densities layer by layer, and the D passes of sampling."""

import math

import torch

from pgen.models import MADEDensity, PixelCNN
from pgen.models.planar import PlanarFlow, RadialFlow
from pgen.teach import autoregressive_cost, change_of_variables, planar_steps


def _layers():
    torch.manual_seed(0)
    layers = [PlanarFlow(2), RadialFlow(2), PlanarFlow(2)]
    with torch.no_grad():
        for layer in layers:
            for p in layer.parameters():
                p.copy_(torch.randn_like(p))
    return [layer.double() for layer in layers]


def test_closed_form_log_determinants_equal_autograds_and_the_density_has_mass_one():
    check = change_of_variables(_layers(), extent=12.0, size=1201)
    assert check.max_logdet_error < 1e-10
    assert abs(check.mass - 1) < 1e-3


def test_a_wrong_log_determinant_is_caught():
    """The check has teeth: a planar layer whose closed form drops the 1 + ... term."""

    class Broken(PlanarFlow):
        def log_abs_det_jacobian(self, z, x):
            return super().log_abs_det_jacobian(z, x) * 0.5

    torch.manual_seed(1)
    layer = Broken(2).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn_like(p))
    check = change_of_variables([layer], extent=12.0, size=801)
    assert check.max_logdet_error > 1e-3 and abs(check.mass - 1) > 1e-3


def test_planar_steps_start_at_the_base_and_keep_their_mass():
    layers = [layer.float() for layer in _layers()]
    base = torch.distributions.Independent(torch.distributions.Normal(torch.zeros(2), torch.ones(2)), 1)
    steps = planar_steps(layers, base, extent=10.0, size=401)
    inside = math.erf(10 / math.sqrt(2)) ** 2  # the base's mass on the square
    assert abs(steps.masses[0] - inside) < 1e-3
    assert all(abs(m - 1) < 5e-3 for m in steps.masses)
    assert steps.densities.shape == (4, 401, 401) and bool((steps.densities >= 0).all())


def test_sampling_takes_one_pass_per_value():
    cost = autoregressive_cost(lambda d: PixelCNN(d, levels=2, channels=4, layers=2), [4, 9, 16], n=8)
    assert cost.sample_passes == [4, 9, 16]
    cost = autoregressive_cost(lambda d: MADEDensity(d, levels=3, hidden=(32,)), [5, 10], n=8)
    assert cost.sample_passes == [5, 10]
