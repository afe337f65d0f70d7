r"""Samplers for energy-based models :math:`p(x) \propto e^{-E(x)}`, each running many
chains as one batched tensor.

* :class:`Langevin`: the unadjusted Langevin algorithm (ULA) and, with
  ``metropolis=True``, the Metropolis-adjusted one (MALA; Roberts & Tweedie 1996),
  whose step size adapts during warm-up towards acceptance 0.574 (Roberts & Rosenthal
  1998) by dual averaging.
* :class:`AnnealedLangevin`: Langevin steps along a decreasing noise ladder with a
  noise-conditional score (Song & Ermon 2019).
* :class:`RBMGibbs`: block Gibbs sampling of a restricted Boltzmann machine,
  :math:`h \mid v` then :math:`v \mid h`.
* :class:`PairwiseGibbs`: Gibbs sampling of a binary pairwise model (Boltzmann
  machine, Ising) over spins :math:`y \in \{-1, 1\}^d`, one site at a time or one
  independent block at a time (checkerboard on a grid, :func:`checkerboard`).

The maths of one step is in pure functions (:func:`langevin_proposal`,
:func:`mala_log_accept`, :func:`rbm_sweep`, :func:`spin_block_update`) that the tests
call directly. The kernels' state is a dict of ``(chains, ...)`` tensors; the engine
:func:`pgen.sample` reads ``batch_chains`` and reports each batched chain as a chain.
"""

from .batched import BatchedKernel
from .gibbs import PairwiseGibbs, RBMGibbs, checkerboard, rbm_sweep, spin_block_update
from .langevin import AnnealedLangevin, Langevin, langevin_proposal, mala_log_accept

__all__ = [
    "Langevin",
    "AnnealedLangevin",
    "RBMGibbs",
    "PairwiseGibbs",
    "BatchedKernel",
    "langevin_proposal",
    "mala_log_accept",
    "rbm_sweep",
    "spin_block_update",
    "checkerboard",
]
