r"""Where a guide starts: at the prior medians (Pyro's default) or at the posterior mode.

Pyro's autoguides start their means at the prior medians. Adam then moves each mean by
about the learning rate per step, so a schedule such as 0.02 decaying to 0.001 over
3,000 steps can carry a mean about 20 units in all. On a regression with uncentred
covariates (x near 50, intercept 9, slope 0.5), intercept and slope have posterior
correlation near -1 and the ELBO's gradient along their ridge is tiny: measured here,
the full-rank guide ended with the intercept at -1.9 where NUTS says 9.7.

``init="mode"`` starts the means at the posterior mode instead: the same search that
starts NUTS's warm-up (:mod:`pgen.inference.kernels.mode_metric`: L-BFGS on the
potential, then Newton steps with the exact Hessian), run once on the model and data the
guide is first called with. The guide then has only the posterior's shape beyond
its curvature at the mode left to learn: the full-rank guide also starts with the
Laplace covariance :math:`H^{-1}`, and mean field with the variances that minimize
:math:`KL(q \| p)` for a Gaussian :math:`p` of precision :math:`H`, namely
:math:`1/H_{ii}` (Bishop 2006, sec. 10.1.2): the notes' mean-field variance, which is
smaller than the marginal one. The other families keep ``init_scale``.

Where the posterior has no mode (the centred eight schools: the density grows without
bound as tau -> 0, and the search ends where the Hessian is not positive definite), the
latent dimension is above ``MAX_MODE_DIM``, or the model cannot be written as a potential
(discrete sites that cannot be enumerated, subsampled plates), the guide starts at the
prior medians; a warning and ``guide.mode_init.report`` say why.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch
from pyro import poutine
from pyro.infer import autoguide
from pyro.infer.autoguide.initialization import InitMessenger, init_to_median

__all__ = ["INITS", "ModeInit", "NormalAtMode", "MultivariateNormalAtMode", "init_strategy"]

INITS = ("median", "mode")
MAX_MODE_DIM = 2000  # the Newton steps need a D x D Hessian (D backward passes)


class ModeInit:
    """An ``init_loc_fn`` for Pyro's autoguides that gives each site its value at the
    posterior mode, found once, on the arguments the guide is first called with.

    Pyro calls ``init_loc_fn(site)`` without the model's arguments; :meth:`wrap` gives
    the autoguide a model that hands them over before its first site is reached.
    """

    def __init__(self, model: Callable):
        self.model = model
        self.fallback = init_to_median(num_samples=15)
        self.values: dict[str, torch.Tensor] | None = None
        self.cov: np.ndarray | None = None  # H^-1 at the mode, in the potential's order
        self.slices: dict[str, slice] = {}
        self.report: str | None = None
        self._busy = False

    def wrap(self, model_seen_by_guide: Callable) -> Callable:
        def model(*args, **kwargs):
            if self.values is None and self.report is None and not self._busy:
                self._busy = True
                try:
                    with poutine.block():  # the search's own traces stay out of the guide's
                        self._find(args, kwargs)
                finally:
                    self._busy = False
            return model_seen_by_guide(*args, **kwargs)

        return model

    def __call__(self, site):
        values = self.values or {}
        if site["name"] in values and values[site["name"]].shape == site["fn"].shape():
            return values[site["name"]].to(site["fn"].sample().dtype)
        return self.fallback(site)

    def _find(self, args: tuple, kwargs: dict) -> None:
        from .kernels.mode_metric import metric_at_mode
        from .potential import Potential

        try:
            potential = Potential(self.model, args, kwargs, jit=False)
        except Exception as error:  # noqa: BLE001 - any model a potential cannot take
            return self._give_up(f"the model has no potential for the mode search ({error})")
        if potential.dim > MAX_MODE_DIM:
            return self._give_up(
                f"{potential.dim} latent dimensions is more than the mode search's "
                f"{MAX_MODE_DIM} (a D x D Hessian); a model with a latent per example "
                "(a VAE) wants its guide at the prior medians"
            )
        with torch.no_grad():
            start = poutine.trace(InitMessenger(self.fallback)(self.model)).get_trace(*args, **kwargs)
            z0 = potential.unconstrain({name: start.nodes[name]["value"] for name in potential.names})
        mode, cov, why = metric_at_mode(potential, z0.detach().cpu().double().numpy())
        if mode is None:
            return self._give_up(f"no mode was found: {why}")
        z = torch.as_tensor(mode, dtype=potential.dtype, device=potential.device)
        with torch.no_grad():
            self.values = {k: v.detach() for k, v in potential.constrain(z).items()}
        self.cov = cov
        self.slices = {s.name: slice(s.offset, s.offset + s.size) for s in potential.layout}
        self.report = "started at the posterior mode"

    def _order(self, shapes: dict) -> np.ndarray | None:
        """Indices into the potential's vector for a guide's latent vector with sites of
        unconstrained ``shapes`` (in the guide's order); ``None`` if they do not match."""
        parts = []
        for name, shape in shapes.items():
            where = self.slices.get(name)
            if where is None or where.stop - where.start != int(np.prod(shape)):
                return None
            parts.append(np.arange(where.start, where.stop))
        return np.concatenate(parts) if parts else None

    def spread_full(self, guide) -> None:
        """Give a full-rank guide the Laplace covariance (``scale * scale_tril = L``,
        ``L L^T = H^-1``)."""
        order = None if self.cov is None else self._order(guide._unconstrained_shapes)
        if order is None:
            return
        chol = np.linalg.cholesky(self.cov[np.ix_(order, order)])
        d = np.diag(chol)
        with torch.no_grad():
            guide.scale = torch.tensor(d, dtype=guide.loc.dtype, device=guide.loc.device)
            guide.scale_tril = torch.tensor(chol / d[:, None], dtype=guide.loc.dtype, device=guide.loc.device)

    def spread_diagonal(self, guide) -> None:
        """Give a mean-field guide the variances 1/H_ii."""
        if self.cov is None:
            return
        sd = 1.0 / np.sqrt(np.diag(np.linalg.inv(self.cov)))
        with torch.no_grad():
            for name, where in self.slices.items():
                loc = getattr(guide.locs, name, None)
                if loc is None or loc.numel() != where.stop - where.start:
                    continue
                value = torch.tensor(sd[where], dtype=loc.dtype, device=loc.device).reshape(loc.shape)
                setattr(guide.scales, name, value)

    def _give_up(self, why: str) -> None:
        self.report = f"started at the prior medians: {why}"
        warnings.warn(f"init='mode': {self.report}", RuntimeWarning, stacklevel=4)


class NormalAtMode(autoguide.AutoNormal):
    """Pyro's ``AutoNormal`` started at the mode with the mean-field variances there."""

    def __init__(self, model, mode_init: ModeInit, **kwargs):
        super().__init__(mode_init.wrap(model), init_loc_fn=mode_init, **kwargs)
        self.mode_init = mode_init

    def _setup_prototype(self, *args, **kwargs):
        super()._setup_prototype(*args, **kwargs)
        self.mode_init.spread_diagonal(self)


class MultivariateNormalAtMode(autoguide.AutoMultivariateNormal):
    """Pyro's ``AutoMultivariateNormal`` started at the Laplace approximation."""

    def __init__(self, model, mode_init: ModeInit, **kwargs):
        super().__init__(mode_init.wrap(model), init_loc_fn=mode_init, **kwargs)
        self.mode_init = mode_init

    def _setup_prototype(self, *args, **kwargs):
        super()._setup_prototype(*args, **kwargs)
        self.mode_init.spread_full(self)


def init_strategy(
    init: str, guide_model: Callable, model: Callable
) -> tuple[Callable, Callable, ModeInit | None]:
    """``(init_loc_fn, model for the autoguide, ModeInit or None)`` for ``init``.
    ``guide_model`` is the model as the guide sees it (enumerated sites hidden); the mode
    is that of ``model``, with those sites summed out."""
    if init == "median":
        return init_to_median(num_samples=15), guide_model, None
    mode = ModeInit(model)
    return mode, mode.wrap(guide_model), mode
