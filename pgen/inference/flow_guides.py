r"""Normalizing-flow guides on zuko: ``make_guide("nsf" | "maf" | "realnvp", model)``.

The guide is a distribution over the model's whole unconstrained latent vector
:math:`z \in \mathbb R^D` (Pyro's ``AutoContinuous``), the push-forward of a standard
Normal through a zuko flow :math:`f` and then an affine map:

.. math::
    \epsilon \sim \mathcal N(0, I), \quad u = f(\epsilon), \quad z = \mu + L u,
    \qquad
    \log q(z) = \log \mathcal N(\epsilon; 0, I)
      - \log\left|\det \tfrac{\partial f}{\partial \epsilon}\right| - \sum_i \log L_{ii}.

The flow's last layers start at zero, which makes :math:`f` the identity (each layer's
shift is 0 and its scale 1; the splines' knots lie on the diagonal), so the guide starts
as the full-rank Gaussian :math:`\mathcal N(\mu, L L^\top)`: at the prior medians with
``init_scale``, or with ``init="mode"`` at the Laplace approximation (the posterior mode
and :math:`H^{-1}`, :mod:`pgen.inference.guide_init`). The flow then only has to learn
how the posterior departs from a Gaussian; started from a standard Normal, as Pyro's
``AutoNormalizingFlow`` does, an affine autoregressive flow trained at ``lr=0.01`` was
seen here to diverge on a regression with posterior correlation -0.9.

Samples are drawn in the flow's fast direction: zuko's MAF and NSF are *masked
autoregressive* in the direction of their density (one network pass for ``log_prob``,
:math:`D` passes to sample), so the guide uses the flow's density direction
:math:`f` to sample, which makes it the *inverse* autoregressive flow of Kingma et al.
(2016): one pass per sample, and the log-density of its own samples is kept from the
sampling pass (a value drawn elsewhere costs :math:`D` passes to invert).
"""

from __future__ import annotations

import torch
from pyro.distributions import TorchDistribution, constraints
from pyro.infer import autoguide
from pyro.nn import PyroParam
from torch import nn

from ..checks import check_int, check_int_tuple

__all__ = ["FLOW_GUIDES", "AutoZukoFlow", "FlowThenAffine", "zuko_flow"]

FLOW_GUIDES = ("nsf", "maf", "realnvp")


def zuko_flow(
    kind: str, dim: int, transforms: int, hidden: tuple[int, ...], bins: int = 8, context: int = 0
) -> nn.Module:
    """A zuko NSF, MAF or RealNVP on ``dim`` features (with a ``context`` of that size)
    whose layers start as the identity: each layer's last linear map is zero (with one
    feature and no context, zuko keeps the layer's parameters in the layer: all zero)."""
    import zuko

    common = {"transforms": transforms, "hidden_features": hidden, "context": context}
    if kind == "nsf":
        flow = zuko.flows.NSF(dim, bins=bins, **common)
    elif kind == "maf":
        flow = zuko.flows.MAF(dim, **common)
    else:
        flow = zuko.flows.RealNVP(dim, **common)
    for layer in flow.transform.transforms:
        hyper = getattr(layer, "hyper", None)
        if hyper is None:
            for p in layer.parameters():
                nn.init.zeros_(p)
            continue
        last = [m for m in hyper.modules() if hasattr(m, "weight")][-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
    return flow


class FlowThenAffine(TorchDistribution):
    """:math:`z = \\mu + L f(\\epsilon)`, :math:`\\epsilon \\sim \\mathcal N(0, I_D)` (module
    docstring), with ``transform`` = :math:`f` a zuko transform."""

    arg_constraints: dict = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, transform, loc: torch.Tensor, scale_tril: torch.Tensor, batch_shape=()):
        self.transform, self.loc, self.scale_tril = transform, loc, scale_tril
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None
        super().__init__(torch.Size(batch_shape), loc.shape[-1:], validate_args=False)

    def expand(self, batch_shape, _instance=None):
        return FlowThenAffine(self.transform, self.loc, self.scale_tril, batch_shape)

    def _base_log_prob(self, eps: torch.Tensor) -> torch.Tensor:
        return torch.distributions.Normal(0.0, 1.0).log_prob(eps).sum(-1)

    def _log_det_affine(self) -> torch.Tensor:
        return self.scale_tril.diagonal(dim1=-2, dim2=-1).abs().log().sum(-1)

    def rsample(self, sample_shape=()):
        shape = torch.Size(sample_shape) + self.batch_shape + self.event_shape
        eps = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        u, ladj = self.transform.call_and_ladj(eps)
        z = self.loc + (self.scale_tril @ u.unsqueeze(-1)).squeeze(-1)
        self._last = (z, self._base_log_prob(eps) - ladj - self._log_det_affine())
        return z

    def log_prob(self, z):
        if self._last is not None and z is self._last[0]:
            return self._last[1]
        u = torch.linalg.solve_triangular(self.scale_tril, (z - self.loc).unsqueeze(-1), upper=False).squeeze(
            -1
        )
        eps, ladj = self.transform.inv.call_and_ladj(u)
        return self._base_log_prob(eps) + ladj - self._log_det_affine()


class AutoZukoFlow(autoguide.AutoContinuous):
    """A zuko flow after a full-rank affine map on the model's unconstrained latent vector
    (module docstring). ``make_guide("nsf" | "maf" | "realnvp", model)`` builds one.

    Args:
        model: a Pyro model with continuous latent sites.
        kind: ``"nsf"`` (rational-quadratic splines, Durkan et al. 2019), ``"maf"``
            (affine autoregressive, Papamakarios et al. 2017) or ``"realnvp"`` (affine
            coupling, Dinh et al. 2017).
        transforms: the number of flow layers.
        hidden: the hidden widths of each layer's network (default: ``(max(32, 4 D),)``
            twice).
        bins: the spline bins of ``nsf``.
        init_loc_fn: where the affine map's shift starts (Pyro's ``init_loc_fn``).
        init_scale: the affine map's starting scale (ignored where ``mode_init`` gives the
            Laplace covariance).
        mode_init: a :class:`pgen.inference.guide_init.ModeInit`, to start at the Laplace
            approximation.
    """

    def __init__(
        self,
        model,
        kind: str = "nsf",
        *,
        transforms: int = 3,
        hidden: tuple[int, ...] | None = None,
        bins: int = 8,
        init_loc_fn=None,
        init_scale: float = 0.1,
        mode_init=None,
    ):
        if kind not in FLOW_GUIDES:
            raise ValueError(f"kind must be one of {', '.join(FLOW_GUIDES)}; got {kind!r}")
        self.kind = kind
        self.transforms = check_int("num_flows", transforms, minimum=1)
        self.hidden = None if hidden is None else check_int_tuple("hidden_dim", hidden)
        self.bins = check_int("bins", bins, minimum=2)
        self._init_scale = init_scale
        self.mode_init = mode_init
        kwargs = {} if init_loc_fn is None else {"init_loc_fn": init_loc_fn}
        super().__init__(model if mode_init is None else mode_init.wrap(model), **kwargs)

    def _setup_prototype(self, *args, **kwargs):
        super()._setup_prototype(*args, **kwargs)
        dim = self.latent_dim
        if self.kind == "realnvp" and dim < 2:
            raise ValueError(
                "the realnvp guide couples two halves of the latent vector; it needs at least 2 "
                "latent dimensions (this model has 1): use nsf, maf or fullrank"
            )
        loc = self._init_loc()
        self.loc = nn.Parameter(loc)
        self.scale = PyroParam(torch.full_like(loc, self._init_scale), constraints.softplus_positive)
        self.scale_tril = PyroParam(
            torch.eye(dim, dtype=loc.dtype, device=loc.device), constraints.unit_lower_cholesky
        )
        hidden = self.hidden or (max(32, 4 * dim),) * 2
        self.flow = zuko_flow(self.kind, dim, self.transforms, hidden, self.bins).to(
            dtype=loc.dtype, device=loc.device
        )
        if self.mode_init is not None:
            self.mode_init.spread_full(self)

    def get_base_dist(self):
        raise NotImplementedError("the flow guide's posterior is not a transformed base; use get_posterior")

    def get_posterior(self, *args, **kwargs):
        scale_tril = self.scale[..., None] * self.scale_tril
        return FlowThenAffine(self.flow.transform(), self.loc, scale_tril)

    def _loc_scale(self, *args, **kwargs):
        raise NotImplementedError(
            "a flow guide has no closed-form marginals; draw from it (pgen.vi_posterior or "
            "pyro.infer.Predictive) for medians and quantiles"
        )
