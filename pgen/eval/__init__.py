"""Evaluation: importance-sampled log-likelihood, per-example ELBO, bits per dimension,
and outlier detection from likelihood (AUROC)."""

from .likelihood import bits_per_dim, elbo, log_likelihood, log_weights
from .outliers import CORRUPTIONS, auroc, corrupt, likelihood_auroc

__all__ = [
    "log_likelihood",
    "elbo",
    "log_weights",
    "bits_per_dim",
    "auroc",
    "corrupt",
    "likelihood_auroc",
    "CORRUPTIONS",
]
