r"""Noise schedules and the constants of the forward process (Ho et al. 2020; Nichol &
Dhariwal 2021; the notes).

:math:`q(x_t \mid x_0) = \mathcal N(\sqrt{\bar\alpha_t}\,x_0, (1-\bar\alpha_t) I)` and the
posterior :math:`q(x_{t-1} \mid x_t, x_0) = \mathcal N(\gamma_t x_t + \delta_t x_0, \sigma_t^2 I)`.
"""

from __future__ import annotations

import math

import torch

from ...checks import check_float, check_int

__all__ = ["linear_betas", "cosine_betas", "SCHEDULES", "schedule_constants", "q_sample", "timestep_proposal"]


def linear_betas(
    timesteps: int, beta_start: float | None = None, beta_end: float | None = None
) -> torch.Tensor:
    r"""Ho et al.'s linear schedule, :math:`\beta_1 = 10^{-4}` to :math:`\beta_T = 0.02` for
    T = 1000, scaled by 1000/T for other T (Nichol & Dhariwal 2021) so that
    :math:`\bar\alpha_T` stays near 0. Returns ``(T,)`` float64, entry ``t-1`` is
    :math:`\beta_t`."""
    timesteps = check_int("timesteps", timesteps, minimum=1)
    scale = 1000.0 / timesteps
    lo = 1e-4 * scale if beta_start is None else check_float("beta_start", beta_start, positive=True)
    hi = min(0.02 * scale, 0.999) if beta_end is None else check_float("beta_end", beta_end, positive=True)
    if not lo <= hi < 1:
        raise ValueError(f"need 0 < beta_start <= beta_end < 1; got {lo}, {hi}")
    return torch.linspace(lo, hi, timesteps, dtype=torch.float64)


def cosine_betas(timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    r"""Nichol & Dhariwal (2021): :math:`\bar\alpha_t = f(t)/f(0)`,
    :math:`f(t) = \cos^2\big(\frac{t/T + s}{1 + s}\frac\pi2\big)`, betas clipped at
    ``max_beta``. Returns ``(T,)`` float64."""
    timesteps = check_int("timesteps", timesteps, minimum=1)
    t = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)


SCHEDULES = {"linear": linear_betas, "cosine": cosine_betas}


def schedule_constants(betas: torch.Tensor) -> dict[str, torch.Tensor]:
    r"""The constants of the notes, indexed by t = 0..T (entry 0 is t = 0, where
    :math:`\bar\alpha_0 = 1`): ``beta``, ``alpha``, ``alpha_bar``, and the posterior
    coefficients ``gamma``, ``delta``, ``sigma2`` of :math:`q(x_{t-1}\mid x_t, x_0)`
    (meaningful for t >= 2; at t = 1 the posterior is a point mass at :math:`x_0`)."""
    betas = torch.as_tensor(betas, dtype=torch.float64)
    if betas.dim() != 1 or not ((betas > 0) & (betas < 1)).all():
        raise ValueError("betas must be a 1-D tensor of values in (0, 1)")
    beta = torch.cat([torch.zeros(1, dtype=torch.float64), betas])
    alpha = 1 - beta
    alpha_bar = torch.cumprod(alpha, 0)
    prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
    denom = (1 - alpha_bar).clamp(min=1e-300)
    gamma = alpha.sqrt() * (1 - prev) / denom
    delta = prev.sqrt() * beta / denom
    sigma2 = (1 - prev) * beta / denom
    gamma[0] = delta[0] = sigma2[0] = 0.0
    return {
        "beta": beta,
        "alpha": alpha,
        "alpha_bar": alpha_bar,
        "gamma": gamma,
        "delta": delta,
        "sigma2": sigma2,
    }


def q_sample(x0: torch.Tensor, alpha_bar_t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    r""":math:`x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon` (``alpha_bar_t``
    broadcast against ``x0``)."""
    return alpha_bar_t.sqrt() * x0 + (1 - alpha_bar_t).sqrt() * noise


def timestep_proposal(constants: dict[str, torch.Tensor], kind: str) -> torch.Tensor:
    r"""The proposal :math:`\pi_t` of the sampled estimator's timestep, over t = 0..T
    (entries 0 and 1 are 0): half uniform on 2..T and, for ``"weighted"``, half
    proportional to :math:`\beta_t/(\alpha_t(1-\bar\alpha_{t-1}))`, the KL at t of a
    unit error in the predicted noise (``"uniform"``: uniform on 2..T)."""
    weight = constants["beta"][2:] / (constants["alpha"][2:] * (1 - constants["alpha_bar"][1:-1]))
    if kind == "uniform":
        weight = torch.ones_like(weight)
    prob = 0.5 * weight / weight.sum() + 0.5 / (len(weight))
    return torch.cat([prob.new_zeros(2), prob])
