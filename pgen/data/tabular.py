"""Small tabular data sets for Bayesian models, from packages or the literature.

* :func:`breast_cancer`: scikit-learn's Wisconsin breast-cancer data (569 tumours, 30
  features, label 1 = benign), ``pip install pgen[data]``; features standardized.
* :func:`eight_schools`: the SAT coaching experiments of Rubin (1981): estimated effects
  and their standard errors in eight schools.
* :func:`synthetic_regression`: a seeded linear-regression set with uncentred
  covariates (a strongly correlated posterior).
"""

from __future__ import annotations

import numpy as np
import torch

from ..checks import check_float, check_int

__all__ = ["breast_cancer", "eight_schools", "synthetic_regression", "EIGHT_SCHOOLS_Y", "EIGHT_SCHOOLS_SIGMA"]

# Rubin (1981), Table 2; Gelman et al., Bayesian Data Analysis, section 5.5
EIGHT_SCHOOLS_Y = (28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0)
EIGHT_SCHOOLS_SIGMA = (15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0)


def breast_cancer(standardize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)``: 569 x 30 float features (each standardized to mean 0, sd 1 unless
    ``standardize=False``) and 0/1 float labels (1 = benign)."""
    try:
        from sklearn.datasets import load_breast_cancer
    except ImportError as error:  # pragma: no cover - exercised without the extra
        raise ImportError(
            "the breast-cancer data ships with scikit-learn: pip install 'pgen[data]'"
        ) from error
    data = load_breast_cancer()
    x = np.asarray(data.data, dtype=np.float64)
    if standardize:
        x = (x - x.mean(0)) / x.std(0)
    dtype = torch.get_default_dtype()
    return torch.tensor(x, dtype=dtype), torch.tensor(data.target, dtype=dtype)


def eight_schools() -> tuple[torch.Tensor, torch.Tensor]:
    """``(sigma, y)``: the standard errors and estimated coaching effects of 8 schools."""
    dtype = torch.get_default_dtype()
    return torch.tensor(EIGHT_SCHOOLS_SIGMA, dtype=dtype), torch.tensor(EIGHT_SCHOOLS_Y, dtype=dtype)


def synthetic_regression(
    n: int = 50, dim: int = 3, *, offset: float = 3.0, noise: float = 1.0, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x, y, true_weights)``: ``x ~ N(offset, 1)`` (uncentred, so the intercept and the
    weights are strongly correlated a posteriori), ``y = 1 + x w + noise * e``."""
    n = check_int("n", n, minimum=1)
    dim = check_int("dim", dim, minimum=1)
    noise = check_float("noise", noise, positive=True)
    g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    dtype = torch.get_default_dtype()
    x = offset + torch.randn(n, dim, generator=g, dtype=dtype)
    w = torch.randn(dim, generator=g, dtype=dtype)
    y = 1.0 + x @ w + noise * torch.randn(n, generator=g, dtype=dtype)
    return x, y, w
