r"""Variational families for any model, by name, and what a fitted one says.

:func:`make_guide` builds a guide for a Pyro model from Pyro's autoguides:

============== ================================================ ==========================
name           family                                           Pyro class
============== ================================================ ==========================
``meanfield``  independent Normals (diagonal covariance)        ``AutoNormal``
``fullrank``   one multivariate Normal, Cholesky factor L       ``AutoMultivariateNormal``
``lowrank``    Normal with covariance W W^T + diag(d), rank r   ``AutoLowRankMultivariateNormal``
``structured`` Gaussian keeping the model's conditional         ``AutoGaussian``
               dependencies (sparse precision)
``flow``       inverse-autoregressive flow on a Normal          ``AutoNormalizingFlow``
``nsf``        spline flow after a full-rank affine map         zuko NSF (pgen's
                                                                ``AutoZukoFlow``)
``maf``        affine autoregressive flow, the same way         zuko MAF
``realnvp``    affine coupling flow, the same way               zuko RealNVP
``laplace``    Normal at the MAP with the inverse Hessian       ``AutoLaplaceApproximation``
``map``        point mass at the posterior mode                 ``AutoDelta``
============== ================================================ ==========================

all in the model's unconstrained space. Fit any of them with :func:`pgen.fit`; then
:func:`vi_posterior` (or ``result.posterior()``) draws from the fitted guide, computes
the importance ratios :math:`\log p(x, z_s) - \log q(z_s)` and their Pareto-smoothed
diagnostic :math:`\hat k` (:func:`pgen.eval.diagnostics.psis`; Yao, Vehtari, Simpson &
Gelman 2018, "Yes, but did it work?"), and returns the draws as ArviZ ``InferenceData``.

The full-rank family is the notes' "best Gaussian approximation via a Cholesky factor":
:math:`z = \mu + L\epsilon`, :math:`\epsilon \sim \mathcal N(0, I)`.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.infer import autoguide
from pyro.poutine.subsample_messenger import _Subsample

from ..checks import check_choice, check_float, check_int
from ..eval.arviz import to_inference_data
from ..eval.diagnostics import PSISResult, psis
from .flow_guides import FLOW_GUIDES, AutoZukoFlow
from .guide_init import INITS, MultivariateNormalAtMode, NormalAtMode, init_strategy
from .potential import EnumeratedJoint
from .sites import observed_log_prob

__all__ = ["make_guide", "GUIDES", "vi_posterior", "VIPosterior"]

GUIDES = ("meanfield", "fullrank", "lowrank", "structured", "flow", "laplace", "map", *FLOW_GUIDES)


def make_guide(
    name: str,
    model: Callable,
    *,
    rank: int | None = None,
    init_scale: float = 0.1,
    num_flows: int | None = None,
    hidden_dim: int | None = None,
    init: str = "median",
) -> Callable:
    """A guide for ``model`` by family name (see the module table).

    Args:
        name: one of :data:`GUIDES`.
        model: any Pyro model with continuous latent sites.
        rank: rank of ``lowrank`` (default: about sqrt of the latent dimension).
        init_scale: initial standard deviation of the Gaussian families.
        num_flows: number of IAF layers of ``flow`` (default 2), or of zuko layers of
            ``nsf``/``maf``/``realnvp`` (default 3).
        hidden_dim: hidden width of each IAF layer (default: twice the latent dimension,
            at least 32; wider layers need a smaller learning rate); for the zuko flows,
            the width of their two hidden layers (default: 4 D, at least 32).

        init: where the guide's means start: ``"median"`` (the prior medians, Pyro's
            default) or ``"mode"`` (the posterior mode, found once on the data the guide
            is first called with; :mod:`pgen.inference.guide_init`). ``"mode"`` lets a
            short learning-rate schedule reach posteriors far from the prior, e.g. on
            uncentred covariates; it falls back to the medians, with a warning, where
            there is no mode. Not for ``flow``, which starts as a standard Normal. The
            zuko flows (:mod:`pgen.inference.flow_guides`) start as the identity after a
            full-rank Gaussian, so ``"mode"`` starts them at the Laplace approximation.

    Returns:
        A Pyro autoguide. With ``init="mode"``, ``guide.mode_init.report`` says after the
        first call where it started and why (``guide.mode_init`` is ``None`` otherwise).

    Raises:
        ValueError: an unknown name, listing the families.
    """
    if not isinstance(name, str):
        raise TypeError(f"guide name must be a string, one of {', '.join(GUIDES)}; got {type(name).__name__}")
    name = check_choice("guide", name, GUIDES)
    if not callable(model):
        raise TypeError(f"model must be a callable Pyro model, got {type(model).__name__}")
    init_scale = check_float("init_scale", init_scale, positive=True)
    init = check_choice("init", init, INITS)
    if init == "mode" and name == "flow":
        raise ValueError(
            "init='mode' is for the Gaussian, laplace and map guides; the flow guide starts "
            "as a standard Normal in the unconstrained space (use init='median')"
        )
    init, guide_model, mode_init = init_strategy(init, _without_enumerated(model), model)
    if name in FLOW_GUIDES:
        hidden = None if hidden_dim is None else (check_int("hidden_dim", hidden_dim, minimum=1),) * 2
        return AutoZukoFlow(
            _without_enumerated(model),
            name,
            transforms=3 if num_flows is None else num_flows,
            hidden=hidden,
            init_loc_fn=init,
            init_scale=init_scale,
            mode_init=mode_init,
        )
    if mode_init is not None and name in ("meanfield", "fullrank"):
        at_mode = NormalAtMode if name == "meanfield" else MultivariateNormalAtMode
        return at_mode(_without_enumerated(model), mode_init, init_scale=init_scale)
    guide = _autoguide(name, guide_model, init, init_scale, rank, num_flows, hidden_dim)
    guide.mode_init = mode_init  # ModeInit with its report, or None
    return guide


def _autoguide(name, model, init, init_scale, rank, num_flows, hidden_dim):
    if name == "meanfield":
        return autoguide.AutoNormal(model, init_loc_fn=init, init_scale=init_scale)
    if name == "fullrank":
        return autoguide.AutoMultivariateNormal(model, init_loc_fn=init, init_scale=init_scale)
    if name == "lowrank":
        kwargs = {} if rank is None else {"rank": check_int("rank", rank, minimum=1)}
        return autoguide.AutoLowRankMultivariateNormal(
            model, init_loc_fn=init, init_scale=init_scale, **kwargs
        )
    if name == "structured":
        return autoguide.AutoGaussian(model, init_loc_fn=init, init_scale=init_scale)
    if name == "flow":
        num_flows = check_int("num_flows", 2 if num_flows is None else num_flows, minimum=1)
        return autoguide.AutoNormalizingFlow(model, _iaf_layers(num_flows, hidden_dim))
    if name == "laplace":
        return autoguide.AutoLaplaceApproximation(model, init_loc_fn=init)
    return autoguide.AutoDelta(model, init_loc_fn=init)


def _is_enumerated(msg) -> bool:
    return msg["type"] == "sample" and not msg["is_observed"] and msg["infer"].get("enumerate") is not None


def _without_enumerated(model: Callable) -> Callable:
    """The model as the guide sees it: the sites it enumerates (``infer={"enumerate":
    ...}``, as ``config_enumerate`` marks them) hidden, since ``objective="enum"`` sums
    them out and the guide has no part in them (Pyro's advice, done for the user)."""
    return poutine.block(model, hide_fn=_is_enumerated)


def _iaf_layers(num_flows: int, hidden_dim: int | None):
    """``latent_dim -> transform``: ``num_flows`` affine autoregressive layers (Kingma et
    al. 2016) with reversed orderings between them."""
    from pyro.distributions.transforms import ComposeTransformModule, Permute, affine_autoregressive

    def build(dim: int):
        if dim < 2:
            raise ValueError("the flow guide needs at least 2 latent dimensions; use fullrank for one")
        hidden = hidden_dim or max(32, 2 * dim)
        parts = []
        for i in range(num_flows):
            if i:
                parts.append(Permute(torch.arange(dim - 1, -1, -1)))
            parts.append(affine_autoregressive(dim, hidden_dims=[hidden]))
        return ComposeTransformModule(parts)

    return build


# --------------------------------------------------------------------------- fitted guides


@dataclass(frozen=True)
class VIPosterior:
    """Draws from a fitted guide, with how far to trust them.

    Attributes:
        samples: ``{site: (1, num_draws, *shape)}`` (one "chain"), latent and
            deterministic sites, constrained.
        log_ratios: ``log p(x, z_s) - log q(z_s)`` per draw, ``(num_draws,)``.
        elbo: their mean: a Monte Carlo estimate of the ELBO (nats).
        psis: the Pareto-smoothed importance sampling result (``psis.khat``).
        khat: ``psis.khat`` (NaN for ``map``, a point estimate).
        message: what k-hat says, in words.
        inference_data: ``arviz.InferenceData`` with ``posterior``, ``sample_stats``
            (``log_importance_ratio``), ``log_likelihood`` and ``observed_data``.
        guide: the guide the draws came from (for ``laplace``, the Gaussian built at the
            mode).
    """

    samples: dict[str, np.ndarray]
    log_ratios: np.ndarray
    elbo: float
    psis: PSISResult | None
    khat: float
    message: str
    inference_data: Any
    guide: Any

    @property
    def importance_weights(self) -> np.ndarray:
        """Normalized Pareto-smoothed importance weights (reweight the draws with these)."""
        if self.psis is None:
            return np.full(len(self.log_ratios), 1.0 / len(self.log_ratios))
        return np.exp(self.psis.log_weights)


def _is_map(guide) -> bool:
    return isinstance(guide, autoguide.AutoDelta) and not isinstance(
        guide, autoguide.AutoLaplaceApproximation
    )


def vi_posterior(
    model: Callable,
    guide: Callable,
    args: tuple = (),
    kwargs: Mapping | None = None,
    *,
    num_draws: int = 1000,
    seed: int = 0,
    param_state: dict | None = None,
    vectorize: bool = True,
) -> VIPosterior:
    """Draw ``num_draws`` posterior samples from a fitted ``guide`` and diagnose it.

    Args:
        model, guide: the fitted pair.
        args, kwargs: the model's arguments (its data).
        num_draws: draws (>= 10 for k-hat).
        seed: seeds the draws.
        param_state: a param-store state to evaluate the guide in (``SVIResult.param_state``).
        vectorize: draw in batches of up to 500 inside an outer ``pyro.plate`` (much
            faster). The first draw is recomputed unbatched and must give the same
            log ratio; a model that does not broadcast over the extra dimension fails
            that check (or errors) and falls back, with a warning, to one draw at a time.

    Returns:
        A :class:`VIPosterior`.
    """
    num_draws = check_int("num_draws", num_draws, minimum=10)
    kwargs = dict(kwargs or {})
    store = pyro.get_param_store()
    scope = store.scope(param_state) if param_state is not None else contextlib.nullcontext()
    with scope, torch.random.fork_rng(devices=[]), pyro.validation_enabled(False), torch.no_grad():
        torch.manual_seed(seed)
        draw_guide = guide
        laplace_note = None
        if isinstance(guide, autoguide.AutoLaplaceApproximation):
            with torch.enable_grad():  # the Hessian at the mode
                draw_guide, laplace_note = laplace_approximation(guide, args, kwargs)
        draws = None
        joint = _summed_out(model, draw_guide, args, kwargs)
        if joint is not None:  # the model's own discrete sites: summed out, then drawn
            draws = _draws_enumerated(model, draw_guide, args, kwargs, num_draws, joint)
        elif vectorize:
            try:
                draws = _draws_vectorized(model, draw_guide, args, kwargs, num_draws)
            except _NotVectorizable as error:
                warnings.warn(
                    "the model does not broadcast over a batch of draws, so pgen draws from the guide one "
                    "draw at a time (slower, same draws). To batch them, write the model so that every "
                    "computation broadcasts over leading dimensions: e.g. (x * w).sum(-1) instead of x @ w, "
                    "and expand(...) / to_event(...) instead of fixed shapes; or pass vectorize=False to "
                    f"skip the attempt. (What failed: {error})",
                    RuntimeWarning,
                    stacklevel=2,
                )
        if draws is None:
            torch.manual_seed(seed)
            draws = _draws_sequential(model, draw_guide, args, kwargs, num_draws)
    latents, loglik, observed, ratios = draws
    samples = {k: np.asarray(v, dtype=np.float64)[None] for k, v in latents.items()}
    log_ratios = np.asarray(ratios, dtype=np.float64)
    if _is_map(guide):
        result, khat = None, float("nan")
        message = "MAP is a point estimate: it has no spread, and k-hat does not apply"
    elif not np.all(np.isfinite(log_ratios)):
        result, khat = None, float("inf")
        message = "some draws of the guide have zero posterior density: the guide's support is wrong"
    else:
        result = psis(log_ratios)
        khat, message = result.khat, result.message
    if laplace_note is not None:
        message = f"{message}. {laplace_note}"
    finite = log_ratios[np.isfinite(log_ratios)]
    elbo = float(finite.mean()) if len(finite) else float("nan")
    groups = {
        "posterior": samples,
        "sample_stats": {"log_importance_ratio": log_ratios[None]},
        "log_likelihood": {k: np.asarray(v, dtype=np.float64)[None] for k, v in loglik.items()},
        "observed_data": observed,
    }
    idata = to_inference_data(groups, attrs={"inference_library": "pgen", "method": type(guide).__name__})
    return VIPosterior(samples, log_ratios, elbo, result, float(khat), message, idata, draw_guide)


def laplace_approximation(guide, args: tuple, kwargs: Mapping):
    """The Gaussian ``N(MAP, H^{-1})`` of a fitted ``AutoLaplaceApproximation`` (as its
    ``laplace_approximation`` builds it), and ``None``; or, where the Hessian ``H`` of the
    negative log density at the MAP point is not positive definite (a saddle, or a
    funnel's neck, where the Laplace approximation does not exist and Pyro's Cholesky
    fails), a Gaussian from ``H`` with its eigenvalues replaced by their absolute values
    (at least 1e-6 of the largest; the idea of Betancourt's SoftAbs metric, 2013), and a
    sentence saying so, which is also warned."""
    from pyro.ops.hessian import hessian

    guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
    model_trace = poutine.trace(poutine.replay(guide.model, trace=guide_trace)).get_trace(*args, **kwargs)
    loss = guide_trace.log_prob_sum() - model_trace.log_prob_sum()
    h = hessian(loss, guide.loc)
    note = None
    with torch.no_grad():
        h = 0.5 * (h + h.T)
        eigenvalues, vectors = torch.linalg.eigh(h.double())
        if not bool(torch.isfinite(eigenvalues).all()):
            raise ValueError(
                "the Hessian of the negative log density at the MAP point is not finite, so there "
                "is no Laplace approximation; use another guide (fullrank, flow)"
            )
        if float(eigenvalues.min()) <= 0:
            sites = _sites_along(guide, vectors[:, 0])
            floor = 1e-6 * float(eigenvalues.abs().max())
            fixed = eigenvalues.abs().clamp(min=floor)
            note = (
                "Laplace: the Hessian at the MAP point is not positive definite (smallest "
                f"eigenvalue {float(eigenvalues.min()):.3g}, mostly along {sites}): the MAP point is a "
                "saddle or sits where the density keeps rising, as at a funnel's neck, so the Laplace "
                "approximation does not exist there. The Gaussian drawn from uses the Hessian's "
                "eigenvalues made positive; trust it only as far as k-hat says, or use fullrank or "
                "flow, or reparameterize the model"
            )
            warnings.warn(note, RuntimeWarning, stacklevel=3)
            h = (vectors * fixed) @ vectors.T
        cov = torch.linalg.inv(h.double())
        cov = (0.5 * (cov + cov.T)).to(guide.loc.dtype)
        scale = cov.diagonal().sqrt()
        corr = cov / scale[:, None] / scale[None, :]
        scale_tril = torch.linalg.cholesky(corr)
    gaussian = autoguide.AutoMultivariateNormal(guide.model)
    gaussian._setup_prototype(*args, **kwargs)
    del gaussian.loc, gaussian.scale, gaussian.scale_tril
    gaussian.register_buffer("loc", guide.loc.detach().clone())
    gaussian.register_buffer("scale", scale)
    gaussian.register_buffer("scale_tril", scale_tril)
    return gaussian, note


def _sites_along(guide, vector: torch.Tensor) -> str:
    """The latent sites that carry most of ``vector`` (an eigenvector of the Hessian)."""
    weights, start = {}, 0
    for name, shape in guide._unconstrained_shapes.items():
        size = int(np.prod(shape)) if len(shape) else 1
        weights[name] = float((vector[start : start + size] ** 2).sum())
        start += size
    top = sorted(weights, key=weights.get, reverse=True)
    return ", ".join(repr(n) for n in top[:2] if weights[n] > 0.1)


# --------------------------------------------------------------------------- drawing


_DRAWS = "_pgen_vi_draws"
_CHUNK = 500


class _NotVectorizable(Exception):
    """The model or guide does not broadcast over an extra leading batch dimension."""


def _draws_sequential(model, guide, args, kwargs, num_draws):
    """``(latents, loglik, observed, ratios)``, one guide and model trace per draw."""
    latents: dict[str, list] = {}
    loglik: dict[str, list] = {}
    observed: dict[str, np.ndarray] = {}
    ratios = []
    for _ in range(num_draws):
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
        ratios.append(float(model_trace.log_prob_sum() - guide_trace.log_prob_sum()))
        for name, site in _sample_sites(model_trace):
            if _is_observed(site):
                loglik.setdefault(name, []).append(observed_log_prob(site).cpu().numpy())
                observed[name] = site["value"].cpu().numpy()
            else:
                latents.setdefault(name, []).append(site["value"].detach().cpu().numpy())
    return latents, loglik, observed, ratios


def _summed_out(model, guide, args, kwargs):
    """An :class:`EnumeratedJoint` over the model's discrete sites that the guide leaves
    to it (fitted with ``objective="enum"``), or ``None``."""
    with torch.random.fork_rng(devices=[]):
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
    return EnumeratedJoint.of(model, args, kwargs, model_trace, exclude=set(guide_trace.nodes))


def _draws_enumerated(model, guide, args, kwargs, num_draws, joint):
    """``(latents, loglik, observed, ratios)`` for a model whose discrete sites the fit
    summed out: each ratio is ``log sum_d p(x, d, z) - log q(z)`` (what the enumerated
    ELBO averages), and ``d`` is then drawn from ``p(d | z, x)``. No pointwise
    log-likelihood: it would depend on the drawn ``d``."""
    latents: dict[str, list] = {}
    observed: dict[str, np.ndarray] = {}
    ratios = []
    for _ in range(num_draws):
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        values = {n: s["value"] for n, s in _sample_sites(guide_trace) if not s["is_observed"]}
        ratios.append(float(joint.log_prob(values) - guide_trace.log_prob_sum()))
        values.update(joint.draw(values))
        model_trace = poutine.trace(poutine.condition(model, data=values)).get_trace(*args, **kwargs)
        for name, site in _sample_sites(model_trace):
            if _is_observed(site) and name not in values:
                observed[name] = site["value"].cpu().numpy()
            else:
                latents.setdefault(name, []).append(site["value"].detach().cpu().numpy())
    return latents, {}, observed, ratios


def _sample_sites(trace):
    for name, site in trace.nodes.items():
        if site["type"] == "sample" and not isinstance(site["fn"], _Subsample):
            yield name, site


def _is_observed(site) -> bool:
    return site["is_observed"] and not site["infer"].get("_deterministic")


def _is_delta(fn) -> bool:
    """A (possibly wrapped) Delta: an autoguide's deterministic unpacking of its latent."""
    while fn is not None:
        if isinstance(fn, pyro.distributions.Delta):
            return True
        fn = getattr(fn, "base_dist", None)
    return False


def _per_draw(x: torch.Tensor, n: int, shape: torch.Size, name: str) -> torch.Tensor:
    """A batched value ``(n, 1.., *shape)`` or ``(1.., *shape)`` as ``(n, *shape)``."""
    numel = int(np.prod(shape)) if len(shape) else 1
    if x.numel() == numel:  # did not depend on the draw
        return x.reshape(shape).expand((n,) + tuple(shape))
    if x.numel() != n * numel or x.shape[0] != n:
        raise _NotVectorizable(
            f"site {name!r} has shape {tuple(x.shape)} with {n} batched draws of {tuple(shape)}"
        )
    return x.reshape((n,) + tuple(shape))


def _log_prob_per_draw(trace, n: int, draw_dim: int) -> torch.Tensor:
    """Each draw's total log density (scaled and masked, as ``log_prob_sum``), ``(n,)``."""
    total = torch.zeros(n, dtype=torch.float64)
    trace.compute_log_prob()
    for name, site in _sample_sites(trace):
        lp = torch.as_tensor(site["log_prob"]).double()
        if lp.dim() < -draw_dim:  # did not depend on the draw
            total = total + lp.sum()
            continue
        if lp.dim() > -draw_dim or lp.shape[0] not in (1, n):
            raise _NotVectorizable(f"site {name!r} has a log density of shape {tuple(lp.shape)}")
        total = total + lp.reshape(lp.shape[0], -1).sum(1)
    return total


def _draws_vectorized(model, guide, args, kwargs, num_draws):
    """As :func:`_draws_sequential`, in batches inside ``pyro.plate`` left of the model's
    plates, after checking one draw against an unbatched recomputation."""
    from ..eval.likelihood import _max_plate_nesting

    try:
        nesting = _max_plate_nesting(model, guide, args, kwargs)
        ref_guide = poutine.trace(guide).get_trace(*args, **kwargs)
        ref_model = poutine.trace(poutine.replay(model, trace=ref_guide)).get_trace(*args, **kwargs)
    except Exception as error:  # the sequential path will raise it with its own traceback
        raise _NotVectorizable(f"{type(error).__name__}: {error}") from error
    draw_dim = -(nesting + 1)
    guide_shapes = {name: site["value"].shape for name, site in _sample_sites(ref_guide)}
    model_sites = {name: site for name, site in _sample_sites(ref_model)}
    latents: dict[str, list] = {}
    loglik: dict[str, list] = {}
    observed = {name: s["value"].cpu().numpy() for name, s in model_sites.items() if _is_observed(s)}
    ratios = []
    first = True
    for start in range(0, num_draws, _CHUNK):
        n = min(_CHUNK, num_draws - start)
        plate = pyro.plate(_DRAWS, n, dim=draw_dim)
        try:
            guide_trace = poutine.trace(plate(guide)).get_trace(*args, **kwargs)
            model_trace = poutine.trace(poutine.replay(plate(model), trace=guide_trace)).get_trace(
                *args, **kwargs
            )
            ratio = _log_prob_per_draw(model_trace, n, draw_dim) - _log_prob_per_draw(
                guide_trace, n, draw_dim
            )
        except _NotVectorizable:
            raise
        except Exception as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise _NotVectorizable(f"{type(error).__name__}: {first_line}") from error
        if set(guide_shapes) != {k for k, _ in _sample_sites(guide_trace)} or set(model_sites) != {
            k for k, _ in _sample_sites(model_trace)
        }:
            raise _NotVectorizable("the batched traces have different sites")
        if first:
            _check_first_draw(model, guide, args, kwargs, guide_trace, guide_shapes, n, float(ratio[0]))
            first = False
        ratios.extend(ratio.tolist())
        for name, site in _sample_sites(model_trace):
            ref = model_sites[name]
            if _is_observed(site):
                lp = observed_log_prob(site)
                shape = ref["fn"].log_prob(ref["value"]).shape
                loglik.setdefault(name, []).extend(_per_draw(lp, n, shape, name).cpu().numpy())
            else:
                value = _per_draw(site["value"].detach(), n, ref["value"].shape, name)
                latents.setdefault(name, []).extend(value.cpu().numpy())
    return latents, loglik, observed, ratios


def _check_first_draw(model, guide, args, kwargs, guide_trace, guide_shapes, n, batched_ratio):
    """Recompute draw 0 unbatched: condition the guide on its non-deterministic sites'
    values (its Delta sites, the unpacked latents, are recomputed from them) and replay
    the model; the log ratio must equal the batched one."""
    values = {}
    for name, site in _sample_sites(guide_trace):
        if not _is_delta(site["fn"]):
            values[name] = _per_draw(site["value"].detach(), n, guide_shapes[name], name)[0]
    one_guide = poutine.trace(poutine.condition(guide, data=values)).get_trace(*args, **kwargs)
    one_model = poutine.trace(poutine.replay(model, trace=one_guide)).get_trace(*args, **kwargs)
    single = float(one_model.log_prob_sum() - one_guide.log_prob_sum())
    if not abs(single - batched_ratio) <= 1e-3 + 1e-4 * abs(single):
        raise _NotVectorizable(
            f"the first draw's log ratio is {batched_ratio:.6g} batched but {single:.6g} unbatched: "
            "the model does not broadcast over a leading batch dimension"
        )
