r"""Rate and distortion: what the beta-VAE trades.

Write the negative ELBO of a VAE as distortion plus rate (Alemi et al. 2018):

.. math::
    -\mathrm{ELBO} = \underbrace{-\mathbb E_x \mathbb E_{q(z|x)} \log p(x|z)}_{D}
    + \underbrace{\mathbb E_x \mathrm{KL}(q(z|x) \,\|\, p(z))}_{R}.

The beta-VAE (Higgins et al. 2017) minimizes :math:`D + \beta R`. Each trained model is
a point :math:`(R, D)`; among all encoders and decoders the best reachable points form a
convex, decreasing frontier, and the beta-VAE optimum is where a line of slope
:math:`-\beta` (:math:`D + \beta R = \text{const}`) touches it. So :math:`\beta > 1` buys a
lower rate (fewer nats of information about :math:`x` in :math:`z`) with more distortion,
:math:`\beta < 1` the reverse, and only :math:`\beta = 1` maximizes the ELBO, whose level
lines have slope :math:`-1`.

:func:`rate_distortion_sweep` trains one VAE per beta with the shared engine
(:func:`pgen.fit`), measures :math:`R` (closed form) and :math:`D` (Monte Carlo, with its
standard error) on held-out data with :func:`~pgen.teach.elbo_decomposition`, and
checks, per model, that the engine's own beta-weighted loss equals :math:`D + \beta R`
term by term: beta enters the objective only as the weight of the KL.

References:
    Alemi et al. (2018), Fixing a Broken ELBO, ICML.
    Higgins et al. (2017), beta-VAE, ICLR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..checks import check_float, check_int

__all__ = ["RateDistortionSweep", "rate_distortion_sweep"]


@dataclass(frozen=True)
class RateDistortionSweep:
    """One trained beta-VAE per beta, measured on held-out data (nats per example).

    Attributes:
        betas: the KL weights.
        rates: :math:`R_i`, the mean closed-form KL to the prior.
        distortions: :math:`D_i`, the mean negative reconstruction log-likelihood.
        distortion_se: its Monte Carlo standard error.
        elbos: :math:`-(D_i + R_i)`.
        engine_loss: the training objective of model ``i`` as the shared engine
            computes it (its beta-weighted negative bound), per example.
        engine_se: that estimate's Monte Carlo standard error.
        models: the trained VAEs.
    """

    betas: list[float]
    rates: list[float]
    distortions: list[float]
    distortion_se: list[float]
    elbos: list[float]
    engine_loss: list[float]
    engine_se: list[float]
    models: list

    def objective(self) -> np.ndarray:
        """``[i, j]``: model ``i``'s value of beta ``j``'s objective :math:`D_i + \\beta_j R_i`."""
        return np.asarray(self.distortions)[:, None] + np.outer(self.rates, self.betas)

    def best_model_for_each_beta(self) -> list[int]:
        """For each beta, the model with the lowest :math:`D + \\beta R`: the diagonal when
        each fit found its own optimum (no model of the sweep beats it at its beta)."""
        return [int(i) for i in self.objective().argmin(0)]


def rate_distortion_sweep(
    x_train: torch.Tensor,
    x_test: torch.Tensor,
    betas=(0.5, 1.0, 2.0, 4.0),
    *,
    latent_dim: int = 8,
    hidden=(128,),
    epochs: int = 100,
    lr: float = 2e-3,
    num_samples: int = 50,
    seed: int = 0,
    progress: bool = False,
) -> RateDistortionSweep:
    """Train a Bernoulli VAE per beta on ``x_train`` and measure rate and distortion on
    ``x_test`` (binary data, e.g. ``pgen.data.load("digits", binarize="threshold")``).

    Args:
        betas: the KL weights (> 0).
        latent_dim, hidden: the VAE's size.
        epochs, lr: training of each VAE (Adam, batches of 128, closed-form KL).
        num_samples: draws of z per test example for D and for the engine's loss.
        seed: the seed of every fit and measurement.
    """
    from ..inference import fit
    from ..inference.elbo import make_objective
    from ..models import VAE
    from .elbo import elbo_decomposition

    betas = [check_float("beta", b, positive=True) for b in betas]
    if not betas:
        raise ValueError("betas must name at least one KL weight")
    num_samples = check_int("num_samples", num_samples, minimum=2)
    rows = {k: [] for k in ("rates", "distortions", "distortion_se", "elbos", "engine_loss", "engine_se")}
    models = []
    for beta in betas:
        torch.manual_seed(seed)
        vae = VAE(x_train.shape[1], latent_dim, tuple(hidden), beta=beta)
        fit(
            vae.model,
            vae.guide,
            x_train,
            epochs=epochs,
            lr=lr,
            objective="meanfield",
            seed=seed,
            progress=progress,
        )
        vae.eval()
        d = elbo_decomposition(vae.model, vae.guide, x_test, num_samples=num_samples, seed=seed)
        rate, distortion = float(d.kl_analytic.mean()), -float(d.reconstruction.mean())
        # per-example Monte Carlo errors and the spread over examples both enter the mean's se
        se = float(torch.sqrt((d.reconstruction_se**2).sum()) / len(x_test))
        # the engine's objective, one particle at a time: (D + beta R) per example, by a
        # separate code path (Pyro's TraceMeanField_ELBO with the model's KL scale)
        loss = make_objective("meanfield", num_particles=1)
        torch.manual_seed(seed + 1)
        with torch.no_grad():
            draws = torch.tensor(
                [loss.loss(vae.model, vae.guide, x_test) / len(x_test) for _ in range(num_samples)]
            )
        rows["rates"].append(rate)
        rows["distortions"].append(distortion)
        rows["distortion_se"].append(se)
        rows["elbos"].append(-(rate + distortion))
        rows["engine_loss"].append(float(draws.mean()))
        rows["engine_se"].append(float(draws.std() / np.sqrt(num_samples)))
        models.append(vae)
    return RateDistortionSweep(betas=betas, models=models, **rows)
