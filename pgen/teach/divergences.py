r"""Fitting one Gaussian to a mixture under four divergences: mode seeking vs mass covering.

Target :math:`p(x) = \sum_k w_k \mathcal N(x; m_k, s_k^2)` in one dimension; the
approximation :math:`q = \mathcal N(\mu, \sigma^2)`, fitted by minimizing

* reverse KL, :math:`\mathrm{KL}(q\|p) = \mathbb E_q[\log q - \log p]` (what the ELBO
  minimizes): :math:`q` is penalized wherever it puts mass that :math:`p` lacks, so it
  sits on one mode (mode seeking);
* forward KL, :math:`\mathrm{KL}(p\|q)`: :math:`q` is penalized wherever :math:`p` has
  mass it lacks, so it covers every mode. For a Gaussian :math:`q` the optimum is moment
  matching, :math:`\mu = \mathbb E_p[x]`, :math:`\sigma^2 = \mathrm{Var}_p[x]` (set the
  gradient of :math:`-\mathbb E_p[\log q]` to zero);
* Jensen-Shannon, :math:`\tfrac12\mathrm{KL}(p\|m) + \tfrac12\mathrm{KL}(q\|m)` with
  :math:`m = (p+q)/2` (the GAN objective at the optimal discriminator): bounded, between
  the two;
* squared MMD with a Gaussian kernel of bandwidth :math:`\ell`,
  :math:`\mathbb E k(x,x') - 2\mathbb E k(x,y) + \mathbb E k(y,y')`, in closed form for
  Gaussian mixtures: for :math:`x \sim \mathcal N(a, s^2)`, :math:`y \sim \mathcal N(b,
  t^2)`, :math:`\mathbb E\,e^{-(x-y)^2/2\ell^2} = \frac{\ell}{\sqrt{\ell^2+s^2+t^2}}
  e^{-(a-b)^2/2(\ell^2+s^2+t^2)}`.

The KLs and JS are computed by quadrature on a fine grid (one dimension), so every
objective is deterministic and the fits exact up to the optimizer.

References:
    Minka (2005), Divergence measures and message passing.
    Gretton et al. (2012), A Kernel Two-Sample Test (MMD).
    Goodfellow et al. (2014), Generative Adversarial Nets (JS at the optimal discriminator).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..checks import check_choice, check_float

__all__ = ["GaussianMixture1D", "DIVERGENCES", "divergence", "fit_gaussian", "FitResult"]

DIVERGENCES = ("reverse_kl", "forward_kl", "js", "mmd")


@dataclass(frozen=True)
class GaussianMixture1D:
    """:math:`\\sum_k w_k \\mathcal N(m_k, s_k^2)` (weights normalized)."""

    weights: tuple[float, ...] = (0.5, 0.5)
    means: tuple[float, ...] = (-2.0, 2.0)
    sds: tuple[float, ...] = (0.6, 0.6)

    def tensors(self):
        w = torch.tensor(self.weights, dtype=torch.float64)
        return (
            w / w.sum(),
            torch.tensor(self.means, dtype=torch.float64),
            torch.tensor(self.sds, dtype=torch.float64),
        )

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        w, m, s = self.tensors()
        comp = torch.distributions.Normal(m, s).log_prob(x[..., None]) + w.log()
        return torch.logsumexp(comp, -1)

    def moments(self) -> tuple[float, float]:
        """Mean and variance."""
        w, m, s = self.tensors()
        mean = (w * m).sum()
        return float(mean), float((w * (s**2 + m**2)).sum() - mean**2)


def _grid(target: GaussianMixture1D, mu, sigma, n: int = 4001):
    _, m, s = target.tensors()
    lo = min(float(m.min() - 8 * s.max()), float(mu.detach()) - 8 * float(sigma.detach()))
    hi = max(float(m.max() + 8 * s.max()), float(mu.detach()) + 8 * float(sigma.detach()))
    x = torch.linspace(lo, hi, n, dtype=torch.float64)
    return x, x[1] - x[0]


def _mmd2(target: GaussianMixture1D, mu, sigma, bandwidth: float):
    w, m, s = target.tensors()

    def cross(a, sa, b, sb):
        v = bandwidth**2 + sa**2 + sb**2
        return bandwidth / torch.sqrt(v) * torch.exp(-((a - b) ** 2) / (2 * v))

    pp = (w[:, None] * w[None, :] * cross(m[:, None], s[:, None], m[None, :], s[None, :])).sum()
    pq = (w * cross(m, s, mu, sigma)).sum()
    qq = cross(mu, sigma, mu, sigma)
    return pp - 2 * pq + qq


def divergence(name: str, target: GaussianMixture1D, mu, sigma, *, bandwidth: float = 1.0) -> torch.Tensor:
    """The divergence ``name`` between the target and :math:`\\mathcal N(\\mu, \\sigma^2)`
    (differentiable in ``mu`` and ``sigma``)."""
    name = check_choice("divergence", name, DIVERGENCES)
    mu = torch.as_tensor(mu, dtype=torch.float64)
    sigma = torch.as_tensor(sigma, dtype=torch.float64)
    if name == "mmd":
        return _mmd2(target, mu, sigma, check_float("bandwidth", bandwidth, positive=True))
    x, dx = _grid(target, mu, sigma)
    log_p = target.log_prob(x)
    log_q = torch.distributions.Normal(mu, sigma).log_prob(x)
    p, q = log_p.exp(), log_q.exp()
    if name == "reverse_kl":
        return (q * (log_q - log_p)).sum() * dx
    if name == "forward_kl":
        return (p * (log_p - log_q)).sum() * dx
    log_m = torch.logaddexp(log_p, log_q) - math.log(2.0)
    return 0.5 * ((p * (log_p - log_m)).sum() + (q * (log_q - log_m)).sum()) * dx


@dataclass(frozen=True)
class FitResult:
    """The fitted :math:`\\mu, \\sigma` and the divergence there."""

    name: str
    mu: float
    sigma: float
    value: float


def fit_gaussian(
    name: str, target: GaussianMixture1D, *, init=(1.0, 0.5), bandwidth: float = 1.0, steps: int = 200
) -> FitResult:
    """Minimize ``divergence(name, ...)`` over :math:`(\\mu, \\log\\sigma)` with L-BFGS."""
    mu = torch.tensor(float(init[0]), dtype=torch.float64, requires_grad=True)
    log_sigma = torch.tensor(math.log(check_float("init sigma", init[1], positive=True)), dtype=torch.float64)
    log_sigma.requires_grad_(True)
    opt = torch.optim.LBFGS(
        [mu, log_sigma], max_iter=steps, line_search_fn="strong_wolfe", tolerance_grad=1e-10
    )

    def closure():
        opt.zero_grad()
        loss = divergence(name, target, mu, log_sigma.exp(), bandwidth=bandwidth)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    value = float(divergence(name, target, mu.detach(), log_sigma.detach().exp(), bandwidth=bandwidth))
    return FitResult(name, float(mu.detach()), float(log_sigma.detach().exp()), value)
