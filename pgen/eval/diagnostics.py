r"""Convergence and reliability diagnostics for Monte Carlo draws, written from the papers.

* :func:`rhat`: rank-normalized split :math:`\hat R` (Vehtari, Gelman, Simpson,
  Carpenter & Bürkner 2021): the larger of the split-:math:`\hat R` of the
  rank-normalized draws and of the rank-normalized folded draws :math:`|x - \mathrm{median}|`.
* :func:`ess_bulk`, :func:`ess_tail`: effective sample sizes of the rank-normalized
  split chains, and the smaller of those of the 5% and 95% quantile indicators
  (same paper), with autocorrelations truncated by Geyer's (1992) initial monotone
  sequence.
* :func:`psis`: Pareto-smoothed importance sampling (Vehtari, Simpson, Gelman, Yao &
  Gabry 2024): the generalized Pareto fit of Zhang & Stephens (2009) to the largest
  importance ratios; its shape :math:`\hat k` says how far importance weights (and so a
  variational approximation) can be trusted: below 0.5 good, up to 0.7 usable, above
  0.7 unreliable.

Every function takes draws shaped ``(chain, draw)`` (or ``(chain, draw, *shape)`` and
returns one value per element of ``shape``); they need no ArviZ, so the numbers are the
same on every ArviZ line. The tests check them against ArviZ's implementation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

__all__ = ["rhat", "ess_bulk", "ess_tail", "ess_basic", "psis", "PSISResult", "khat_message"]


def _as_draws(x, name: str = "draws") -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (chain, draw, ...); got shape {x.shape}")
    if x.shape[1] < 4:
        raise ValueError(f"{name} needs at least 4 draws per chain for diagnostics; got {x.shape[1]}")
    return x


def _split(x: np.ndarray) -> np.ndarray:
    """(chain, draw, ...) -> (2 chain, draw // 2, ...): each chain cut in half (the
    middle draw of an odd-length chain is dropped)."""
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0)


def _rank_normalize(x: np.ndarray) -> np.ndarray:
    """Normal scores of the pooled ranks: Phi^{-1}((r - 3/8) / (S + 1/4)), ties averaged."""
    flat = x.reshape(x.shape[0] * x.shape[1], -1)
    ranks = stats.rankdata(flat, axis=0, method="average")
    z = special.ndtri((ranks - 0.375) / (flat.shape[0] + 0.25))
    return z.reshape(x.shape)


def _split_rhat(x: np.ndarray) -> np.ndarray:
    m, n = x.shape[:2]
    chain_means = x.mean(axis=1)
    within = x.var(axis=1, ddof=1).mean(axis=0)
    between_over_n = chain_means.var(axis=0, ddof=1)
    var_plus = (n - 1) / n * within + between_over_n
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(var_plus / within)


def rhat(draws) -> np.ndarray | float:
    r"""Rank-normalized split :math:`\hat R`; values above 1.01 mean the chains disagree.

    Args:
        draws: array ``(chain, draw, *shape)``.

    Returns:
        :math:`\hat R` per element of ``shape`` (a float for scalar draws). Constant
        draws give NaN.
    """
    x = _split(_as_draws(draws))
    bulk = _split_rhat(_rank_normalize(x))
    folded = np.abs(x - np.median(x.reshape(-1, *x.shape[2:]), axis=0))
    tail = _split_rhat(_rank_normalize(folded))
    out = np.fmax(bulk, tail)
    return float(out) if out.ndim == 0 else out


def _autocovariance(x: np.ndarray) -> np.ndarray:
    """Biased autocovariance of each chain along axis 1, by FFT."""
    n = x.shape[1]
    centred = x - x.mean(axis=1, keepdims=True)
    size = 2 ** math.ceil(math.log2(2 * n))
    f = np.fft.rfft(centred, n=size, axis=1)
    acov = np.fft.irfft(f * np.conj(f), n=size, axis=1)[:, :n]
    return acov / n


def _ess_one(x: np.ndarray) -> float:
    """ESS of draws (chain, draw) following the Stan reference manual: autocorrelations
    combined across chains, summed in pairs until a pair is negative (Geyer's initial
    positive sequence) and made monotone (initial monotone sequence)."""
    m, n = x.shape
    if not np.all(np.isfinite(x)) or np.ptp(x) == 0:
        return float("nan")
    acov = _autocovariance(x)
    chain_var = acov[:, 0] * n / (n - 1)
    within = chain_var.mean()
    var_plus = within * (n - 1) / n
    if m > 1:
        var_plus += x.mean(axis=1).var(ddof=1)
    rho = 1.0 - (within - acov.mean(axis=0)) / var_plus
    rho[0] = 1.0
    # pairs P_j = rho_{2j} + rho_{2j+1}, kept up to the first negative one (Geyer's
    # initial positive sequence), made non-increasing (initial monotone sequence); the
    # even term of the first rejected pair, if positive, enters once (Stan's variance
    # reduction for antithetic chains)
    num_pairs = max((n - 1) // 2, 1)
    pairs = rho[0 : 2 * num_pairs : 2] + rho[1 : 2 * num_pairs : 2]
    negative = np.nonzero(pairs[1:] < 0)[0]
    if len(negative):
        stop = int(negative[0]) + 1
        extra = max(rho[2 * stop], 0.0)
    else:
        stop = num_pairs - 1
        extra = max(rho[2 * stop], 0.0)
    kept = np.minimum.accumulate(pairs[:stop])
    tau = -1.0 + 2.0 * kept.sum() + extra
    tau = max(tau, 1.0 / math.log10(m * n))
    return m * n / tau


def ess_basic(draws) -> np.ndarray | float:
    """Effective sample size of the split chains of ``draws`` (no rank normalization)."""
    x = _split(_as_draws(draws))
    out = np.asarray([_ess_one(col) for col in _columns(x)]).reshape(x.shape[2:])
    return float(out) if out.ndim == 0 else out


def _columns(x: np.ndarray):
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    for j in range(flat.shape[2]):
        yield flat[:, :, j]


def ess_bulk(draws) -> np.ndarray | float:
    """Bulk effective sample size: ESS of the rank-normalized split chains.

    Args:
        draws: array ``(chain, draw, *shape)``.

    Returns:
        ESS per element of ``shape``; constant draws give NaN.
    """
    x = _split(_as_draws(draws))
    z = _rank_normalize(x)
    out = np.asarray([_ess_one(col) for col in _columns(z)]).reshape(x.shape[2:])
    return float(out) if out.ndim == 0 else out


def ess_tail(draws) -> np.ndarray | float:
    """Tail effective sample size: the smaller ESS of the indicators x <= q05 and x <= q95."""
    x = _split(_as_draws(draws))
    values = []
    for col in _columns(x):
        lo, hi = np.quantile(col, [0.05, 0.95])
        values.append(min(_ess_one((col <= lo).astype(float)), _ess_one((col <= hi).astype(float))))
    out = np.asarray(values).reshape(x.shape[2:])
    return float(out) if out.ndim == 0 else out


# --------------------------------------------------------------------------- PSIS


@dataclass(frozen=True)
class PSISResult:
    """Pareto-smoothed importance sampling.

    Attributes:
        log_weights: the smoothed log importance weights, normalized to log-sum-exp 0.
        khat: the estimated generalized Pareto shape of the largest raw ratios.
        tail_size: how many of the largest ratios were smoothed (M).
        ess: importance-sampling effective sample size, 1 / sum(w^2) of the smoothed
            normalized weights.
        threshold: the largest k-hat for which PSIS is reliable with this many draws,
            min(1 - 1 / log10(S), 0.7).
    """

    log_weights: np.ndarray
    khat: float
    tail_size: int
    ess: float
    threshold: float

    @property
    def message(self) -> str:
        return khat_message(self.khat, self.threshold)


def khat_message(khat: float, threshold: float = 0.7) -> str:
    """A plain sentence on what a Pareto k-hat says about an approximation."""
    if not math.isfinite(khat):
        return "k-hat could not be estimated (too few distinct weights)"
    if khat < 0.5:
        return f"k-hat {khat:.2f} < 0.5: the approximation is close; importance weights are reliable"
    if khat < threshold:
        return (
            f"k-hat {khat:.2f} in [0.5, {threshold:.2f}): usable, but the approximation misses "
            "part of the posterior; treat its tails with care"
        )
    return (
        f"k-hat {khat:.2f} >= {threshold:.2f}: the approximation is far from the posterior "
        "(importance weights are dominated by a few draws); do not trust its uncertainty"
    )


def _gpd_fit(exceedances: np.ndarray) -> tuple[float, float]:
    r"""Generalized Pareto shape and scale of positive ``exceedances`` (sorted ascending)
    by the empirical-Bayes estimator of Zhang & Stephens (2009).

    With :math:`\theta = \xi / \sigma`, the profile log-likelihood is
    :math:`\ell(\theta) = n[\log(\theta / \hat\xi(\theta)) - \hat\xi(\theta) - 1]` where
    :math:`\hat\xi(\theta) = \frac1n\sum \log(1 + \theta x_i)`; the estimate averages
    :math:`\theta` over a grid weighted by :math:`e^{\ell}`. The shape is then shrunk
    towards 0.5 with the weakly informative prior of Vehtari et al. (10 pseudo-draws).
    """
    x = exceedances
    n = len(x)
    m = 30 + int(math.sqrt(n))
    quartile = x[int(n / 4 + 0.5) - 1]
    j = np.arange(1, m + 1)
    # Zhang & Stephens's grid is for b = -theta; every theta > -1 / max(x) keeps 1 + theta x > 0
    theta = -(1.0 / x[-1] + (1.0 - np.sqrt(m / (j - 0.5))) / (3.0 * quartile))
    xi = np.log1p(theta[:, None] * x[None, :]).mean(axis=1)
    loglik = n * (np.log(theta / xi) - xi - 1.0)
    weights = np.exp(loglik - special.logsumexp(loglik))
    theta_hat = float(np.sum(weights * theta))
    xi_hat = float(np.log1p(theta_hat * x).mean())
    sigma = xi_hat / theta_hat
    xi_hat = (n * xi_hat + 10 * 0.5) / (n + 10)
    return xi_hat, sigma


def _gpd_quantile(p: np.ndarray, xi: float, sigma: float) -> np.ndarray:
    if abs(xi) < 1e-12:
        return -sigma * np.log1p(-p)
    return sigma * np.expm1(-xi * np.log1p(-p)) / xi


def psis(log_ratios) -> PSISResult:
    """Pareto-smooth importance log-ratios ``log p(x, z_s) - log q(z_s)`` and estimate k-hat.

    Args:
        log_ratios: 1-D array of ``S`` log importance ratios (finite; S >= 10).

    Returns:
        A :class:`PSISResult`.

    References:
        Vehtari, Simpson, Gelman, Yao & Gabry (2024), Pareto Smoothed Importance
        Sampling, JMLR 25. Zhang & Stephens (2009), A new and efficient estimation
        method for the generalized Pareto distribution, Technometrics 51.
    """
    lw = np.asarray(log_ratios, dtype=np.float64).reshape(-1)
    s = len(lw)
    if s < 10:
        raise ValueError(f"psis needs at least 10 log-ratios; got {s}")
    if not np.all(np.isfinite(lw)):
        bad = int((~np.isfinite(lw)).sum())
        raise ValueError(f"log_ratios holds {bad} non-finite value(s); every draw needs a finite ratio")
    lw = lw - lw.max()
    tail = int(math.ceil(min(0.2 * s, 3.0 * math.sqrt(s))))
    order = np.argsort(lw)
    cutoff = lw[order[-tail - 1]]
    tail_idx = order[-tail:]
    threshold = min(1.0 - 1.0 / math.log10(s), 0.7)
    smoothed = lw.copy()
    exceed = np.exp(lw[tail_idx]) - np.exp(cutoff)
    positive = exceed > 0  # ties with the cutoff carry no tail information
    if np.ptp(lw) == 0:
        xi = float("-inf")  # all ratios equal: q is proportional to the posterior
    elif positive.sum() >= 5:
        xi, sigma = _gpd_fit(exceed[positive])
        m = int(positive.sum())
        p = (np.arange(1, m + 1) - 0.5) / m
        new = np.log(_gpd_quantile(p, xi, sigma) + np.exp(cutoff))
        smoothed[tail_idx[positive]] = np.minimum(new, 0.0)  # never above the largest raw ratio
    else:
        # the tail underflows next to the largest ratio: a few draws carry all the weight
        xi = float("inf")
    smoothed -= special.logsumexp(smoothed)
    ess = 1.0 / float(np.exp(special.logsumexp(2 * smoothed)))
    return PSISResult(log_weights=smoothed, khat=float(xi), tail_size=tail, ess=ess, threshold=threshold)
