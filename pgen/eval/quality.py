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
* :func:`precision_recall` (Kynkäänniemi et al. 2019): each set's manifold is the union
  of balls around its points, of radius the distance to the point's k-th nearest
  neighbour in its own set; precision is the fraction of samples inside the data's
  manifold (quality), recall the fraction of data inside the samples' (diversity).
* :func:`density_coverage` (Naeem et al. 2020): density counts how many data balls each
  sample falls in, divided by k (about 1 when samples are distributed as the data, and
  not fooled by outliers in the data the way precision is); coverage is the fraction of
  data balls that hold at least one sample.
* :func:`inception_score`: :math:`\exp \mathbb E_x \mathrm{KL}(p(y|x) \,\|\, p(y))`
  from a classifier's class probabilities of the samples (Salimans et al. 2016), between
  1 and the number of classes.
* :func:`memorization`: the distance of each sample to its nearest *training* example,
  against the same distance for held-out examples (new data from the same source): a
  model that copies its training set puts samples much closer than new data falls.

All take features as ``(N, D)`` arrays or tensors: pixels, or the features of a network
trained on the data (:mod:`pgen.eval.features`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..checks import check_int

__all__ = [
    "frechet_distance",
    "nearest_neighbour_distance",
    "precision_recall",
    "density_coverage",
    "inception_score",
    "memorization",
    "Memorization",
    "mode_coverage",
]


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


def _pair(samples, reference) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = _as_2d(samples, "samples"), _as_2d(reference, "reference")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"samples have {a.shape[1]} features but reference has {b.shape[1]}")
    return torch.from_numpy(a), torch.from_numpy(b)


def _kth_neighbour_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each point to its k-th nearest other point of the same set."""
    if k >= len(x):
        raise ValueError(f"k={k} needs more than k points in each set; got {len(x)}")
    d = torch.cdist(x, x)
    return d.kthvalue(k + 1, dim=1).values  # the 1st is the point itself, at 0


def precision_recall(samples, reference, *, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019; module docstring):
    ``(precision, recall)``, each in [0, 1]. ``reference`` is the data."""
    k = check_int("k", k, minimum=1)
    fake, real = _pair(samples, reference)
    real_r, fake_r = _kth_neighbour_radius(real, k), _kth_neighbour_radius(fake, k)
    d = torch.cdist(fake, real)  # (samples, data)
    precision = (d <= real_r[None, :]).any(1).double().mean()
    recall = (d.T <= fake_r[None, :]).any(1).double().mean()
    return float(precision), float(recall)


def density_coverage(samples, reference, *, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020; module docstring): ``(density,
    coverage)``; density is about 1 for samples distributed as the data, coverage in
    [0, 1]. ``reference`` is the data."""
    k = check_int("k", k, minimum=1)
    fake, real = _pair(samples, reference)
    inside = torch.cdist(fake, real) <= _kth_neighbour_radius(real, k)[None, :]  # (samples, data)
    density = inside.double().sum() / (k * len(fake))
    coverage = inside.any(0).double().mean()
    return float(density), float(coverage)


def inception_score(probs) -> float:
    r""":math:`\exp \mathbb E_x \mathrm{KL}(p(y|x) \| p(y))` of class probabilities
    ``(N, classes)`` (rows summing to 1), :math:`p(y)` their mean."""
    p = torch.as_tensor(
        np.asarray(probs.detach().cpu() if torch.is_tensor(probs) else probs), dtype=torch.float64
    )
    if p.ndim != 2 or len(p) < 1 or not torch.isfinite(p).all() or bool((p < 0).any()):
        raise ValueError(
            f"probs must be a finite, non-negative (N, classes) array; got shape {tuple(p.shape)}"
        )
    if not torch.allclose(p.sum(1), torch.ones(len(p), dtype=p.dtype), atol=1e-4):
        raise ValueError("each row of probs must sum to 1 (class probabilities of one sample)")
    marginal = p.mean(0, keepdim=True)
    kl = torch.where(p > 0, p * (p.clamp_min(1e-300).log() - marginal.clamp_min(1e-300).log()), 0.0).sum(1)
    return float(kl.mean().exp())


@dataclass(frozen=True)
class Memorization:
    """What :func:`memorization` measured.

    Attributes:
        ratio: the median distance of samples to their nearest training example over
            that of held-out examples (about 1 for a model that does not copy; near 0
            for one that does).
        copies: the fraction of samples closer to a training example than all but 1% of
            held-out examples are (about 0.01 without copying).
        sample_distances, held_out_distances: the distances themselves.
    """

    ratio: float
    copies: float
    sample_distances: np.ndarray
    held_out_distances: np.ndarray


def memorization(samples, train, held_out) -> Memorization:
    """Distances to the nearest training example, of samples and of held-out data
    (module docstring)."""
    fake, tr = _pair(samples, train)
    held, _ = _pair(held_out, train)
    d_fake = torch.cdist(fake, tr).min(1).values.numpy()
    d_held = torch.cdist(held, tr).min(1).values.numpy()
    threshold = np.quantile(d_held, 0.01)
    median_held = float(np.median(d_held))
    ratio = float(np.median(d_fake)) / median_held if median_held > 0 else float("nan")
    return Memorization(ratio, float((d_fake <= threshold).mean()), d_fake, d_held)


def mode_coverage(
    samples, centres, sd: float, *, k: float = 3.0, min_share: float = 0.2
) -> tuple[int, float]:
    """Modes covered and the high-quality fraction of ``samples`` of a mixture with known
    ``centres`` ``(M, D)`` and component standard deviation ``sd`` (the measurement of the
    mode-collapse literature, e.g. Srivastava et al. 2017 on the ring of 8 Gaussians): a
    sample is of high quality when it lies within ``k`` sd of its nearest centre; a mode
    is covered when it holds at least ``min_share`` of its equal share (``N / M``) of the
    high-quality samples. Returns ``(modes covered, high-quality fraction)``."""
    fake, c = _pair(samples, centres)
    d = torch.cdist(fake, c)
    nearest = d.min(1)
    good = nearest.values <= k * sd
    counts = torch.bincount(nearest.indices[good], minlength=len(c))
    covered = int((counts >= min_share * len(fake) / len(c)).sum())
    return covered, float(good.double().mean())
