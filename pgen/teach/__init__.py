"""Teaching the ELBO: each derivation in the notes computed on a real model, checked
numerically and plotted (see ``docs/derivations.md``; ``pgen teach TOPIC`` draws each
figure).

* :func:`elbo_decomposition`: reconstruction, KL (Monte Carlo and closed form), ELBO,
  and with an exact model the gap log p(x) - ELBO next to KL(q || p(z|x)).
* :func:`iwae_curve`: the importance-weighted bound against K, up to log p(x).
* :func:`track_elbo_terms`: the terms over training.
* :func:`gradient_estimates`: reparameterization vs score-function gradients.
* :func:`gaussian_approximations`: mean-field vs full-rank Gaussians on a correlated
  target, against their closed-form optima.
* :func:`rate_distortion_sweep`: the beta-VAE's rate against distortion.
* :func:`posterior_collapse`: a MADE decoder vs a factorized one; the KL goes to zero.
* :func:`fit_gaussian`: one Gaussian fitted to a mixture by reverse KL, forward KL, JS, MMD.
* :func:`mean_field_ising`: coordinate-ascent mean field, checked against log Z by
  enumeration.
* :func:`score_matching_objectives`: explicit and integration-by-parts score matching.
* :func:`change_of_variables`, :func:`planar_steps`, :func:`autoregressive_cost`: a
  flow's log-determinants against autograd and its density's mass, a planar flow layer by
  layer, and the D passes of autoregressive sampling.
"""

from .collapse import BinaryMarkovChain, CollapseStudy, posterior_collapse
from .divergences import DIVERGENCES, FitResult, GaussianMixture1D, divergence, fit_gaussian
from .elbo import ELBODecomposition, IWAECurve, elbo_decomposition, iwae_curve, track_elbo_terms
from .flows import (
    AutoregressiveCost,
    ChangeOfVariables,
    PlanarSteps,
    autoregressive_cost,
    change_of_variables,
    planar_steps,
)
from .gaussians import GaussianApproximations, gaussian_approximations, gaussian_kl
from .gradients import ESTIMATORS, GradientStudy, gradient_estimates, gradient_variance_curve
from .meanfield import MeanFieldRun, ising_elbo, ising_log_z, mean_field_ising, random_ising
from .rate import RateDistortionSweep, rate_distortion_sweep
from .score import ScoreObjectives, jacobian_trace, score_matching_objectives

__all__ = [
    "change_of_variables",
    "ChangeOfVariables",
    "planar_steps",
    "PlanarSteps",
    "autoregressive_cost",
    "AutoregressiveCost",
    "elbo_decomposition",
    "ELBODecomposition",
    "iwae_curve",
    "IWAECurve",
    "track_elbo_terms",
    "mean_field_ising",
    "MeanFieldRun",
    "ising_log_z",
    "ising_elbo",
    "random_ising",
    "score_matching_objectives",
    "ScoreObjectives",
    "jacobian_trace",
    "gradient_estimates",
    "gradient_variance_curve",
    "GradientStudy",
    "ESTIMATORS",
    "GaussianMixture1D",
    "divergence",
    "fit_gaussian",
    "FitResult",
    "DIVERGENCES",
    "gaussian_approximations",
    "GaussianApproximations",
    "gaussian_kl",
    "rate_distortion_sweep",
    "RateDistortionSweep",
    "posterior_collapse",
    "CollapseStudy",
    "BinaryMarkovChain",
]
