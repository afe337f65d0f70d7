"""What went wrong, in words: a model/guide pair that does not match, and the first
site where a failed step went non-finite."""

from __future__ import annotations

import pyro
import torch
from pyro import poutine
from pyro.poutine.util import prune_subsample_sites

__all__ = [
    "check_callables",
    "check_pair",
    "diagnose_nonfinite",
    "explain_site_shape",
    "nonfinite_parameters",
]


def _unimplemented_forward(obj) -> bool:
    return isinstance(obj, torch.nn.Module) and type(obj).forward is torch.nn.Module.forward


def check_callables(model, guide) -> None:
    """``model`` and ``guide`` must be callables; a module passed instead of its method
    (``pgen.fit(vae, ...)``) is named with the fix."""
    for role, fn in (("model", model), ("guide", guide)):
        if _unimplemented_forward(fn):
            name = type(fn).__name__
            raise TypeError(
                f"{role} is a {name} object, not a function: pass its methods, e.g. "
                f"pgen.fit(m.model, m.guide, x) for m = {name}(...)"
            )
    if not callable(model) or not callable(guide):
        raise TypeError("model and guide must be callables, e.g. vae.model and vae.guide")


def _sample_sites(trace) -> dict:
    return {name: site for name, site in trace.nodes.items() if site["type"] == "sample"}


def check_pair(model_trace, guide_trace, *, has_data: bool, enumerates: bool) -> None:
    """Raise ``ValueError`` naming the sites where model and guide do not match.

    * every latent (unobserved) site of the model needs a guide site of the same name,
      except sites the model enumerates itself (``infer={"enumerate": ...}`` with an
      enumerating objective);
    * every guide site must be a latent site of the model (``infer={"is_auxiliary":
      True}`` marks the exceptions);
    * with data, the model must observe something (``obs=`` or ``pyro.factor``): without
      an observed site a fit trains the prior and ignores the data.
    """
    model_sites = _sample_sites(prune_subsample_sites(model_trace))
    guide_sites = _sample_sites(prune_subsample_sites(guide_trace))
    latent = {n for n, s in model_sites.items() if not s["is_observed"]}
    enumerated = {n for n in latent if enumerates and model_sites[n]["infer"].get("enumerate")}
    missing = sorted(latent - set(guide_sites) - enumerated)
    if missing:
        raise ValueError(
            f"the guide has no site for the model's latent site(s) {missing}: each unobserved "
            "pyro.sample site of the model needs a site of the same name in the guide (or, "
            "for a discrete site, infer={'enumerate': 'parallel'} and objective='enum')"
        )
    extra = sorted(
        n
        for n, s in guide_sites.items()
        if n not in latent and not s["infer"].get("is_auxiliary") and n not in model_sites
    )
    observed_in_guide = sorted(n for n in guide_sites if n in model_sites and model_sites[n]["is_observed"])
    if extra or observed_in_guide:
        what = []
        if extra:
            what.append(f"site(s) {extra} that the model does not have")
        if observed_in_guide:
            what.append(f"site(s) {observed_in_guide} that the model observes")
        raise ValueError(
            "the guide samples " + " and ".join(what) + ": the objective would not be a bound "
            "on the model's evidence. Name the guide's sites after the model's latent sites "
            "(mark a deliberate auxiliary site with infer={'is_auxiliary': True})"
        )
    if has_data and not any(s["is_observed"] for s in model_sites.values()):
        raise ValueError(
            "the model observes nothing: no pyro.sample(..., obs=...) or pyro.factor site. "
            "Fitting it would fit its prior and ignore the data; pass the data to the "
            "model's observed site (e.g. pyro.sample('obs', dist, obs=x))"
        )


def _uncovered_dims(site) -> list[tuple[int, int]]:
    """``(dim, size)`` of each batch dimension of a sample site, larger than 1, that no
    vectorized ``pyro.plate`` of the site covers (dims count from the right, as plates')."""
    plates = {f.dim: f.size for f in site["cond_indep_stack"] if f.vectorized and f.dim is not None}
    shape = tuple(getattr(site["fn"], "batch_shape", ()))
    return [
        (dim, size)
        for dim, size in zip(range(-len(shape), 0), shape, strict=True)
        if size > 1 and dim not in plates
    ]


def explain_site_shape(model_trace, guide_trace) -> str | None:
    """Say in words which site needs a plate or ``.to_event``, for Pyro's "invalid log_prob
    shape": a site whose distribution has batch dimensions no ``pyro.plate`` covers, as
    models written for NUTS often have (``dist.Normal(torch.zeros(2), 1.)`` with no plate).
    MCMC sums every log-density and never asks; the ELBO needs to know which dimensions
    are independent copies (plates) and which are one vector-valued draw (event dims).
    ``None`` when no site has such a dimension."""
    for role, trace in (("model", model_trace), ("guide", guide_trace)):
        for name, site in prune_subsample_sites(trace).nodes.items():
            if site["type"] != "sample":
                continue
            bad = _uncovered_dims(site)
            if not bad:
                continue
            fn = site["fn"]
            shape = list(fn.batch_shape)
            dims = ", ".join(f"dim {d} (size {n})" for d, n in bad)
            first_dim, first_size = bad[0]
            plates = {f.dim for f in site["cond_indep_stack"] if f.vectorized}
            trailing = -first_dim
            if any(d in plates for d in range(first_dim, 0)):  # a plate lies right of it
                as_event = ""
            else:
                as_event = (
                    f"if the entries are one vector-valued draw, write the distribution as "
                    f"{type(fn).__name__}(...).to_event({trailing}) (its log-density summed over "
                    "them); "
                )
            return (
                f"{role} site {name!r} has a {type(fn).__name__} of batch shape {shape}, and no "
                f"pyro.plate covers its {dims}. Pyro's variational objectives need every batch "
                f"dimension of a site declared: {as_event}if they are independent copies, sample "
                "the site "
                f"inside `with pyro.plate({name + '_plate'!r}, {first_size}, dim={first_dim}):`. "
                "(MCMC sums every log-density and does not need this.)"
            )
    return None


def _unwrap(fn):
    while fn is not None:
        yield fn
        fn = getattr(fn, "base_dist", None)


def _count_nonfinite(t) -> int:
    if torch.is_tensor(t) and t.is_floating_point():
        return int((~torch.isfinite(t)).sum())
    return 0


def _site_problem(site) -> str | None:
    for d in _unwrap(site["fn"]):
        for pname in getattr(d, "arg_constraints", {}):
            bad = _count_nonfinite(d.__dict__.get(pname))
            if bad:
                return f"parameter {pname!r} of its {type(d).__name__} has {bad} non-finite value(s)"
    bad = _count_nonfinite(site["value"])
    if bad:
        return f"its value has {bad} non-finite entries"
    try:
        log_p = site["fn"].log_prob(site["value"])
    except (ValueError, RuntimeError) as error:
        return f"log_prob raised {type(error).__name__}: {error}"
    bad = _count_nonfinite(log_p)
    if bad:
        first = log_p[~torch.isfinite(log_p)].reshape(-1)[0].item()
        return (
            f"its log_prob is {first} for {bad} of {log_p.numel()} entries (a value outside "
            "the support, or a degenerate density such as a zero scale)"
        )
    return None


def nonfinite_parameters(named_params, *, grads: bool = False) -> list[str]:
    """Names of the parameters (or, with ``grads``, of the gradients) holding NaN or inf."""
    out = []
    for name, p in named_params:
        t = p.grad if grads else p.detach()
        if t is not None and _count_nonfinite(t):
            out.append(name)
    return out


def _shown(names: list[str]) -> str:
    return ", ".join(repr(b) for b in names[:3]) + (" ..." if len(names) > 3 else "")


def diagnose_nonfinite(model, guide, args, kwargs, rng_state, named_params) -> str:
    """Re-run a failed step with its random numbers and say where it went non-finite."""
    bad = nonfinite_parameters(named_params)
    if bad:
        return (
            f"parameter(s) {_shown(bad)} hold non-finite values (a non-finite gradient at the "
            "step before; clip_norm catches that at its own step)"
        )
    bad_grads = nonfinite_parameters(named_params, grads=True)
    if model is None:
        return "no single site holds a non-finite value"
    with torch.random.fork_rng(devices=[]), torch.no_grad(), pyro.validation_enabled(False):
        torch.set_rng_state(rng_state)
        try:
            guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
            model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
        except Exception as error:  # report whatever re-running the step raised
            return f"re-running the step raised {type(error).__name__}: {error}"
    for where, trace in (("guide", guide_trace), ("model", model_trace)):
        for name, site in prune_subsample_sites(trace).nodes.items():
            if site["type"] == "sample":
                problem = _site_problem(site)
                if problem:
                    return f"{where} site {name!r}: {problem}"
    if bad_grads:
        return (
            f"the gradient of parameter(s) {_shown(bad_grads)} is non-finite while the loss is "
            "finite (e.g. the derivative of sqrt or log at 0, or an overflow in the backward pass)"
        )
    return "no single site holds a non-finite value; it arose in the loss arithmetic"
