r"""Gradient estimators for :math:`\nabla_\phi\,\mathbb E_{q_\phi(z)}[f(z)]`.

With :math:`q_\phi = \mathcal N(\mu, \mathrm{diag}\,\sigma^2)`, :math:`\phi = (\mu, \sigma)`
and :math:`S` draws :math:`z_s = \mu + \sigma \odot \epsilon_s`:

* **reparameterization** (the notes' trick): move :math:`\phi` inside the expectation,
  :math:`\nabla_\phi \mathbb E_\epsilon[f(\mu + \sigma\epsilon)] =
  \mathbb E_\epsilon[\nabla_\phi f(\mu + \sigma\epsilon)]`, estimated by the mean of
  :math:`\nabla_\phi f(z_s)` (needs a differentiable :math:`f`);
* **score function** (REINFORCE, Williams 1992): :math:`\nabla_\phi \mathbb E_q[f] =
  \mathbb E_q[f(z)\,\nabla_\phi \log q_\phi(z)]`, since
  :math:`\nabla q = q \nabla \log q`; it needs only values of :math:`f`;
* **score function with a baseline**: :math:`\mathbb E_q[\nabla_\phi \log q] = 0`, so any
  :math:`b` independent of :math:`z_s` can be subtracted,
  :math:`\mathbb E_q[(f(z_s) - b_s)\nabla_\phi \log q(z_s)]`; here the leave-one-out mean
  :math:`b_s = \frac{1}{S-1}\sum_{t \ne s} f(z_t)` (Kool et al. 2019's "REINFORCE with
  S samples").

All three are unbiased; their variances differ, and each falls as :math:`1/S`.
:func:`gradient_estimates` draws many independent estimates of each, so mean and
variance can be compared with the exact gradient.

References:
    Williams (1992), Simple statistical gradient-following algorithms.
    Kingma & Welling (2014); Rezende, Mohamed & Wierstra (2014) (reparameterization).
    Mohamed, Rosca, Figurnov & Mnih (2020), Monte Carlo Gradient Estimation in Machine
    Learning, JMLR.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..checks import check_int

__all__ = ["ESTIMATORS", "GradientStudy", "gradient_estimates", "gradient_variance_curve"]

ESTIMATORS = ("reparameterization", "score function", "score function + baseline")


def _as_param(v, name):
    t = torch.as_tensor(v, dtype=torch.float64).reshape(-1)
    if t.numel() == 0:
        raise ValueError(f"{name} must have at least one entry")
    return t


def gradient_estimates(f, mu, sigma, *, num_samples: int, repeats: int = 1000, seed: int = 0):
    """``repeats`` independent ``num_samples``-sample estimates of the gradient of
    :math:`\\mathbb E_{\\mathcal N(\\mu, \\sigma^2)}[f(z)]` with respect to
    ``(mu, sigma)``, by each estimator.

    Args:
        f: maps ``(..., d)`` to ``(...)``, differentiable for reparameterization.
        mu, sigma: ``d`` means and standard deviations (> 0).

    Returns:
        ``{estimator: tensor (repeats, 2 d)}``: the gradient with respect to ``mu``
        then ``sigma``.
    """
    num_samples = check_int("num_samples", num_samples, minimum=2)
    repeats = check_int("repeats", repeats, minimum=2)
    mu, sigma = _as_param(mu, "mu"), _as_param(sigma, "sigma")
    if mu.shape != sigma.shape or (sigma <= 0).any():
        raise ValueError("mu and sigma must have the same length, with sigma > 0")
    g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    eps = torch.randn(repeats, num_samples, len(mu), generator=g, dtype=torch.float64)
    z = (mu + sigma * eps).requires_grad_(True)
    with torch.enable_grad():
        values = f(z)  # (repeats, S)
        if values.shape != (repeats, num_samples):
            raise ValueError(f"f must map (..., d) to (...); got shape {tuple(values.shape)}")
        # f acts on each z separately, so one backward pass gives every df/dz_s
        (dfdz,) = torch.autograd.grad(values.sum(), z)
    # chain rule through z = mu + sigma * eps: dz/dmu = 1, dz/dsigma = eps
    reparam = torch.cat([dfdz.mean(1), (dfdz * eps).mean(1)], -1)
    fz = values.detach()  # (R, S)
    z_minus = sigma * eps  # z - mu
    score = torch.cat([z_minus / sigma**2, (z_minus**2 - sigma**2) / sigma**3], -1)  # (R, S, 2d)
    plain = (fz[..., None] * score).mean(1)
    loo = (fz.sum(1, keepdim=True) - fz) / (num_samples - 1)
    baseline = ((fz - loo)[..., None] * score).mean(1)
    return {ESTIMATORS[0]: reparam, ESTIMATORS[1]: plain, ESTIMATORS[2]: baseline}


@dataclass(frozen=True)
class GradientStudy:
    """Variance of each estimator against the number of samples.

    Attributes:
        sample_sizes: the S values.
        variance: ``{estimator: [total variance (sum over parameters) per S]}``.
        bias: ``{estimator: [largest |mean - exact| per S]}`` (needs ``exact``).
    """

    sample_sizes: list[int]
    variance: dict[str, list[float]]
    bias: dict[str, list[float]] | None


def gradient_variance_curve(
    f, mu, sigma, sample_sizes=(2, 4, 8, 16, 32, 64), *, repeats=2000, exact=None, seed=0
):
    """:func:`gradient_estimates` for each S; ``exact`` (the true gradient, ``2 d``) adds the bias."""
    variance: dict[str, list[float]] = {k: [] for k in ESTIMATORS}
    bias: dict[str, list[float]] | None = None if exact is None else {k: [] for k in ESTIMATORS}
    for i, s in enumerate(sample_sizes):
        est = gradient_estimates(f, mu, sigma, num_samples=s, repeats=repeats, seed=seed + i)
        for k, v in est.items():
            variance[k].append(float(v.var(0).sum()))
            if bias is not None:
                bias[k].append(float((v.mean(0) - torch.as_tensor(exact, dtype=v.dtype)).abs().max()))
    return GradientStudy(list(sample_sizes), variance, bias)
