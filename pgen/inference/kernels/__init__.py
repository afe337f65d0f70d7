"""MCMC kernels: each a Pyro ``MCMCKernel`` run by the shared engine :func:`pgen.sample`.

``HMC`` and ``NUTS`` (``pgen.inference.kernels.hmc``) work on any model with continuous
latent sites. ``Langevin`` (ULA, MALA), ``RBMGibbs`` and ``PairwiseGibbs``
(``pgen.inference.kernels.energy``) sample energy-based models, many chains as one
batched tensor. The step maths of every kernel is a pure function the tests call directly.
What the engine asks of a kernel is in :mod:`pgen.inference.kernels.base`.
"""

from .base import PgenKernel, StepInfo
from .energy import (
    AnnealedLangevin,
    Langevin,
    PairwiseGibbs,
    RBMGibbs,
    checkerboard,
    langevin_proposal,
    mala_log_accept,
    rbm_sweep,
    spin_block_update,
)
from .hmc import HMC, NUTS, DualAveraging, Metric, WelfordCovariance, adaptation_windows

__all__ = [
    "PgenKernel",
    "StepInfo",
    "HMC",
    "NUTS",
    "Metric",
    "DualAveraging",
    "WelfordCovariance",
    "adaptation_windows",
    "Langevin",
    "AnnealedLangevin",
    "RBMGibbs",
    "PairwiseGibbs",
    "checkerboard",
    "langevin_proposal",
    "mala_log_accept",
    "rbm_sweep",
    "spin_block_update",
]
