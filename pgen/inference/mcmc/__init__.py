r"""The shared MCMC engine: :func:`sample` runs any Pyro ``MCMCKernel`` on any model.

This is the one place chains are run. A kernel is a Pyro ``MCMCKernel``: pgen's
:class:`~pgen.inference.kernels.NUTS` and :class:`~pgen.inference.kernels.HMC` (chosen by
name), Pyro's own kernels, or any other (energy-model samplers add theirs the same way).
The engine seeds each chain, runs warm-up and draws with a progress bar (chains one
after another in this process, or in parallel processes), maps draws to the
constrained space, and returns an :class:`MCMCResult` with an ArviZ ``InferenceData``,
R-hat, bulk and tail ESS, ESS per second and divergences, warning in plain words when
any of them says the draws should not be trusted.

Modules: :mod:`~pgen.inference.mcmc.sampling` (:func:`sample`, :func:`final_states`),
:mod:`~pgen.inference.mcmc.chains` (running chains), :mod:`~pgen.inference.mcmc.postprocess`
(constrained draws, pointwise log-likelihood, deterministic sites) and
:mod:`~pgen.inference.mcmc.result` (:class:`MCMCResult`, summary, warnings).
"""

from .chains import KERNELS
from .result import MCMCResult, convergence_warnings, summarize
from .sampling import final_states, sample

STAT_NAMES = ("diverging", "step_size", "tree_depth", "n_steps", "acceptance_rate", "energy", "lp")

__all__ = [
    "sample",
    "final_states",
    "MCMCResult",
    "summarize",
    "convergence_warnings",
    "KERNELS",
    "STAT_NAMES",
]
