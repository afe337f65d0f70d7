r"""Exact likelihoods, computed: the change of variables, a planar flow step by step, and
what autoregressive sampling costs.

**Change of variables.** For an invertible, differentiable :math:`f` and
:math:`x = f(z)`, :math:`z \sim p_0`,

.. math::
    p(x) = p_0(z) \left|\det \frac{\partial f}{\partial z}\right|^{-1},
    \qquad \log p(x) = \log p_0(z) - \log\left|\det J_f(z)\right|.

:func:`change_of_variables` checks both halves for any stack of
``torch.distributions.Transform`` layers (pgen's planar and radial flows, zuko's
transforms): each layer's closed-form log-determinant against :math:`\log|\det J|` of
autograd's Jacobian, and that the density so defined integrates to 1 on a 2-D grid.

**A planar flow step by step.** :func:`planar_steps` evaluates the density after each of
the first :math:`k` layers of a stack, :math:`p_k = (f_k \circ \dots \circ f_1)_\# p_0`,
on a grid: each planar layer :math:`z + \hat u \tanh(w^\top z + b)` pushes mass along one
direction :math:`\hat u`, across one hyperplane :math:`w^\top z + b = 0` (Rezende &
Mohamed 2015, fig. 1).

**Autoregressive sampling costs D passes.** A model of
:math:`P(x) = \prod_d P(x_d \mid x_{<d})` evaluates every conditional in one masked
network pass, but a draw needs :math:`x_{<d}` before :math:`x_d`: :math:`D` passes, one
per value. :func:`autoregressive_cost` counts the passes and times both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ..checks import check_int

__all__ = [
    "change_of_variables",
    "ChangeOfVariables",
    "planar_steps",
    "PlanarSteps",
    "autoregressive_cost",
    "AutoregressiveCost",
]


@dataclass(frozen=True)
class ChangeOfVariables:
    """What :func:`change_of_variables` checked.

    Attributes:
        max_logdet_error: the largest :math:`|\\log|\\det J| - \\text{closed form}|` over
            the layers and points.
        mass: the density's integral over the grid (1 up to quadrature error and the mass
            outside the grid).
    """

    max_logdet_error: float
    mass: float


def _log_density(layers, base, x):
    """log p(x) of ``base`` pushed through ``layers`` (base -> data), by the inverses."""
    log_det = 0.0
    for layer in reversed(layers):
        before = layer.inv(x)
        log_det = log_det - layer.log_abs_det_jacobian(before, x)
        x = before
    return base.log_prob(x) + log_det


def _grid(extent: float, size: int, dtype=torch.float64):
    g = torch.linspace(-extent, extent, size, dtype=dtype)
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], -1), float(g[1] - g[0]) ** 2, g


def change_of_variables(
    layers, *, points: torch.Tensor | None = None, extent: float = 8.0, size: int = 801
) -> ChangeOfVariables:
    """Check the change-of-variables identity for ``layers`` (base -> data maps on
    :math:`\\mathbb R^2`) with a standard Normal base (module docstring)."""
    layers = list(layers)
    base = torch.distributions.Independent(
        torch.distributions.Normal(torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)), 1
    )
    if points is None:
        points = torch.randn(20, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    worst = 0.0
    for layer in layers:
        out = layer(points)
        jac = torch.stack([torch.autograd.functional.jacobian(layer, p) for p in points])
        worst = max(
            worst, float((torch.linalg.slogdet(jac)[1] - layer.log_abs_det_jacobian(points, out)).abs().max())
        )
        points = out.detach()
    grid, cell, _ = _grid(extent, check_int("size", size, minimum=3))
    with torch.no_grad():
        mass = float(_log_density(layers, base, grid).exp().sum() * cell)
    return ChangeOfVariables(worst, mass)


@dataclass(frozen=True)
class PlanarSteps:
    """Densities after 0, 1, ..., K layers on a square grid.

    Attributes:
        axis: the grid's coordinates along each side.
        densities: ``(K + 1, size, size)``.
        masses: each density's integral over the grid.
    """

    axis: torch.Tensor
    densities: torch.Tensor
    masses: list[float]


def planar_steps(layers, base, *, extent: float = 4.0, size: int = 201) -> PlanarSteps:
    """The density after each of the first k layers of ``layers`` (module docstring),
    k = 0..K, on a ``size`` x ``size`` grid over [-extent, extent]^2. ``base`` is the
    base distribution (batch shape (), event shape (2,))."""
    layers = list(layers)
    grid, cell, axis = _grid(extent, check_int("size", size, minimum=3), dtype=torch.get_default_dtype())
    densities, masses = [], []
    with torch.no_grad():
        for k in range(len(layers) + 1):
            p = _log_density(layers[:k], base, grid).exp()
            densities.append(p.reshape(size, size))
            masses.append(float(p.sum() * cell))
    return PlanarSteps(axis, torch.stack(densities), masses)


@dataclass(frozen=True)
class AutoregressiveCost:
    """Network passes and seconds of one likelihood evaluation and of one batch of
    draws, for each size D.

    Attributes:
        dims: the sizes D.
        sample_passes: network passes of a batch of draws (D each).
        sample_seconds, log_prob_seconds: wall time of a batch of draws and of one
            log-likelihood of a batch of the same size.
    """

    dims: list[int]
    sample_passes: list[int]
    sample_seconds: list[float]
    log_prob_seconds: list[float]


def autoregressive_cost(make_model, dims, *, n: int = 64, seed: int = 0) -> AutoregressiveCost:
    """Count and time, for each ``D`` in ``dims``, a batch of ``n`` draws from
    ``make_model(D)`` (a :class:`pgen.models.autoregressive.DiscreteAutoregressive`) and
    one evaluation of its log-likelihood on ``n`` examples."""
    n = check_int("n", n, minimum=1)
    passes, sample_s, log_prob_s = [], [], []
    for d in dims:
        model = make_model(check_int("dims", d, minimum=2)).eval()
        calls = [0]
        original = model.logits

        def counted(k, _original=original, _calls=calls):
            _calls[0] += 1
            return _original(k)

        model.logits = counted
        start = time.perf_counter()
        x = model.sample(n, seed=seed)
        sample_s.append(time.perf_counter() - start)
        passes.append(calls[0])
        start = time.perf_counter()
        with torch.no_grad():
            model.log_prob(x)
        log_prob_s.append(time.perf_counter() - start)
    return AutoregressiveCost(list(dims), passes, sample_s, log_prob_s)
