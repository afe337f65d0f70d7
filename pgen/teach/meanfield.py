r"""Coordinate-ascent mean field on a model small enough to enumerate.

The notes' mean-field update: with :math:`q(x) = \prod_j q_j(x_j)`, the best
:math:`q_j` with the others fixed is

.. math::
    q_j(x_j) \propto \exp\big(\mathbb E_{q_{-j}}[\log \tilde p(x)]\big).

For the binary pairwise model (Ising / fully visible Boltzmann machine) with spins
:math:`x \in \{-1, 1\}^d`, :math:`\log \tilde p(x) = b^\top x + \tfrac12 x^\top W x`
(symmetric :math:`W`, zero diagonal), the expectation is linear in :math:`x_j`, so
:math:`q_j(x_j = 1) = \sigma(2 (b_j + \sum_i W_{ji} \mu_i))` and the mean
:math:`\mu_j = \tanh(b_j + \sum_i W_{ji} \mu_i)`. Each update maximizes the ELBO over
:math:`q_j`, so the ELBO

.. math::
    \mathcal L(q) = \mathbb E_q[\log \tilde p(x)] + \mathcal H(q)
    = b^\top \mu + \tfrac12 \mu^\top W \mu + \sum_j \mathcal H(q_j) \le \log Z

never decreases, and stays below the exact :math:`\log Z`, here computed by summing
over all :math:`2^d` states.

References:
    Wainwright & Jordan (2008), Graphical Models, Exponential Families, and
    Variational Inference, section 5.
    Blei, Kucukelbir & McAuliffe (2017), Variational Inference: A Review for
    Statisticians (CAVI).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from ..checks import check_int

__all__ = ["MeanFieldRun", "mean_field_ising", "ising_log_z", "ising_elbo", "random_ising"]

MAX_ENUMERATE = 20


def _check(weights, bias):
    w = torch.as_tensor(weights, dtype=torch.float64)
    b = torch.as_tensor(bias, dtype=torch.float64)
    if w.dim() != 2 or w.shape[0] != w.shape[1] or b.shape != (w.shape[0],):
        raise ValueError(f"weights must be (d, d) and bias (d,); got {tuple(w.shape)} and {tuple(b.shape)}")
    if not torch.allclose(w, w.T):
        raise ValueError("weights must be symmetric")
    if w.diagonal().abs().max() > 0:
        raise ValueError("weights must have a zero diagonal (x_j^2 = 1 makes it a constant)")
    return w, b


def random_ising(d: int, *, coupling: float = 0.5, seed: int = 0):
    """A seeded Ising model: symmetric Gaussian couplings of sd ``coupling`` (zero
    diagonal) and standard-normal-times-0.3 fields. Returns ``(weights, bias)``."""
    d = check_int("d", d, minimum=2)
    g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    a = torch.randn(d, d, generator=g, dtype=torch.float64) * coupling
    w = torch.triu(a, 1)
    return w + w.T, 0.3 * torch.randn(d, generator=g, dtype=torch.float64)


def _states(d: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product((-1.0, 1.0), repeat=d)), dtype=torch.float64)


def ising_log_z(weights, bias) -> tuple[float, torch.Tensor]:
    """The exact :math:`\\log Z` and the exact means :math:`E[x_j]`, by enumerating all
    :math:`2^d` states (``d <= 20``)."""
    w, b = _check(weights, bias)
    d = len(b)
    if d > MAX_ENUMERATE:
        raise ValueError(f"enumerating 2^{d} states is too many; d must be <= {MAX_ENUMERATE}")
    x = _states(d)
    log_p = x @ b + 0.5 * ((x @ w) * x).sum(-1)
    log_z = torch.logsumexp(log_p, 0)
    means = (torch.softmax(log_p, 0)[:, None] * x).sum(0)
    return float(log_z), means


def _binary_entropy(mu: torch.Tensor) -> torch.Tensor:
    p = ((1 + mu) / 2).clamp(1e-300, 1.0)
    q = ((1 - mu) / 2).clamp(1e-300, 1.0)
    return -(p * p.log() + q * q.log())


def ising_elbo(weights, bias, means) -> float:
    """The mean-field ELBO of the product distribution with means ``means``."""
    w, b = _check(weights, bias)
    mu = torch.as_tensor(means, dtype=torch.float64)
    return float(b @ mu + 0.5 * mu @ w @ mu + _binary_entropy(mu).sum())


@dataclass(frozen=True)
class MeanFieldRun:
    """Coordinate ascent, one entry per single-coordinate update.

    Attributes:
        elbos: the ELBO before any update, then after each.
        means: the final means :math:`\\mu`.
        log_z: the exact :math:`\\log Z` (enumeration).
        exact_means: the exact :math:`E[x_j]`.
        updates: the number of single-coordinate updates.
    """

    elbos: list[float]
    means: torch.Tensor
    log_z: float
    exact_means: torch.Tensor
    updates: int


def mean_field_ising(weights, bias, *, sweeps: int = 20, init=None, seed: int = 0) -> MeanFieldRun:
    r"""Coordinate-ascent mean field (CAVI) on :math:`\log\tilde p(x) = b^\top x +
    \frac12 x^\top W x`: ``sweeps`` passes over the coordinates in order, each update
    :math:`\mu_j \leftarrow \tanh(b_j + \sum_i W_{ji}\mu_i)`.

    Args:
        weights, bias: the model (``d <= 20`` for the exact answer).
        sweeps: passes over all coordinates.
        init: starting means in (-1, 1) (default: uniform in (-0.5, 0.5), seeded).
    """
    w, b = _check(weights, bias)
    sweeps = check_int("sweeps", sweeps, minimum=1)
    d = len(b)
    if init is None:
        g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
        mu = torch.rand(d, generator=g, dtype=torch.float64) - 0.5
    else:
        mu = torch.as_tensor(init, dtype=torch.float64).clone()
        if mu.shape != (d,) or mu.abs().max() >= 1:
            raise ValueError(f"init must be {d} means strictly inside (-1, 1)")
    elbos = [ising_elbo(w, b, mu)]
    for _ in range(sweeps):
        for j in range(d):
            mu[j] = math.tanh(float(b[j] + w[j] @ mu))
            elbos.append(ising_elbo(w, b, mu))
    log_z, exact = ising_log_z(w, b)
    return MeanFieldRun(elbos, mu, log_z, exact, sweeps * d)
