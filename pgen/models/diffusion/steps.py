r"""The reverse process, step by step, as pure functions of
:math:`(x_t, t, \text{prediction})` and the schedule's constants: the sampler kept apart
from the network, as diffusers keeps ``DDIMScheduler.step`` apart from its U-Net.

Equation numbers are those of Ho, Jain & Abbeel (2020, "DDPM") and Song, Meng & Ermon
(2021, "DDIM").
"""

from __future__ import annotations

import torch

from ...checks import check_int

__all__ = [
    "from_prediction",
    "clip_prediction",
    "reverse_scale",
    "ddpm_step",
    "ddim_step",
    "ddim_times",
    "keep_known",
]


def from_prediction(x_t: torch.Tensor, out: torch.Tensor, alpha_bar_t: torch.Tensor, prediction: str):
    r""":math:`(\hat x_0, \hat\epsilon)` from the denoiser's output, whatever it predicts,
    using :math:`x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon` (DDPM eq. 4):

    * ``"eps"``: :math:`\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}`;
    * ``"x0"``: :math:`\hat\epsilon = (x_t - \sqrt{\bar\alpha_t}\,\hat x_0)/\sqrt{1-\bar\alpha_t}`;
    * ``"v"`` (Salimans & Ho 2022, :math:`v = \sqrt{\bar\alpha_t}\epsilon - \sqrt{1-\bar\alpha_t}x_0`):
      :math:`\hat x_0 = \sqrt{\bar\alpha_t}x_t - \sqrt{1-\bar\alpha_t}\hat v`,
      :math:`\hat\epsilon = \sqrt{1-\bar\alpha_t}x_t + \sqrt{\bar\alpha_t}\hat v`.
    """
    a, s = alpha_bar_t.sqrt(), (1 - alpha_bar_t).sqrt()
    if prediction == "eps":
        return (x_t - s * out) / a, out
    if prediction == "x0":
        return out, (x_t - a * out) / s
    return a * x_t - s * out, s * x_t + a * out


def clip_prediction(x_t: torch.Tensor, x0_hat: torch.Tensor, alpha_bar_t: torch.Tensor):
    r""":math:`\hat x_0` clipped to [-1, 1] and the noise :math:`\hat\epsilon` it implies."""
    x0_hat = x0_hat.clamp(-1, 1)
    return x0_hat, (x_t - alpha_bar_t.sqrt() * x0_hat) / (1 - alpha_bar_t).sqrt()


def reverse_scale(variance: str, beta_t: torch.Tensor, sigma2_t: torch.Tensor, v: torch.Tensor | None):
    r"""The standard deviation of :math:`p_\theta(x_{t-1}\mid x_t)`: the posterior's
    :math:`\tilde\sigma_t` (``"posterior"``), :math:`\sqrt{\beta_t}` (``"beta"``; DDPM
    section 3.2), or per pixel :math:`\exp(\tfrac12[v\log\beta_t + (1-v)\log\tilde\sigma_t^2])`
    (``"learned"``; Nichol & Dhariwal 2021, eq. 15)."""
    if variance == "posterior":
        return sigma2_t.sqrt()
    if variance == "beta":
        return beta_t.sqrt()
    return (0.5 * (v * beta_t.log() + (1 - v) * sigma2_t.log())).exp()


def ddpm_step(x_t, x0_hat, gamma_t, delta_t, scale_t, noise):
    r"""Ancestral sampling: the posterior mean :math:`\tilde\mu_t(x_t, \hat x_0) = \gamma_t
    x_t + \delta_t \hat x_0` (DDPM eq. 7) plus ``scale_t`` times standard normal ``noise``."""
    return gamma_t * x_t + delta_t * x0_hat + scale_t * noise


def ddim_step(x0_hat, eps_hat, alpha_bar_t, alpha_bar_prev, eta: float, noise):
    r"""One DDIM step from t to an earlier ``prev`` (DDIM eq. 12):
    :math:`x_{prev} = \sqrt{\bar\alpha_{prev}}\,\hat x_0 + \sqrt{1-\bar\alpha_{prev}-\sigma^2}\,
    \hat\epsilon + \sigma z`, with :math:`\sigma = \eta\sqrt{(1-\bar\alpha_{prev})/(1-\bar\alpha_t)}
    \sqrt{1-\bar\alpha_t/\bar\alpha_{prev}}` (eq. 16); :math:`\eta = 0` is deterministic."""
    sigma = eta * ((1 - alpha_bar_prev) / (1 - alpha_bar_t) * (1 - alpha_bar_t / alpha_bar_prev)).sqrt()
    return (
        alpha_bar_prev.sqrt() * x0_hat
        + (1 - alpha_bar_prev - sigma**2).clamp(min=0).sqrt() * eps_hat
        + sigma * noise
    )


def ddim_times(timesteps: int, steps: int) -> list[int]:
    """``steps`` timesteps evenly spaced from T down to 1 (duplicates merged)."""
    steps = check_int("steps", steps, minimum=1)
    if steps > timesteps:
        raise ValueError(f"steps must be at most timesteps={timesteps}; got {steps}")
    grid = torch.linspace(timesteps, 1, steps).round().long().tolist()
    return sorted(set(grid), reverse=True)


def keep_known(x: torch.Tensor, known_t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """In-painting (Lugmayr et al. 2022, without resampling): where ``mask`` is true the
    state is replaced by the known pixels noised to the same step, ``known_t``."""
    return torch.where(mask, known_t, x)
