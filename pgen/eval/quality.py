r"""Sample quality without a likelihood: distances between a set of samples and held-out
data.

* :func:`frechet_distance`: fit a Gaussian to each set and compute the Fréchet (2-Wasserstein)
  distance between them,

  .. math:: d^2 = \|\mu_1 - \mu_2\|^2 + \mathrm{tr}\big(\Sigma_1 + \Sigma_2 - 2(\Sigma_1^{1/2}
     \Sigma_2 \Sigma_1^{1/2})^{1/2}\big),

  the formula of FID (Heusel et al. 2017), here on raw features (pixels) rather than on
  an Inception network's, which pgen cannot download. Compare values only between
  models on the same data.
* :func:`nearest_neighbour_distance`: the mean Euclidean distance from each sample to its
  nearest held-out example: small when samples lie on the data (and, taken against the
  *training* set, very small when a model memorizes it).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["frechet_distance", "nearest_neighbour_distance"]


def _as_2d(x, name: str) -> np.ndarray:
    a = np.asarray(x.detach().cpu() if torch.is_tensor(x) else x, dtype=np.float64)
    if a.ndim != 2 or len(a) < 2 or not np.isfinite(a).all():
        raise ValueError(f"{name} must be a finite (N, D) array with N >= 2; got shape {a.shape}")
    return a


def _sqrtm_psd(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(samples, reference) -> float:
    """Squared Fréchet distance between Gaussians fitted to ``samples`` and ``reference``
    (both ``(N, D)``, the same D)."""
    a, b = _as_2d(samples, "samples"), _as_2d(reference, "reference")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"samples have {a.shape[1]} features but reference has {b.shape[1]}")
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root = _sqrtm_psd(s1)
    cross = _sqrtm_psd(root @ s2 @ root)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(cross))


def nearest_neighbour_distance(samples, reference) -> float:
    """Mean Euclidean distance from each sample to its nearest reference example."""
    a, b = _as_2d(samples, "samples"), _as_2d(reference, "reference")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"samples have {a.shape[1]} features but reference has {b.shape[1]}")
    d = torch.cdist(torch.from_numpy(a), torch.from_numpy(b))
    return float(d.min(1).values.mean())
