"""Evaluation: importance-sampled log-likelihood, per-example ELBO, bits per dimension,
outlier detection from likelihood (AUROC), and sample-quality distances."""

from .likelihood import bits_per_dim, elbo, log_likelihood, log_weights
from .outliers import CORRUPTIONS, auroc, corrupt, likelihood_auroc
from .quality import (
    Memorization,
    density_coverage,
    frechet_distance,
    inception_score,
    memorization,
    nearest_neighbour_distance,
    precision_recall,
)

__all__ = [
    "precision_recall",
    "density_coverage",
    "inception_score",
    "memorization",
    "Memorization",
    "log_likelihood",
    "elbo",
    "log_weights",
    "bits_per_dim",
    "auroc",
    "corrupt",
    "likelihood_auroc",
    "CORRUPTIONS",
    "frechet_distance",
    "nearest_neighbour_distance",
]
