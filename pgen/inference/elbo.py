r"""Variational objectives for the SVI engine.

Each objective computes, for a model/guide pair and the arguments they take, a pair
``(loss, surrogate)`` of scalar tensors:

* ``loss`` is the value of the negative bound (detached);
* ``surrogate`` is differentiable and its gradient is the gradient estimator. It is the
  loss itself where the guide is reparameterized, and adds score-function terms
  (Williams 1992; Schulman et al. 2015, "Gradient Estimation Using Stochastic
  Computation Graphs") where it is not.

Both stay tensors, never Python floats, so the engine can compile the whole computation
with ``torch.jit.trace``. All objectives are subclasses of Pyro's ``ELBO`` and so also
work with ``pyro.infer.SVI``.

Scale factors follow Pyro's conventions: ``poutine.scale`` (e.g. a beta-VAE's KL
weight) and minibatch scaling multiply each site's log-density.

References:
    Kingma & Welling (2014), Auto-Encoding Variational Bayes.
    Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders.
    Li & Turner (2016), Rényi Divergence Variational Inference.
"""

from __future__ import annotations

import math

import pyro
import torch
from pyro.distributions.util import is_identically_zero, scale_and_mask
from pyro.infer import Trace_ELBO, TraceEnum_ELBO, TraceMeanField_ELBO
from pyro.infer.enum import get_importance_trace
from pyro.infer.trace_elbo import _compute_log_r

from ..checks import check_choice, check_float, check_int

__all__ = [
    "ELBO",
    "MeanFieldELBO",
    "ImportanceWeightedELBO",
    "make_objective",
    "OBJECTIVES",
    "PARTICLE_PLATE",
]

OBJECTIVES = ("elbo", "meanfield", "iwae", "renyi", "enum")
PARTICLE_PLATE = "num_particles_vectorized"  # the name Pyro gives its particle plate


def _tensor(value) -> torch.Tensor:
    return value if torch.is_tensor(value) else torch.tensor(float(value))


class _LossAndSurrogate:
    """Pyro's ELBO interface (loss, differentiable_loss, loss_and_grads) on top of
    :meth:`loss_and_surrogate`."""

    def loss_and_surrogate(self, model, guide, *args, **kwargs):
        raise NotImplementedError

    def _guess_max_plate_nesting(self, model, guide, args, kwargs):
        # Pyro guesses by running model and guide once; do it without drawing from the
        # global random stream, so a first call gives the same draws as any other
        with torch.random.fork_rng(devices=[]):
            super()._guess_max_plate_nesting(model, guide, args, kwargs)

    def loss(self, model, guide, *args, **kwargs) -> float:
        with torch.no_grad():
            loss, _ = self.loss_and_surrogate(model, guide, *args, **kwargs)
        return loss.item()

    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
        loss, surrogate = self.loss_and_surrogate(model, guide, *args, **kwargs)
        return loss + (surrogate - surrogate.detach())

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        loss, surrogate = self.loss_and_surrogate(model, guide, *args, **kwargs)
        if surrogate.requires_grad:
            surrogate.backward(retain_graph=self.retain_graph)
        return loss.item()


def _elbo_terms(model_trace, guide_trace):
    """Return (ELBO, surrogate ELBO) of one particle as tensors (Trace_ELBO's estimator)."""
    elbo = 0.0
    surrogate = 0.0
    log_r = None
    for site in model_trace.nodes.values():
        if site["type"] == "sample":
            elbo = elbo + site["log_prob_sum"]
            surrogate = surrogate + site["log_prob_sum"]
    for site in guide_trace.nodes.values():
        if site["type"] != "sample":
            continue
        _, score_function_term, entropy_term = site["score_parts"]
        elbo = elbo - site["log_prob_sum"]
        if not is_identically_zero(entropy_term):
            surrogate = surrogate - entropy_term.sum()
        if not is_identically_zero(score_function_term):
            # REINFORCE with the downstream cost, Rao-Blackwellized over plates
            if log_r is None:
                log_r = _compute_log_r(model_trace, guide_trace)
            cost = log_r.sum_to(site["cond_indep_stack"])
            surrogate = surrogate + (cost * score_function_term).sum()
    return elbo, surrogate


class ELBO(_LossAndSurrogate, Trace_ELBO):
    r"""The evidence lower bound with a Monte Carlo KL term.

    .. math::
        \mathrm{ELBO}(x) = \mathbb{E}_{q(z|x)}[\log p(x, z) - \log q(z | x)]
                        = \mathbb{E}_{q}[\log p(x|z)] - \mathrm{KL}(q(z|x) \,\|\, p(z))
                        \le \log p(x).

    Same estimator as Pyro's ``Trace_ELBO`` (reparameterized where possible,
    score-function terms otherwise); ``num_particles`` samples are averaged.
    """

    def loss_and_surrogate(self, model, guide, *args, **kwargs):
        loss, surrogate = 0.0, 0.0
        for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
            elbo, surrogate_elbo = _elbo_terms(model_trace, guide_trace)
            loss = loss - elbo / self.num_particles
            surrogate = surrogate - surrogate_elbo / self.num_particles
        return _tensor(loss).detach(), _tensor(surrogate)


class MeanFieldELBO(_LossAndSurrogate, TraceMeanField_ELBO):
    r"""The ELBO with the KL term in closed form where one is known.

    .. math::
        \mathrm{ELBO}(x) = \mathbb{E}_{q(z|x)}[\log p(x | z)] - \mathrm{KL}(q(z|x) \,\|\, p(z)),

    e.g. :math:`\mathrm{KL} = \tfrac12 \sum_j (\mu_j^2 + \sigma_j^2 - 1 - \log \sigma_j^2)`
    for a diagonal Gaussian against N(0, I). As Pyro's ``TraceMeanField_ELBO``: the
    guide must be reparameterized and latent sites must not depend on each other in
    a way the closed form ignores.
    """

    def loss_and_surrogate(self, model, guide, *args, **kwargs):
        surrogate = 0.0
        for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
            _, particle = self._differentiable_loss_particle(model_trace, guide_trace)
            surrogate = surrogate + particle / self.num_particles
        surrogate = _tensor(surrogate)
        return surrogate.detach(), surrogate


class ImportanceWeightedELBO(_LossAndSurrogate, pyro.infer.ELBO):
    r"""The importance-weighted bound (IWAE) and the Rényi bound, per example.

    With :math:`z_1..z_K \sim q(z|x)` and :math:`w_k = p(x, z_k) / q(z_k|x)`,

    .. math::
        \mathcal{L}^\alpha_K(x) = \frac{1}{1-\alpha}
            \log \frac1K \sum_{k=1}^K w_k^{\,1-\alpha}.

    ``alpha = 0`` is the IWAE bound (Burda et al. 2016):
    :math:`\mathrm{ELBO} = \mathcal{L}_1 \le \mathcal{L}_K \le \mathcal{L}_{K+1} \le \log p(x)`.
    ``0 < alpha < 1`` is Li & Turner's (2016) Rényi bound, between the ELBO and IWAE.
    ``alpha < 0`` is allowed but is not a lower bound.

    The bound is formed for each example, meaning each index of the plates every
    site shares (the data plate), and the per-example bounds are summed. Unlike
    Pyro's ``RenyiELBO``, a minibatch scale multiplies the bound *outside* the
    logarithm, so a minibatch estimates the full-data bound. Latent variables must
    be reparameterized. Per-site scale factors such as a beta KL weight cannot be
    applied inside the weights: all sites must share one scale.

    Args:
        num_particles: K, the number of importance samples per example.
        alpha: the Rényi alpha; 0 (the default) is IWAE. Must differ from 1.
        vectorize_particles: draw the K samples in one batched pass (the model must
            broadcast over an extra leading batch dimension, as pgen's models do).
        max_plate_nesting: as in Pyro; guessed from the model when infinite.
    """

    def __init__(
        self,
        num_particles: int = 5,
        alpha: float = 0.0,
        vectorize_particles: bool = True,
        max_plate_nesting: float = float("inf"),
    ):
        num_particles = check_int("num_particles", num_particles, minimum=1)
        alpha = check_float("alpha", alpha)
        if alpha == 1.0:
            raise ValueError("alpha=1 is the ELBO itself; use objective='elbo' instead")
        super().__init__(
            num_particles=num_particles,
            max_plate_nesting=max_plate_nesting,
            vectorize_particles=vectorize_particles,
        )
        self.alpha = alpha

    def _get_trace(self, model, guide, args, kwargs):
        return get_importance_trace("flat", self.max_plate_nesting, model, guide, args, kwargs)

    def loss_and_surrogate(self, model, guide, *args, **kwargs):
        vectorized = self.vectorize_particles and self.num_particles > 1
        log_weights, scale = [], None
        for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
            log_w, scale = _per_example_log_weights(model_trace, guide_trace)
            log_weights.append(log_w)
        if vectorized:
            log_w = log_weights[0]
            particle_dim = -self.max_plate_nesting
            if log_w.dim() < -particle_dim:
                log_w = log_w.reshape((1,) * (-particle_dim - log_w.dim()) + log_w.shape)
        else:
            log_w = torch.stack(torch.broadcast_tensors(*log_weights))
            particle_dim = -log_w.dim()
        one_minus_alpha = 1.0 - self.alpha
        bound = (
            torch.logsumexp(one_minus_alpha * log_w, dim=particle_dim) - math.log(self.num_particles)
        ) / one_minus_alpha
        surrogate = -scale * bound.sum()
        return surrogate.detach(), surrogate


def _per_example_log_weights(model_trace, guide_trace):
    """log p(x, z) - log q(z | x) for each index of the plates shared by every site.

    Returns the log-weights (summed over every other dimension, so they broadcast
    against each other) and the one scale factor all sites share.
    """
    sites = [
        (site, sign)
        for trace, sign in ((model_trace, 1.0), (guide_trace, -1.0))
        for site in trace.nodes.values()
        if site["type"] == "sample"
    ]
    if not sites:
        raise ValueError("the model and guide have no sample sites")
    common = set.intersection(*(set(site["cond_indep_stack"]) for site, _ in sites))
    keep = {frame.dim for frame in common if frame.vectorized}
    scales = set()
    log_w = 0.0
    for site, sign in sites:
        if sign < 0:
            _, score_function_term, _ = site["score_parts"]
            if not is_identically_zero(score_function_term):
                raise ValueError(
                    f"the importance-weighted bound needs reparameterized latent variables, but "
                    f"guide site {site['name']!r} ({type(site['fn']).__name__}) is not; use "
                    "objective='elbo'"
                )
        site_scale = site["scale"]
        if torch.is_tensor(site_scale):
            raise ValueError(
                f"site {site['name']!r} has a tensor scale; the importance-weighted bound "
                "supports only one scalar scale shared by all sites"
            )
        scales.add(float(site_scale))
        log_p = scale_and_mask(site["unscaled_log_prob"], mask=site["mask"])
        if torch.is_tensor(log_p):
            drop = [d for d in range(-log_p.dim(), 0) if d not in keep]
            if drop:
                log_p = log_p.sum(dim=drop, keepdim=True)
        log_w = log_w + sign * log_p
    if len(scales) > 1:
        raise ValueError(
            f"the sites have different scale factors {sorted(scales)} (a KL weight such as a "
            "beta-VAE's, or a latent variable outside the minibatched data plate); the "
            "importance-weighted bound needs one shared scale: use objective='elbo' or "
            "'meanfield', or give every latent variable a place in the data plate"
        )
    return _tensor(log_w), scales.pop()


def make_objective(objective="elbo", *, num_particles: int | None = None, alpha: float | None = None):
    """Build an objective from its name, or check and return an ELBO object.

    Args:
        objective: ``"elbo"`` (:class:`ELBO`), ``"meanfield"`` (:class:`MeanFieldELBO`),
            ``"iwae"`` (:class:`ImportanceWeightedELBO` with alpha 0), ``"renyi"``
            (the same with ``alpha``), ``"enum"`` (Pyro's ``TraceEnum_ELBO``: discrete
            latent variables summed out), or any ``pyro.infer.ELBO`` instance.
        num_particles: samples per step; default 1, or 5 for ``iwae`` and ``renyi``.
        alpha: the Rényi alpha, only for ``renyi`` (default 0.5).

    Returns:
        A ``pyro.infer.ELBO``. Multiple particles are vectorized.
    """
    if isinstance(objective, pyro.infer.ELBO):
        if num_particles is not None or alpha is not None:
            raise ValueError(
                "num_particles and alpha are set on an ELBO object itself, not passed alongside it"
            )
        return objective
    if not isinstance(objective, str):
        raise TypeError(
            f"objective must be a name in {OBJECTIVES} or a pyro.infer.ELBO, got {type(objective).__name__}"
        )
    name = check_choice("objective", objective, OBJECTIVES)
    default_particles = 5 if name in ("iwae", "renyi") else 1
    k = default_particles if num_particles is None else check_int("num_particles", num_particles, minimum=1)
    if alpha is not None and name != "renyi":
        raise ValueError(f"alpha applies to objective='renyi' only, not {name!r}")
    vectorize = k > 1
    if name == "elbo":
        return ELBO(num_particles=k, vectorize_particles=vectorize)
    if name == "meanfield":
        return MeanFieldELBO(num_particles=k, vectorize_particles=vectorize)
    if name == "iwae":
        return ImportanceWeightedELBO(num_particles=k, alpha=0.0)
    if name == "renyi":
        return ImportanceWeightedELBO(num_particles=k, alpha=0.5 if alpha is None else alpha)
    return TraceEnum_ELBO(num_particles=k, vectorize_particles=vectorize)
