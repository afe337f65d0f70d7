r"""The best Gaussian approximation to a correlated Gaussian: mean field vs full rank.

Target :math:`p = \mathcal N(\mu, \Sigma)`, precision :math:`\Lambda = \Sigma^{-1}`. The
notes' "best multivariate Gaussian" maximizes

.. math:: \log|L| + \mathbb E_{\epsilon \sim \mathcal N(0, I)} \log \tilde p(m + L\epsilon)

over a mean :math:`m` and a Cholesky factor :math:`L` (reparameterization), which is
:math:`-\mathrm{KL}(q\|p)` up to :math:`\log Z`. Both families below are fitted that way by
the shared SVI engine (:func:`pgen.fit` with the ``fullrank`` and ``meanfield`` guides),
and compared with their closed-form optima:

* full rank (:math:`L` lower triangular): :math:`q = p`, :math:`\mathrm{KL} = 0`;
* mean field (:math:`L` diagonal), reverse KL: setting the gradient of
  :math:`\mathrm{KL}(q\|p) = \tfrac12[\mathrm{tr}(\Lambda D) + (m-\mu)^\top\Lambda(m-\mu)
  - d + \log|\Sigma| - \log|D|]` to zero in :math:`D_{ii}` gives
  :math:`D_{ii} = 1/\Lambda_{ii}`, the *conditional* variance, which is smaller than the
  marginal :math:`\Sigma_{ii}` whenever the coordinates are correlated (mean field
  underestimates variance), and :math:`\mathrm{KL} = \tfrac12(\log|\Sigma| + \sum_i \log
  \Lambda_{ii})`; for two unit-variance coordinates with correlation :math:`\rho`,
  :math:`1 - \rho^2` and :math:`-\tfrac12\log(1-\rho^2)`;
* mean field, forward KL :math:`\mathrm{KL}(p\|q)`: moment matching,
  :math:`D_{ii} = \Sigma_{ii}` (drawn for contrast; no ELBO minimizes it).

Reference: Bishop (2006), Pattern Recognition and Machine Learning, section 10.1.2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..checks import check_int

__all__ = ["GaussianApproximations", "gaussian_kl", "gaussian_approximations"]


def gaussian_kl(mean_q, cov_q, mean_p, cov_p) -> float:
    r""":math:`\mathrm{KL}(\mathcal N(m_q, S_q) \| \mathcal N(m_p, S_p))` in nats, closed form."""
    mean_q, cov_q, mean_p, cov_p = (
        torch.as_tensor(t, dtype=torch.float64) for t in (mean_q, cov_q, mean_p, cov_p)
    )
    q = torch.distributions.MultivariateNormal(mean_q, covariance_matrix=cov_q)
    p = torch.distributions.MultivariateNormal(mean_p, covariance_matrix=cov_p)
    return float(torch.distributions.kl_divergence(q, p))


@dataclass(frozen=True)
class GaussianApproximations:
    """Fitted and closed-form Gaussian approximations to ``N(mean, cov)``.

    Attributes:
        mean, cov: the target.
        fitted: family name -> ``(mean, cov)`` fitted by :func:`pgen.fit`
            (``"meanfield"``, ``"fullrank"``).
        closed_form: ``"meanfield"`` (reverse KL: ``diag(1/Lambda_ii)``), ``"fullrank"``
            (the target itself), ``"meanfield_forward_kl"`` (``diag(Sigma_ii)``), each
            ``(mean, cov)``.
        kl: ``KL(q || p)`` of each fitted family, closed form from the fitted parameters.
        kl_closed_form: ``KL(q || p)`` at each closed-form solution (for
            ``meanfield_forward_kl`` this is larger than at the reverse-KL optimum).
        final_loss: the mean of each fit's last 100 losses (the negative ELBO, which for
            this normalized target is a Monte Carlo estimate of ``KL(q || p)``).
    """

    mean: torch.Tensor
    cov: torch.Tensor
    fitted: dict
    closed_form: dict
    kl: dict
    kl_closed_form: dict
    final_loss: dict


def _fitted_gaussian(name: str, params: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of a fitted ``meanfield`` (AutoNormal) or ``fullrank``
    (AutoMultivariateNormal) guide over one site, from its parameters."""
    p = {k.split(".", 1)[1]: v.double() for k, v in params.items()}
    if name == "meanfield":
        return p["locs.x"], torch.diag(p["scales.x"] ** 2)
    # Pyro's AutoMultivariateNormal: L = diag(scale) @ unit-lower-triangular scale_tril
    chol = p["scale"][:, None] * p["scale_tril"]
    return p["loc"], chol @ chol.T


def gaussian_approximations(
    cov=None,
    mean=None,
    *,
    steps: int = 1500,
    lr: float = 0.05,
    num_particles: int = 8,
    seed: int = 0,
) -> GaussianApproximations:
    """Fit mean-field and full-rank Gaussians to ``N(mean, cov)`` by maximizing the ELBO
    with :func:`pgen.fit`, and compute the closed-form optima next to them.

    Args:
        cov: the target covariance (default 2-D, unit variances, correlation 0.9).
        mean: the target mean (default zeros).
        steps: optimizer steps per fit; the learning rate decays from ``lr`` to
            ``lr / 25`` so the fit settles on the optimum.
        lr: the first learning rate.
        num_particles: reparameterized draws per step (one-draw gradients leave the
            Cholesky factor measurably short of the optimum).
        seed: seed of both fits.

    Example:
        >>> g = gaussian_approximations([[1.0, 0.9], [0.9, 1.0]])
        >>> g.fitted["meanfield"][1].diagonal(), g.closed_form["meanfield"][1].diagonal()
    """
    from ..inference import fit
    from ..inference.guides import make_guide
    from ..models.bayes import CorrelatedGaussian

    steps = check_int("steps", steps, minimum=1)
    target = CorrelatedGaussian(cov, mean)
    mu, sigma = target.mean.double(), target.cov.double()
    precision = torch.linalg.inv(sigma)
    closed = {
        "meanfield": (mu, torch.diag(1.0 / precision.diagonal())),
        "fullrank": (mu, sigma),
        "meanfield_forward_kl": (mu, torch.diag(sigma.diagonal())),
    }
    fitted, losses = {}, {}
    for name in ("meanfield", "fullrank"):
        result = fit(
            target.model,
            make_guide(name, target.model),
            None,
            steps=steps,
            lr=lr,
            lr_final=lr / 25,
            num_particles=num_particles,
            seed=seed,
            progress=False,
        )
        fitted[name] = _fitted_gaussian(name, result.params)
        losses[name] = float(result.losses[-100:].mean())
    return GaussianApproximations(
        mean=mu,
        cov=sigma,
        fitted=fitted,
        closed_form=closed,
        kl={k: gaussian_kl(*v, mu, sigma) for k, v in fitted.items()},
        kl_closed_form={k: gaussian_kl(*v, mu, sigma) for k, v in closed.items()},
        final_loss=losses,
    )
