r"""Variational dequantization (Ho, Chen, Srinivas, Duan & Abbeel 2019, "Flow++", sec. 3.1).

A density :math:`p` on :math:`[0, 1)^D` gives the grey levels :math:`k` the probability
of their cell, :math:`P(k) = L^{-D} \int_{[0,1)^D} p\big(\tfrac{k+u}{L}\big)\,du`. On the
log-density scale of the flows (:math:`\log P(k) + D \log L`), Jensen's inequality gives,
for any density :math:`q(u \mid k)` on :math:`[0, 1)^D`,

.. math::
    \log \int p\big(\tfrac{k+u}{L}\big) du
    \;\ge\; \mathbb E_{q(u|k)}\Big[\log p\big(\tfrac{k+u}{L}\big) - \log q(u \mid k)\Big],

with the gap :math:`\mathrm{KL}\big(q(u|k) \,\|\, p(u|k)\big)`. Uniform dequantization
is :math:`q = U[0,1)^D` (the bound :math:`\mathbb E_u \log p`, what a flow trained on
uniformly dequantized data maximizes); its gap is large wherever the density varies
inside a cell. Variational dequantization learns :math:`q(u|k)`, here a zuko MAF
conditioned on :math:`k` and squashed into the cell by a sigmoid,
:math:`u = \sigma(g_k(\epsilon))`, and maximizes the tighter bound jointly with the flow.

In Pyro terms this is a latent-variable model: the model draws :math:`u \sim U[0,1)^D`
and scores :math:`\log p((k+u)/L)`, the guide is :math:`q(u|k)`, the ELBO is the bound
above and importance sampling with the guide estimates :math:`\log P(k) + D \log L`
itself. :func:`jensen_gaps` computes the three on the same data.
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import TorchDistribution, constraints
from torch import nn

from ..checks import check_choice, check_int, check_int_tuple
from ..data.validate import check_data
from ..inference.flow_guides import zuko_flow
from . import registry
from .autoregressive import levels_of
from .flows import MAF, NSF, RealNVP
from .protocols import configured

__all__ = ["DequantizedFlow", "CellPosterior", "jensen_gaps"]


class CellPosterior(TorchDistribution):
    """:math:`q(u|k)`: :math:`u = \\sigma(g(\\epsilon))` on :math:`[0,1)^D`, ``transform``
    :math:`g` a zuko transform already given the context :math:`k`."""

    arg_constraints: dict = {}
    support = constraints.independent(constraints.unit_interval, 1)
    has_rsample = True

    def __init__(self, transform, template: torch.Tensor, batch_shape=None):
        self.transform, self.template = transform, template
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None
        shape = template.shape[:-1] if batch_shape is None else torch.Size(batch_shape)
        super().__init__(shape, template.shape[-1:], validate_args=False)

    def expand(self, batch_shape, _instance=None):
        return CellPosterior(self.transform, self.template, batch_shape)

    @staticmethod
    def _log_sigmoid_slope(y):  # log d sigmoid(y) / dy
        return -nn.functional.softplus(-y) - nn.functional.softplus(y)

    def _normal(self, eps):
        return torch.distributions.Normal(0.0, 1.0).log_prob(eps).sum(-1)

    def rsample(self, sample_shape=()):
        shape = torch.Size(sample_shape) + self.batch_shape + self.event_shape
        eps = torch.randn(shape, dtype=self.template.dtype, device=self.template.device)
        y, ladj = self.transform.call_and_ladj(eps)
        u = torch.sigmoid(y).clamp(max=1.0 - 1e-6)  # inside the half-open cell in float32
        self._last = (u, self._normal(eps) - ladj - self._log_sigmoid_slope(y).sum(-1))
        return u

    def log_prob(self, u):
        if self._last is not None and u is self._last[0]:
            return self._last[1]
        u = u.clamp(1e-7, 1 - 1e-7)
        y = torch.log(u) - torch.log1p(-u)
        eps, ladj = self.transform.inv.call_and_ladj(y)
        return self._normal(eps) + ladj - self._log_sigmoid_slope(y).sum(-1)


class _Grey(TorchDistribution):
    """The scoring site: ``log_prob(x) = log p((k + u) / L)`` with ``k`` read off ``x``;
    a draw is a flow draw shown as grey levels (``u`` plays no part in generating)."""

    arg_constraints: dict = {}
    support = constraints.independent(constraints.unit_interval, 1)

    def __init__(self, owner: DequantizedFlow, u: torch.Tensor | None, batch_shape):
        self.owner, self.u = owner, u
        super().__init__(torch.Size(batch_shape), torch.Size(owner.event_shape), validate_args=False)

    def expand(self, batch_shape, _instance=None):
        return _Grey(self.owner, self.u, batch_shape)

    def log_prob(self, x):
        k = self.owner.to_levels(x)
        lp = self.owner.flow.log_prob((k + self.u) / self.owner.levels)
        return lp.expand(torch.broadcast_shapes(lp.shape, self.batch_shape))

    @torch.no_grad()
    def sample(self, sample_shape=()):
        shape = torch.Size(sample_shape) + self.batch_shape
        draws = self.owner.flow.distribution().sample((max(1, math.prod(shape)),))
        grey = self.owner.to_levels(draws).to(draws.dtype) / (self.owner.levels - 1)
        return grey.reshape(*shape, *self.event_shape)


_FLOWS = {"realnvp": RealNVP, "maf": MAF, "nsf": NSF}


def _data_args(x, y):
    x = x.reshape(len(x), -1)
    return {"data_dim": int(x.shape[1]), "levels": levels_of(x)}


@registry.register("vdq", family="dequantized", reads=("data_dim", "levels"), data_args=_data_args)
class DequantizedFlow(nn.Module):
    """A flow on grey levels trained with variational dequantization (module docstring).

    Args:
        data_dim: pixels per image.
        levels: grey levels per pixel (read off the data: 17 for sklearn digits).
        flow: the density, ``"realnvp"``, ``"maf"`` or ``"nsf"`` (on [0, 1) through the
            logit map, as :mod:`pgen.models.flows`).
        transforms, hidden: its layers and their hidden widths.
        dequantizer_transforms, dequantizer_hidden: those of q(u|k).
    """

    @configured
    def __init__(
        self,
        data_dim: int,
        levels: int = 256,
        flow: str = "realnvp",
        transforms: int = 6,
        hidden: tuple[int, ...] = (128, 128),
        dequantizer_transforms: int = 2,
        dequantizer_hidden: tuple[int, ...] = (64, 64),
    ):
        super().__init__()
        self.data_dim = check_int("data_dim", data_dim, minimum=2)
        self.levels = check_int("levels", levels, minimum=2)
        flow = check_choice("flow", flow, tuple(_FLOWS))
        self.flow = _FLOWS[flow](self.data_dim, transforms=transforms, hidden=hidden, data_range=(0, 1))
        self.dequantizer = zuko_flow(
            "maf",
            self.data_dim,
            check_int("dequantizer_transforms", dequantizer_transforms, minimum=1),
            check_int_tuple("dequantizer_hidden", dequantizer_hidden),
            context=self.data_dim,
        )
        self.register_buffer("_zero", torch.zeros(()), persistent=False)

    @property
    def event_shape(self) -> tuple[int, ...]:
        return (self.data_dim,)

    def to_levels(self, x: torch.Tensor) -> torch.Tensor:
        """The level ``k`` of each value: ``floor(L x)`` of dequantized values (or of
        grey values stored as ``k / (L - 1)``), as a float tensor."""
        return torch.floor(x * self.levels).clamp(0, self.levels - 1)

    def cell_posterior(self, x: torch.Tensor) -> CellPosterior:
        k = self.to_levels(x)
        context = 2.0 * k / (self.levels - 1) - 1.0
        return CellPosterior(self.dequantizer.transform(context), k)

    def model(self, x=None, *, y=None, n=None):
        """u ~ U[0,1)^D, then score log p((k + u) / L); with ``x=None``, ``n`` draws."""
        pyro.module("flow", self.flow)
        n = len(x) if x is not None else (n or 1)
        with pyro.plate("data", n):
            if x is None:
                return pyro.sample("obs", _Grey(self, None, (n,)))
            ones = torch.ones(n, self.data_dim, dtype=self._zero.dtype, device=self._zero.device)
            u = pyro.sample("u", dist.Uniform(0 * ones, ones, validate_args=False).to_event(1))
            return pyro.sample("obs", _Grey(self, u, (n,)), obs=x)

    def guide(self, x=None, *, y=None, n=None):
        """q(u|k)."""
        if x is None:
            return None
        pyro.module("dequantizer", self.dequantizer)
        with pyro.plate("data", len(x)):
            return pyro.sample("u", self.cell_posterior(x))

    def sample(self, n: int, *, seed: int | None = None) -> torch.Tensor:
        """``n`` images as grey values ``k / (L - 1)``: flow draws, read as levels."""
        return self.flow_sample(n, seed=seed)

    def flow_sample(self, n: int, *, seed: int | None = None) -> torch.Tensor:
        draws = self.flow.sample(check_int("n", n, minimum=1), seed=seed)
        return self.to_levels(draws) / (self.levels - 1)

    def validate_data(self, x, y=None, *, name: str = "x") -> None:
        x = check_data(x, name=name, event_shape=self.event_shape)
        if float(x.min()) < 0.0 or float(x.max()) > 1.0:
            raise ValueError(
                f"{name} must hold grey levels in [0, 1] (dequantized or k / (levels - 1)); got values "
                f"in [{float(x.min()):.3g}, {float(x.max()):.3g}]"
            )


@torch.no_grad()
def jensen_gaps(model: DequantizedFlow, x: torch.Tensor, *, num_samples: int = 100, seed: int = 0) -> dict:
    """The notes' Jensen-gap argument on ``x``, per example and in nats on the
    log-density scale (module docstring): the uniform bound :math:`\\mathbb E_u \\log p`,
    the variational bound, and the importance-sampled :math:`\\log \\int p\\,du` (with
    ``num_samples`` draws of q), each ``(N,)``, and the two gaps."""
    from ..eval import elbo, log_likelihood

    x = check_data(x, name="x", event_shape=model.event_shape)
    num_samples = check_int("num_samples", num_samples, minimum=1)
    k = model.to_levels(x)
    g = torch.Generator().manual_seed(seed)
    u = torch.rand((num_samples, *k.shape), generator=g, dtype=x.dtype)
    uniform = model.flow.log_prob((k + u) / model.levels).mean(0)
    variational = elbo(model.model, model.guide, x, num_samples=num_samples, seed=seed)
    estimate = log_likelihood(model.model, model.guide, x, num_samples=num_samples, seed=seed)
    return {
        "uniform_bound": uniform,
        "variational_bound": variational,
        "log_likelihood": estimate,
        "gap_uniform": estimate - uniform,
        "gap_variational": estimate - variational,
    }
