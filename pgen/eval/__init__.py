"""Evaluation: importance-sampled log-likelihood, per-example ELBO, bits per dimension."""

from .likelihood import bits_per_dim, elbo, log_likelihood, log_weights

__all__ = ["log_likelihood", "elbo", "log_weights", "bits_per_dim"]
