"""ArviZ ``InferenceData`` from arrays, on either ArviZ line.

Both engines build their output here with ``arviz.from_dict``: ArviZ 0.x takes the
groups as keyword arguments (``posterior=..., sample_stats=...``), ArviZ 1.x takes one
dict of groups. :func:`to_inference_data` detects which and calls it accordingly.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

import numpy as np

__all__ = ["to_inference_data", "flat_parameters"]

GROUPS = (
    "posterior",
    "sample_stats",
    "log_likelihood",
    "posterior_predictive",
    "observed_data",
    "constant_data",
    "prior",
)


def to_inference_data(groups: Mapping[str, Mapping[str, np.ndarray]], *, attrs: Mapping | None = None):
    """Build an ``arviz.InferenceData``.

    Args:
        groups: ``{group: {variable: array}}``; arrays of sampled groups are shaped
            ``(chain, draw, *shape)``, ``observed_data``/``constant_data`` arrays have no
            sample dimensions. Empty groups are left out.
        attrs: attributes stored on every group (e.g. the engine that made it).

    Returns:
        ``arviz.InferenceData``.
    """
    import arviz as az

    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        raise ValueError(f"unknown InferenceData group(s) {unknown}; allowed: {', '.join(GROUPS)}")
    clean = {g: {k: np.asarray(v) for k, v in d.items()} for g, d in groups.items() if d}
    params = inspect.signature(az.from_dict).parameters
    if "posterior" in params:  # ArviZ 0.x: groups as keywords
        return az.from_dict(**clean, attrs=dict(attrs or {}))
    return az.from_dict(clean, attrs=dict(attrs or {}))  # ArviZ 1.x: one dict of groups


def flat_parameters(samples: Mapping[str, np.ndarray], sample_dims: int = 2) -> dict[str, np.ndarray]:
    """Split each site into scalar parameters: ``{"b": (C, S, 3)}`` ->
    ``{"b[0]": (C, S), "b[1]": ..., "b[2]": ...}``; scalar sites keep their name."""
    out = {}
    for name, value in samples.items():
        value = np.asarray(value)
        shape = value.shape[sample_dims:]
        if not shape:
            out[name] = value
            continue
        flat = value.reshape(*value.shape[:sample_dims], -1)
        for j, index in enumerate(np.ndindex(*shape)):
            out[f"{name}[{','.join(str(i) for i in index)}]"] = flat[..., j]
    return out
