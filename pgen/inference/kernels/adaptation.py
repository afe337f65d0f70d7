r"""Warm-up adaptation of HMC and NUTS: dual averaging of the step size (Hoffman & Gelman
2014, Alg. 5), Welford's running covariance with Stan's regularization, and Stan's
windowed schedule for the mass matrix.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["DualAveraging", "WelfordCovariance", "adaptation_windows"]


class DualAveraging:
    r"""Nesterov dual averaging of :math:`\log\epsilon` towards a target acceptance
    rate :math:`\delta` (Hoffman & Gelman 2014, eq. 6 and Alg. 5):

    .. math::
        \bar H_t = (1 - \tfrac{1}{t + t_0})\bar H_{t-1} + \tfrac{1}{t+t_0}(\delta - \alpha_t),\quad
        \log\epsilon_t = \mu - \tfrac{\sqrt t}{\gamma}\bar H_t,\quad
        \log\bar\epsilon_t = t^{-\kappa}\log\epsilon_t + (1 - t^{-\kappa})\log\bar\epsilon_{t-1}.
    """

    def __init__(self, step_size: float, target: float, gamma=0.05, t0=10.0, kappa=0.75):
        self.target, self.gamma, self.t0, self.kappa = target, gamma, t0, kappa
        self.restart(step_size)

    def restart(self, step_size: float) -> None:
        self.mu = math.log(10.0 * step_size)
        self.t = 0
        self.h_bar = 0.0
        self.log_step_bar = 0.0

    def update(self, accept_stat: float) -> float:
        """Feed one transition's acceptance statistic; returns the next step size."""
        self.t += 1
        eta = 1.0 / (self.t + self.t0)
        self.h_bar = (1.0 - eta) * self.h_bar + eta * (self.target - accept_stat)
        log_step = self.mu - math.sqrt(self.t) / self.gamma * self.h_bar
        weight = self.t ** (-self.kappa)
        self.log_step_bar = weight * log_step + (1.0 - weight) * self.log_step_bar
        return math.exp(log_step)

    @property
    def final_step_size(self) -> float:
        return math.exp(self.log_step_bar)


class WelfordCovariance:
    """Streaming mean and (co)variance (Welford 1962), regularized as Stan does,
    ``n/(n+5) * S + 1e-3 * 5/(n+5) * T``, with ``T`` the identity (Stan) or, when given,
    the covariance of the metric in use. Shrinking towards the identity swamps a
    posterior direction whose variance is far below 1e-3 (the narrow direction of a
    regression on uncentred covariates has variance about 1e-9), and shrinking towards
    the estimate's own diagonal inflates such a direction by the correlation it
    discards; shrinking towards the previous metric keeps the estimate positive definite
    at every scale once one window has seen the posterior's scales (measured on that
    regression, 2 chains of 300 draws: min bulk ESS 78-168 towards the diagonal,
    245-559 towards the previous metric). A zero variance (a chain that did not move)
    stays zero, and the metric then keeps its previous value."""

    def __init__(self, dim: int, dense: bool):
        self.dim, self.dense = dim, dense
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self.mean = np.zeros(self.dim)
        self.m2 = np.zeros((self.dim, self.dim)) if self.dense else np.zeros(self.dim)

    def update(self, x: np.ndarray) -> None:
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        if self.dense:
            self.m2 += np.outer(delta, x - self.mean)
        else:
            self.m2 += delta * (x - self.mean)

    def covariance(self, regularize: bool = True, towards: np.ndarray | None = None) -> np.ndarray:
        """The sample covariance (a vector of variances when not dense), shrunk towards
        ``towards`` (a covariance or a vector of variances; default the identity)."""
        if self.n < 2:
            raise ValueError("need at least two draws for a covariance")
        cov = self.m2 / (self.n - 1)
        if not regularize:
            return cov
        if towards is None:
            target = np.eye(self.dim) if self.dense else np.ones(self.dim)
        else:
            target = np.asarray(towards, dtype=np.float64)
            if self.dense and target.ndim == 1:
                target = np.diag(target)
            elif not self.dense and target.ndim == 2:
                target = np.diag(target).copy()
        w = self.n / (self.n + 5.0)
        shrink = 1e-3 * 5.0 / (self.n + 5.0)
        return w * cov + shrink * target


def adaptation_windows(warmup: int, init_buffer=75, base_window=25, term_buffer=50) -> list[tuple[int, int]]:
    """Stan's slow adaptation windows ``[(start, end), ...]`` (iteration indices): a fast
    initial buffer, doubling windows that estimate the mass matrix, and a final buffer
    that only tunes the step size. Short warm-ups get 15% / 75% / 10%; under 20 steps
    the mass matrix is not adapted (no windows)."""
    if warmup < 20:
        return []
    if init_buffer + base_window + term_buffer > warmup:
        init_buffer = int(0.15 * warmup)
        term_buffer = int(0.1 * warmup)
        base_window = warmup - init_buffer - term_buffer
    last = warmup - term_buffer
    windows, start, size = [], init_buffer, base_window
    while start < last:
        end = start + size
        if end + 2 * size > last:
            end = last
        windows.append((start, end))
        start, size = end, 2 * size
    return windows
