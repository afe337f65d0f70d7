"""The contract between :func:`pgen.sample` and its kernels.

A kernel is a Pyro ``MCMCKernel``; the engine calls ``setup(warmup, *args, **kwargs)``
once per chain (after seeding torch, NumPy and Python from the chain's seed), reads
``initial_params``, then calls ``sample(params)`` ``warmup + draws`` times and
``cleanup()``. What the engine reads besides, all optional for a foreign kernel:

* ``transforms``: ``{site: transform}`` from constrained to unconstrained values; draws
  are mapped back with ``transform.inv`` (Pyro's convention). ``{}``: draws are
  returned constrained.
* ``last_stats``: a :class:`StepInfo` of the last transition, stored per draw in
  ``sample_stats``. Any other kernel (Pyro's own, a user's) runs wrapped in
  :class:`ForeignKernel`, which reports its step size and divergences this way.
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

__all__ = ["PgenKernel", "StepInfo", "ForeignKernel", "as_pgen_kernel"]


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


class ForeignKernel(PgenKernel):
    """A kernel that is not pgen's (``pyro.infer.NUTS``, a user's ``MCMCKernel``), as
    the engine runs it: every call goes to the kernel itself, and ``last_stats`` reports
    its own ``last_stats`` if it keeps one, else what Pyro's HMC and NUTS keep (the step
    size, and whether the transition added to their list of divergences)."""

    def __init__(self, kernel: MCMCKernel):
        self.kernel = kernel
        self._divergences = 0

    @property
    def transforms(self):
        return getattr(self.kernel, "transforms", None) or {}

    @property
    def initial_params(self):
        return self.kernel.initial_params

    @initial_params.setter
    def initial_params(self, params):
        self.kernel.initial_params = params

    def setup(self, warmup_steps, *args, **kwargs):
        self._divergences = 0
        self.last_stats = None
        return self.kernel.setup(warmup_steps, *args, **kwargs)

    def sample(self, params):
        params = self.kernel.sample(params)
        own = getattr(self.kernel, "last_stats", None)
        if own is not None:
            self.last_stats = own
            return params
        divergences = getattr(self.kernel, "_divergences", None)
        count = len(divergences) if isinstance(divergences, list) else 0
        stats: StepInfo = {"diverging": count > self._divergences}
        self._divergences = count
        step = getattr(self.kernel, "step_size", None)
        if isinstance(step, (int, float)):
            stats["step_size"] = float(step)
        self.last_stats = stats
        return params

    def cleanup(self):
        return self.kernel.cleanup()

    def logging(self):
        return self.kernel.logging()

    def diagnostics(self):
        return self.kernel.diagnostics()


def as_pgen_kernel(kernel: MCMCKernel) -> PgenKernel:
    """``kernel`` itself if it is pgen's, else wrapped in :class:`ForeignKernel`."""
    return kernel if isinstance(kernel, PgenKernel) else ForeignKernel(kernel)
