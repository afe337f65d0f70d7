"""From raw chains to results: constrained draws, the model's observed and
deterministic sites re-computed at every draw, and the ArviZ groups."""

from __future__ import annotations

import numpy as np
import pyro
import torch
from pyro import poutine

from ...devices import device_of
from ..sites import observed_log_prob

__all__ = ["constrain", "pointwise", "model_sites", "discrete_draws"]


def constrain(params: dict[str, np.ndarray], transforms: dict, device=None) -> dict[str, np.ndarray]:
    """Unconstrained draws -> constrained; ``transforms`` map constrained -> unconstrained
    (Pyro's convention), so their inverses are applied, on ``device`` (where the
    transforms' own tensors, such as an interval's bounds, live)."""
    out = {}
    for name, value in params.items():
        t = transforms.get(name)
        tensor = torch.from_numpy(np.ascontiguousarray(value)).to(device or "cpu")
        with torch.no_grad():
            out[name] = (t.inv(tensor) if t is not None else tensor).cpu().numpy().astype(np.float64)
    return out


def pointwise(model, samples, dtypes, args, kwargs, observed, deterministic, *, predictive: bool, seed: int):
    """Re-run the model at every draw. Returns ``(per_observed, per_deterministic)``:
    the observed sites' pointwise log-likelihood (or, with ``predictive``, fresh draws of
    them from the posterior predictive), and the values of ``pyro.deterministic`` sites."""
    chains, n = next(iter(samples.values())).shape[:2]
    device = device_of(args, kwargs)
    out: dict[str, list] = {name: [] for name in observed}
    det: dict[str, list] = {name: [] for name in deterministic}
    fn = poutine.uncondition(model) if predictive else model
    with torch.random.fork_rng(devices=[]), torch.no_grad(), pyro.validation_enabled(False):
        torch.manual_seed(seed)
        for c in range(chains):
            for s in range(n):
                values = {
                    k: torch.as_tensor(v[c, s], dtype=dtypes.get(k), device=device)
                    for k, v in samples.items()
                }
                trace = poutine.trace(poutine.condition(fn, data=values)).get_trace(*args, **kwargs)
                for name in observed:
                    site = trace.nodes[name]
                    value = site["value"] if predictive else observed_log_prob(site)
                    out[name].append(value.detach().cpu().numpy())
                for name in deterministic:
                    det[name].append(trace.nodes[name]["value"].detach().cpu().numpy())

    def stack(d):
        return {k: np.asarray(v, dtype=np.float64).reshape(chains, n, *np.shape(v[0])) for k, v in d.items()}

    return stack(out), stack(det)


def model_sites(model, args, kwargs, trace=None) -> tuple[dict, dict, list]:
    """The model's observed sites (their values), the dtype of every sample site, and
    its ``pyro.deterministic`` sites, from ``trace`` (a trace of the model that worked,
    such as the potential's prototype) or else from one trace in a forked random state."""
    if trace is None:
        with torch.random.fork_rng(devices=[]):
            trace = poutine.trace(model).get_trace(*args, **kwargs)
    sites = {n: s for n, s in trace.nodes.items() if s["type"] == "sample"}
    observed = {
        n: s["value"].detach()
        for n, s in sites.items()
        if s["is_observed"] and not s["infer"].get("_deterministic")
    }
    dtypes = {n: s["value"].dtype for n, s in sites.items()}
    deterministic = [n for n, s in sites.items() if s["infer"].get("_deterministic")]
    return observed, dtypes, deterministic


def discrete_draws(potential, samples: dict, seed: int) -> dict[str, np.ndarray]:
    """The enumerated discrete sites, one draw from their conditional at every draw of
    the continuous ones (``(chain, draw, ...)``), in a forked random state seeded by
    ``seed``."""
    chains, n = next(iter(samples.values())).shape[:2]
    dtypes = {name: potential.prototype.nodes[name]["value"].dtype for name in samples}
    device = potential.device
    out: dict[str, list] = {name: [] for name in potential.enumerated}
    with torch.random.fork_rng(devices=[]), torch.no_grad(), pyro.validation_enabled(False):
        torch.manual_seed(seed)
        for c in range(chains):
            for s in range(n):
                values = {
                    k: torch.as_tensor(v[c, s], dtype=dtypes[k], device=device) for k, v in samples.items()
                }
                for name, value in potential.summed.draw(values).items():
                    out[name].append(value.cpu().numpy())
    return {k: np.asarray(v).reshape(chains, n, *np.shape(v[0])) for k, v in out.items()}
