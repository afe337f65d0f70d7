r"""Normalizing flows as models with an exact :math:`\log p(x)`, built on zuko.

* RealNVP: affine coupling layers (Dinh, Sohl-Dickstein & Bengio 2017);
* MAF: masked autoregressive affine layers (Papamakarios, Pavlakou & Murray 2017);
* NSF: monotonic rational-quadratic spline layers (Durkan et al. 2019).

zuko (Rozet et al.) builds the flows; pgen writes the model around them. A flow maps
data :math:`y` in :math:`\mathbb R^D` to a standard Normal :math:`z = g(y)`, and

.. math::
    \log p(y) = \log \mathcal N(g(y); 0, I) + \log\left|\det \frac{\partial g}{\partial y}\right|.

Images in [0, 1] (dequantized grey levels, :func:`pgen.data.dequantize`) are first mapped
to :math:`\mathbb R^D` by :math:`y = \mathrm{logit}(\lambda + (1 - 2\lambda)x)`,
:math:`\lambda = 10^{-6}` (as RealNVP does, sec. 4.1), whose log-Jacobian is added, so
the density is still that of :math:`x` and bits/dim compare with every other model's.

The model is a Pyro model like any other: ``obs`` is observed in ``pyro.plate("data")``
under a distribution whose ``log_prob`` is the exact density, the guide has no sites, and
:func:`pgen.fit` with the ``elbo`` objective then maximizes the exact log-likelihood
(the ELBO of a model without latents is its log-likelihood).
"""

from __future__ import annotations

import pyro
import torch
from pyro.distributions import TorchDistribution
from torch import nn
from torch.distributions import constraints
from torch.distributions.transforms import AffineTransform, ComposeTransform, SigmoidTransform

from .. import rng
from ..checks import check_int, check_int_tuple
from ..data.validate import check_data
from . import registry
from .protocols import ExactLikelihoodModel, configured

__all__ = ["ObservedOnly", "FlowModel", "RealNVP", "MAF", "NSF", "FlowDistribution", "LOGIT_LAMBDA"]

LOGIT_LAMBDA = 1e-6


class FlowDistribution(TorchDistribution):
    """A zuko flow's distribution over :math:`\\mathbb R^D`, seen through ``pre`` (data
    space -> :math:`\\mathbb R^D`, e.g. the logit map) as a Pyro distribution of the data."""

    arg_constraints: dict = {}
    has_rsample = True

    def __init__(self, flow, pre=None, batch_shape=()):
        self.flow, self.pre = flow, pre
        super().__init__(torch.Size(batch_shape), flow.event_shape, validate_args=False)

    @property
    def support(self):
        return (
            constraints.independent(constraints.unit_interval, 1)
            if self.pre is not None
            else constraints.real_vector
        )

    def expand(self, batch_shape, _instance=None):
        return FlowDistribution(self.flow, self.pre, torch.Size(batch_shape))

    def rsample(self, sample_shape=()):
        y = self.flow.rsample(torch.Size(sample_shape) + self.batch_shape)
        return y if self.pre is None else self.pre.inv(y)

    def log_prob(self, x):
        if self.pre is None:
            lp = self.flow.log_prob(x)
        else:
            y = self.pre(x)
            lp = self.flow.log_prob(y) + self.pre.log_abs_det_jacobian(x, y).sum(-1)
        # observed data under an outer plate (vectorized particles): one value per batch entry
        return lp.expand(torch.broadcast_shapes(lp.shape, self.batch_shape))


class ObservedOnly:
    """The Pyro pair of a model without latent variables: ``obs`` in
    ``pyro.plate("data")`` under ``self.distribution()``, whose ``log_prob`` is the exact
    likelihood, and an empty guide. The ELBO of such a pair is its log-likelihood."""

    pyro_name = "density"

    def model(self, x=None, *, y=None, n=None):
        """``x ~ p(x)`` for each example in ``pyro.plate("data")``; with ``x=None``, ``n`` draws."""
        pyro.module(self.pyro_name, self)
        n = len(x) if x is not None else (n or 1)
        with pyro.plate("data", n):
            return pyro.sample("obs", self.distribution(), obs=x)

    def guide(self, x=None, *, y=None, n=None):
        """No latent variables: the guide is empty."""


class FlowModel(ObservedOnly, ExactLikelihoodModel, nn.Module):
    """The model around a zuko flow (see the module docstring); subclasses choose it.

    Args:
        data_dim: D, the size of one flattened example.
        transforms: the number of flow layers.
        hidden: the hidden widths of each layer's network.
        data_range: ``(0, 1)`` for images in [0, 1], mapped by the logit; ``None`` for
            data used as is (2-D toys).
    """

    def __init__(self, data_dim: int, transforms: int, hidden, data_range):
        super().__init__()
        self.data_dim = check_int("data_dim", data_dim, minimum=1)
        self.transforms = check_int("transforms", transforms, minimum=1)
        self.hidden = None if hidden is None else check_int_tuple("hidden", hidden)
        if data_range is not None and tuple(float(v) for v in data_range) != (0.0, 1.0):
            raise ValueError(
                f"data_range must be (0, 1) (images, mapped by the logit) or None; got {data_range}"
            )
        self.data_range = None if data_range is None else (0.0, 1.0)
        self.flow = self._build()

    pyro_name = "flow"

    def _build(self) -> nn.Module:  # pragma: no cover - each subclass builds its flow
        raise NotImplementedError

    @property
    def event_shape(self) -> tuple[int, ...]:
        return (self.data_dim,)

    def _pre(self):
        if self.data_range is None:
            return None
        lam = LOGIT_LAMBDA
        return ComposeTransform([AffineTransform(lam, 1 - 2 * lam), SigmoidTransform().inv])

    def distribution(self) -> FlowDistribution:
        """The exact distribution of one example."""
        return FlowDistribution(self.flow(), self._pre())

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """The exact :math:`\\log p(x)` of each example, in nats."""
        return self.distribution().log_prob(x)

    def sample(self, n: int, *, seed: int | None = None) -> torch.Tensor:
        """``n`` draws ``(n, D)``; ``seed`` seeds these draws only."""
        n = check_int("n", n, minimum=1)
        with rng.forked(seed), torch.no_grad():
            return self.distribution().sample((n,))

    def validate_data(self, x, y=None, *, name: str = "x") -> None:
        x = check_data(x, name=name, event_shape=self.event_shape)
        if self.data_range is not None and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
            raise ValueError(
                f"{name} must lie in [0, 1] for a flow on images (data_range=(0, 1)); got values in "
                f"[{float(x.min()):.3g}, {float(x.max()):.3g}]. Dequantize grey levels "
                "(pgen.data.dequantize) or pass data_range=None for real-valued data"
            )


def _data_args(x, y):
    x = x.reshape(len(x), -1)
    in_unit = bool(x.numel()) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    return {"data_dim": int(x.shape[1]), "data_range": [0.0, 1.0] if in_unit and x.shape[1] > 2 else None}


_READS = ("data_dim", "data_range")


@registry.register("realnvp", family="flow", reads=_READS, data_args=_data_args)
class RealNVP(FlowModel):
    """RealNVP: affine coupling layers, half the features transformed by each given the
    other half (Dinh et al. 2017), on zuko.

    Args:
        data_dim: D, the size of one flattened example.
        transforms: the number of flow layers.
        hidden: the hidden widths of each layer's network.
        data_range: ``(0, 1)`` for images in [0, 1], mapped by the logit (read off the
            data); ``None`` for data used as is (2-D toys).
    """

    @configured
    def __init__(
        self, data_dim: int, transforms: int = 6, hidden: tuple[int, ...] = (128, 128), data_range=None
    ):
        if data_dim < 2:
            raise ValueError("RealNVP couples two halves of the features; it needs data_dim >= 2")
        super().__init__(data_dim, transforms, hidden, data_range)

    def _build(self):
        import zuko

        return zuko.flows.RealNVP(self.data_dim, transforms=self.transforms, hidden_features=self.hidden)


@registry.register("maf", family="flow", reads=_READS, data_args=_data_args)
class MAF(FlowModel):
    """MAF: masked autoregressive affine layers with reversed orders between them
    (Papamakarios et al. 2017), on zuko.

    Args:
        data_dim: D, the size of one flattened example.
        transforms: the number of flow layers.
        hidden: the hidden widths of each layer's network.
        data_range: ``(0, 1)`` for images in [0, 1], mapped by the logit (read off the
            data); ``None`` for data used as is (2-D toys).
    """

    @configured
    def __init__(
        self, data_dim: int, transforms: int = 5, hidden: tuple[int, ...] = (128, 128), data_range=None
    ):
        super().__init__(data_dim, transforms, hidden, data_range)

    def _build(self):
        import zuko

        return zuko.flows.MAF(self.data_dim, transforms=self.transforms, hidden_features=self.hidden)


@registry.register("nsf", family="flow", reads=_READS, data_args=_data_args)
class NSF(FlowModel):
    """NSF: autoregressive monotonic rational-quadratic splines (Durkan et al. 2019), on zuko.

    Args:
        data_dim: D, the size of one flattened example.
        transforms: the number of flow layers.
        hidden: the hidden widths of each layer's network.
        data_range: ``(0, 1)`` for images in [0, 1], mapped by the logit (read off the
            data); ``None`` for data used as is (2-D toys).
        bins: the number of spline bins of each feature.
    """

    @configured
    def __init__(
        self,
        data_dim: int,
        transforms: int = 5,
        hidden: tuple[int, ...] = (128, 128),
        bins: int = 8,
        data_range=None,
    ):
        self.bins = check_int("bins", bins, minimum=2)
        super().__init__(data_dim, transforms, hidden, data_range)

    def _build(self):
        import zuko

        return zuko.flows.NSF(
            self.data_dim, transforms=self.transforms, hidden_features=self.hidden, bins=self.bins
        )
