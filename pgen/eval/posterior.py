r"""How close draws are to a reference posterior: the distances :func:`pgen.compare`
reports.

* :func:`wasserstein1`: W1 between two 1-D samples,
  :math:`\int_0^1 |F_a^{-1}(u) - F_b^{-1}(u)|\,du`;
* :func:`energy_distance`: Székely & Rizzo's (2013) energy distance between samples,
  zero iff the distributions agree, which sees wrong correlations the marginals miss;
* :func:`against_reference`: the per-parameter and joint table of one method.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["wasserstein1", "energy_distance", "against_reference"]


def wasserstein1(a: np.ndarray, b: np.ndarray, grid: int = 1000) -> float:
    """W1 between two 1-D samples: the mean absolute difference of their quantile
    functions on ``grid`` midpoints of (0, 1)."""
    u = (np.arange(grid) + 0.5) / grid
    return float(np.mean(np.abs(np.quantile(a, u) - np.quantile(b, u))))


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    r""":math:`2E\|X - Y\| - E\|X - X'\| - E\|Y - Y'\|` between samples ``(n, d)`` and
    ``(m, d)`` (V-statistic); zero iff the distributions agree."""
    x = torch.as_tensor(np.asarray(x, dtype=np.float64))
    y = torch.as_tensor(np.asarray(y, dtype=np.float64))
    xy = torch.cdist(x, y).mean()
    xx = torch.cdist(x, x).mean()
    yy = torch.cdist(y, y).mean()
    return float(2 * xy - xx - yy)


def _subsample(x: np.ndarray, n: int, rng) -> np.ndarray:
    return x if len(x) <= n else x[rng.choice(len(x), n, replace=False)]


def against_reference(
    draws: dict[str, np.ndarray], ref: dict[str, np.ndarray], rng
) -> tuple[list[dict], dict]:
    """Per parameter (pooled 1-D draws by name): mean, sd, standardized mean error, sd
    ratio, W1 in reference sds and the share inside the reference's central 50%/90%
    intervals; jointly: the energy distance of the standardized draws (at most 1,000 of
    each, drawn with ``rng``)."""
    rows = []
    names = [p for p in ref if p in draws]
    for p in names:
        a, r = draws[p], ref[p]
        ref_mean, ref_sd = float(r.mean()), float(r.std(ddof=1))
        scale = ref_sd if ref_sd > 0 else 1.0
        lo50, hi50, lo90, hi90 = np.quantile(r, [0.25, 0.75, 0.05, 0.95])
        sd = float(a.std(ddof=1)) if len(a) > 1 else 0.0
        rows.append(
            {
                "parameter": p,
                "mean": float(a.mean()),
                "sd": sd,
                "ref_mean": ref_mean,
                "ref_sd": ref_sd,
                "sme": (float(a.mean()) - ref_mean) / scale,
                "sd_ratio": sd / scale,
                "w1": wasserstein1(a, r) / scale,
                "coverage50": float(np.mean((a >= lo50) & (a <= hi50))),
                "coverage90": float(np.mean((a >= lo90) & (a <= hi90))),
            }
        )
    mean = np.array([ref[p].mean() for p in names])
    sd = np.array([ref[p].std(ddof=1) or 1.0 for p in names])
    x = (np.stack([draws[p] for p in names], 1) - mean) / sd
    y = (np.stack([ref[p] for p in names], 1) - mean) / sd
    joint = {"energy": energy_distance(_subsample(x, 1000, rng), _subsample(y, 1000, rng))}
    return rows, joint
