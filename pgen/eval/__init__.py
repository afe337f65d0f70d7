"""Evaluation: importance-sampled log-likelihood, per-example ELBO, bits per dimension,
outlier detection from likelihood (AUROC), and sample-quality distances."""

from .likelihood import bits_per_dim, elbo, log_likelihood, log_weights
from .outliers import CORRUPTIONS, auroc, corrupt, likelihood_auroc
from .quality import frechet_distance, nearest_neighbour_distance

__all__ = [
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
