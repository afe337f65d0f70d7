"""MCMC kernels: each a Pyro ``MCMCKernel`` run by the shared engine :func:`pgen.sample`.

``HMC`` and ``NUTS`` (``pgen.inference.kernels.hmc``) work on any model with continuous
latent sites. The step maths of every kernel is a pure function the tests call directly.
"""

from .hmc import HMC, NUTS, DualAveraging, Metric, WelfordCovariance, adaptation_windows

__all__ = ["HMC", "NUTS", "Metric", "DualAveraging", "WelfordCovariance", "adaptation_windows"]
