r"""Planar and radial flows (Rezende & Mohamed 2015, "Variational Inference with
Normalizing Flows", sec. 4.1), written out with their closed-form log-determinants.

A flow pushes a base density through invertible maps :math:`x = f_K \circ \dots \circ
f_1(z)`; by the change of variables,

.. math::
    \log p(x) = \log p_0(z) - \sum_k \log \left|\det \frac{\partial f_k}{\partial z_{k-1}}\right|.

**Planar** (eq. 10-12): :math:`f(z) = z + \hat u\, h(w^\top z + b)`, :math:`h = \tanh`,

.. math::
    \log|\det J| = \log\left|1 + \hat u^\top \psi(z)\right|, \quad
    \psi(z) = h'(w^\top z + b)\, w

(the matrix determinant lemma). It is invertible when :math:`w^\top \hat u \ge -1`,
which :math:`\hat u = u + (m(w^\top u) - w^\top u)\, w / \|w\|^2`,
:math:`m(a) = -1 + \log(1 + e^a)` guarantees (their appendix A). The inverse has no
closed form: along :math:`w` the map is the scalar :math:`a \mapsto a + w^\top\hat u
\tanh(a + b)`, increasing, so :math:`a = w^\top z` is found by bisection and then
:math:`z = x - \hat u \tanh(a + b)`.

**Radial** (eq. 14): :math:`f(z) = z + \beta\, h(\alpha, r)(z - z_0)`, :math:`r = \|z -
z_0\|`, :math:`h = 1/(\alpha + r)`,

.. math::
    \log|\det J| = (d - 1)\log(1 + \beta h) + \log(1 + \beta h + \beta h'(\alpha, r)\, r),

with :math:`\alpha > 0` and :math:`\beta \ge -\alpha` for invertibility
(:math:`\alpha = \mathrm{softplus}(\tilde\alpha)`,
:math:`\beta = -\alpha + \mathrm{softplus}(\tilde\beta)`). Its inverse is closed-form:
the radius maps as :math:`\rho = r(1 + \beta/(\alpha + r))`, a quadratic in :math:`r`.

Both are ``torch.distributions.Transform`` modules, so they compose with Pyro's
``TransformedDistribution`` and train with :func:`pgen.fit`. :class:`PlanarModel`
(``pgen train planar``) stacks them into a density model with an exact log-likelihood:
data are mapped to the base by the inverses, so the planar inverse carries the implicit
function theorem's gradient (one Newton step from the bisection root).
"""

from __future__ import annotations

import torch
from pyro.distributions.torch_transform import TransformModule
from torch import nn
from torch.distributions import ComposeTransform, Independent, Normal, constraints
from torch.nn import functional as F

from ..checks import check_choice
from . import registry
from .flows import _READS, FlowModel, _data_args
from .protocols import configured

__all__ = ["PlanarFlow", "RadialFlow", "PlanarModel"]

BISECTION_STEPS = 30  # halves an interval of width 2|w^T u| + 2 to ~1e-8; a Newton step then refines


class PlanarFlow(TransformModule):
    """One planar map on vectors of ``dim`` (see the module docstring)."""

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, dim: int, *, init_scale: float = 0.1):
        super().__init__(cache_size=1)
        g = torch.randn(3, dim) * init_scale
        self.u, self.w = nn.Parameter(g[0]), nn.Parameter(g[1])
        self.b = nn.Parameter(torch.zeros(()))

    def u_hat(self) -> torch.Tensor:
        """:math:`\\hat u`, with :math:`w^\\top \\hat u \\ge -1` (invertibility)."""
        wu = self.w @ self.u
        return self.u + (-1 + F.softplus(wu) - wu) * self.w / (self.w @ self.w).clamp_min(1e-12)

    def _call(self, z):
        return z + self.u_hat() * torch.tanh(z @ self.w + self.b)[..., None]

    def _inverse(self, x):
        u, w, b = self.u_hat(), self.w, self.b
        wu, wx = w @ u, x @ w
        # solve a + wu tanh(a + b) = wx for a = w^T z; the left side increases in a
        # (its slope 1 + wu (1 - tanh^2) >= 0) and lies within |wu| of a
        lo, hi = wx - wu.abs() - 1.0, wx + wu.abs() + 1.0
        with torch.no_grad():
            lo, hi = lo.detach(), hi.detach()
            for _ in range(BISECTION_STEPS):
                mid = (lo + hi) / 2
                above = mid + wu * torch.tanh(mid + b) > wx
                lo, hi = torch.where(above, lo, mid), torch.where(above, mid, hi)
            root = (lo + hi) / 2
        # one Newton step from the root: the same value, and the implicit function
        # theorem's gradient da/dtheta = -(dg/dtheta) / (dg/da) of g(a) = a + wu tanh(a + b) - wx,
        # so the inverse (and log p(x) of a planar density) trains by gradient descent
        t = torch.tanh(root + b)
        a = root - (root + wu * t - wx) / (1 + wu * (1 - t**2))
        return x - u * torch.tanh(a + b)[..., None]

    def log_abs_det_jacobian(self, z, x):
        u = self.u_hat()
        psi = (1 - torch.tanh(z @ self.w + self.b) ** 2)[..., None] * self.w  # h'(w^T z + b) w
        return torch.log((1 + psi @ u).abs())


class RadialFlow(TransformModule):
    """One radial map on vectors of ``dim`` (see the module docstring)."""

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, dim: int, *, init_scale: float = 0.1):
        super().__init__(cache_size=1)
        self.dim = dim
        self.z0 = nn.Parameter(torch.randn(dim) * init_scale)
        self.alpha_raw = nn.Parameter(torch.zeros(()))
        self.beta_raw = nn.Parameter(torch.zeros(()))

    def alpha_beta(self) -> tuple[torch.Tensor, torch.Tensor]:
        alpha = F.softplus(self.alpha_raw)
        return alpha, -alpha + F.softplus(self.beta_raw)

    def _call(self, z):
        alpha, beta = self.alpha_beta()
        diff = z - self.z0
        r = diff.norm(dim=-1, keepdim=True)
        return z + beta / (alpha + r) * diff

    def _inverse(self, x):
        alpha, beta = self.alpha_beta()
        diff = x - self.z0
        rho = diff.norm(dim=-1, keepdim=True)
        # rho = r (1 + beta / (alpha + r))  <=>  r^2 + (alpha + beta - rho) r - rho alpha = 0
        c = alpha + beta - rho
        r = (-c + torch.sqrt(c**2 + 4 * rho * alpha)) / 2
        return self.z0 + diff * (r / rho.clamp_min(1e-30))

    def log_abs_det_jacobian(self, z, x):
        alpha, beta = self.alpha_beta()
        r = (z - self.z0).norm(dim=-1)
        h = 1 / (alpha + r)
        dh = -(h**2)
        return (self.dim - 1) * torch.log1p(beta * h) + torch.log(1 + beta * h + beta * dh * r)


class _PushForward:
    """A diagonal Normal pushed through ``layers`` (base -> data), as the flow models'
    distribution: ``transform`` is data -> base, as zuko's flows have it."""

    def __init__(self, layers, loc: torch.Tensor, log_scale: torch.Tensor):
        self.layers = list(layers)
        self.map = ComposeTransform(self.layers)
        self.transform = self.map.inv
        self.base = Independent(Normal(loc, log_scale.exp()), 1)
        self.event_shape = loc.shape

    def log_prob(self, x):
        # each layer's own inverse, past the layers' caches: a cache keyed on the data
        # tensor would give the inverse under the parameters of an earlier step
        z, log_det = x, 0.0
        for layer in reversed(self.layers):
            before = layer._inverse(z)
            log_det = log_det - layer.log_abs_det_jacobian(before, z)
            z = before
        return self.base.log_prob(z) + log_det

    def rsample(self, sample_shape=()):
        return self.map(self.base.rsample(sample_shape))


class _Stack(nn.Module):
    def __init__(self, dim: int, count: int, kind: str):
        super().__init__()
        layer = PlanarFlow if kind == "planar" else RadialFlow
        self.layers = nn.ModuleList(layer(dim) for _ in range(count))
        self.loc = nn.Parameter(torch.zeros(dim))  # the base's own shift and scale, so the
        self.log_scale = nn.Parameter(torch.zeros(dim))  # maps only learn the non-Gaussian part

    def forward(self):
        return _PushForward(self.layers, self.loc, self.log_scale)


@registry.register("planar", family="flow", reads=_READS, data_args=_data_args)
class PlanarModel(FlowModel):
    """A density of ``transforms`` planar (or radial) maps of a diagonal Normal, for
    teaching: each layer's log-determinant in closed form (module docstring). Weak on
    images (a planar map bends the space along one direction only); meant for 2-D toys.

    Args:
        data_dim: D, the size of one flattened example.
        transforms: the number of maps.
        kind: ``"planar"`` or ``"radial"``.
        data_range: ``(0, 1)`` for images in [0, 1], mapped by the logit (read off the
            data); ``None`` for data used as is (2-D toys).
    """

    @configured
    def __init__(self, data_dim: int, transforms: int = 16, kind: str = "planar", data_range=None):
        self.kind = check_choice("kind", kind, ("planar", "radial"))
        super().__init__(data_dim, transforms, None, data_range)

    def _build(self):
        return _Stack(self.data_dim, self.transforms, self.kind)
