"""The contract between :func:`pgen.sample` and its kernels.

A kernel is a Pyro ``MCMCKernel``; the engine calls ``setup(warmup, *args, **kwargs)``
once per chain (after seeding torch, NumPy and Python from the chain's seed), reads
``initial_params``, then calls ``sample(params)`` ``warmup + draws`` times and
``cleanup()``. What the engine reads besides, all optional for a foreign kernel:

* ``transforms``: ``{site: transform}`` from constrained to unconstrained values; draws
  are mapped back with ``transform.inv`` (Pyro's convention). ``{}``: draws are
  returned constrained.
* ``last_stats``: a :class:`StepInfo` of the last transition, stored per draw in
  ``sample_stats``. A Pyro kernel without it is read through
  :func:`pgen.inference.mcmc.chains.foreign_step_info` (its step size and divergences).
* ``batch_chains``: a kernel that runs several chains as one batched state (energy
  models) says how many; the engine reports them as chains.
* ``failures``: a ``Counter`` of the reasons why the model could not be evaluated
  (pgen's HMC and NUTS: points rejected as divergences).
* ``state_dict()`` / ``load_state_dict(state)``: everything the chain needs to continue
  (tensors and plain data); with them the engine checkpoints and resumes runs.
* ``logging()``: a dict shown in the progress bar.

:class:`PgenKernel` is the base of pgen's kernels (HMC/NUTS, the energy-model kernels,
independence Metropolis-Hastings) and documents these attributes with their defaults.
"""

from __future__ import annotations

from typing import TypedDict

from pyro.infer.mcmc.mcmc_kernel import MCMCKernel

__all__ = ["PgenKernel", "StepInfo"]


class StepInfo(TypedDict, total=False):
    """What one transition reports (the ``sample_stats`` columns; kernels report the
    keys that apply to them, and may add their own, e.g. an energy model's magnetization)."""

    diverging: bool  # the trajectory diverged, or the proposal could not be evaluated
    step_size: float  # the step size used
    tree_depth: int  # NUTS: the depth of the trajectory's tree
    n_steps: int  # leapfrog steps taken
    acceptance_rate: float  # the Metropolis acceptance probability (NUTS: its average)
    accepted: bool  # whether the proposal was taken (Metropolis kernels)
    energy: float  # the Hamiltonian at the new point
    lp: float  # the log density at the new point


class PgenKernel(MCMCKernel):
    """Base of pgen's kernels: the engine's optional attributes (module docstring) with
    their defaults."""

    transforms: dict = {}
    batch_chains: int | None = None
    last_stats: StepInfo | None = None

    def logging(self):
        return {}
