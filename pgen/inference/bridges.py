r"""From variational to Monte Carlo inference (the notes' "MCMC vs variational
inference"): a fitted guide used by exact MCMC.

* :class:`GuideStart` (``pgen.sample(..., init=fit)``): NUTS or HMC starts each chain
  at a draw of the fitted guide and its mass matrix at the covariance of the guide's
  draws in the unconstrained space. The warm-up then has nothing to find: no transient
  from a random start, no windows spent learning the posterior's scales. The chain is
  still exact: only where it starts and its first metric come from the guide.
* :class:`IndependenceMH` (``pgen.sample(model, ..., kernel=IndependenceMH(fit))``):
  the independence Metropolis-Hastings kernel (Tierney 1994) whose proposal is the
  fitted guide :math:`q`. A proposal :math:`z'` drawn from :math:`q` independently of
  the current :math:`z` is accepted with probability
  :math:`\min\{1, w(z')/w(z)\}`, :math:`w = p(x, z)/q(z)`; its invariant distribution is
  the exact posterior wherever :math:`q > 0` covers it. It is fast when the guide is
  good (every step is one independent draw), and its acceptance rate is a diagnostic of
  the guide: near 1 when :math:`q` is the posterior, falling as the importance weights
  grow uneven (as PSIS :math:`\hat k` rises). The proposals are the guide's draws with
  their log ratios :math:`\log p - \log q`, made in batches by
  :func:`~pgen.inference.guides.vi_posterior`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..checks import check_int
from .guides import VIPosterior
from .kernels.base import PgenKernel

__all__ = ["GuideStart", "IndependenceMH", "guide_draws"]


def _posterior(fitted, num_draws: int, seed: int) -> VIPosterior:
    """Draws of a fitted guide: from an ``SVIResult`` (``pgen.fit``'s) or a
    :class:`VIPosterior` as it is."""
    if isinstance(fitted, VIPosterior):
        return fitted
    if not callable(getattr(fitted, "posterior", None)) or getattr(fitted, "guide", None) is None:
        raise TypeError(
            "a fitted guide is an SVIResult (what pgen.fit returns) or a VIPosterior (its .posterior()); "
            f"got {type(fitted).__name__}"
        )
    return fitted.posterior(num_draws=num_draws, seed=seed)


def guide_draws(fitted, num_draws: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """``{site: (num_draws, *shape)}`` constrained draws of a fitted guide."""
    post = _posterior(fitted, num_draws, seed)
    return {name: value[0] for name, value in post.samples.items()}


class GuideStart:
    """Where NUTS/HMC start, from a fitted guide: ``pgen.sample(model, ..., init=fit)``.

    Args:
        fitted: an ``SVIResult`` of the same model and data, or its ``VIPosterior``.
        num_draws: guide draws for the starting points and the covariance.
        seed: seeds the draws.
    """

    def __init__(self, fitted, num_draws: int = 1000, seed: int = 0):
        num_draws = check_int("num_draws", num_draws, minimum=2)
        self.draws = guide_draws(fitted, num_draws, seed)

    def unconstrained(self, potential) -> np.ndarray:
        """The draws as flat unconstrained vectors ``(n, D)`` of ``potential``'s layout."""
        missing = sorted(set(potential.names) - set(self.draws))
        if missing:
            raise ValueError(
                f"the guide has no draws of latent site(s) {missing} of this model: was it fitted to "
                "another model?"
            )
        n = len(next(iter(self.draws.values())))
        rows = [
            potential.unconstrain({name: torch.as_tensor(self.draws[name][i]) for name in potential.names})
            for i in range(n)
        ]
        return torch.stack(rows).detach().cpu().double().numpy()


class IndependenceMH(PgenKernel):
    """Independence Metropolis-Hastings with a fitted guide as the proposal (see the
    module docstring). Run it with :func:`pgen.sample` (``kernel=IndependenceMH(fit)``);
    the per-draw ``acceptance_rate`` in ``sample_stats`` and :attr:`acceptance` say how
    good the guide is.

    Args:
        fitted: an ``SVIResult`` of the model and data being sampled (its guide, fitted
            parameters and model arguments are used).
        batch: proposals drawn per batch (they are drawn ahead, as one vectorized
            computation where the model allows).
    """

    def __init__(self, fitted, batch: int = 1000):
        if not callable(getattr(fitted, "posterior", None)) or getattr(fitted, "guide", None) is None:
            raise TypeError(
                f"IndependenceMH needs an SVIResult (what pgen.fit returns); got {type(fitted).__name__}"
            )
        self.fitted = fitted
        self.batch = check_int("batch", batch, minimum=10)
        self.transforms = {}  # draws are returned constrained
        self.accepted = 0
        self.proposed = 0

    def setup(self, warmup_steps, *args, **kwargs):
        self.seed = int(torch.randint(0, 2**31 - 1, ()).item())
        self.rng = np.random.default_rng(self.seed)
        self._round = 0
        self._fill()
        self.current = self._take()
        while not math.isfinite(self.current[1]):
            self.current = self._take()
        self.accepted = self.proposed = 0
        self.last_stats = None

    def _fill(self):
        post = _posterior(self.fitted, self.batch, self.seed + self._round)
        self._round += 1
        self._draws = {name: value[0] for name, value in post.samples.items()}
        self._ratios = post.log_ratios
        self._next = 0

    def _take(self):
        if self._next == len(self._ratios):
            self._fill()
        i = self._next
        self._next += 1
        return {name: torch.as_tensor(v[i]) for name, v in self._draws.items()}, float(self._ratios[i])

    @property
    def initial_params(self):
        return self.current[0]

    @initial_params.setter
    def initial_params(self, params):
        pass  # the chain starts at a draw of the guide

    def sample(self, params):
        proposal = self._take()
        log_alpha = proposal[1] - self.current[1]
        alpha = 1.0 if log_alpha >= 0 else (math.exp(log_alpha) if math.isfinite(log_alpha) else 0.0)
        accept = self.rng.random() < alpha
        if accept:
            self.current = proposal
        self.accepted += int(accept)
        self.proposed += 1
        self.last_stats = {"acceptance_rate": alpha, "accepted": bool(accept), "diverging": False}
        return self.current[0]

    @property
    def acceptance(self) -> float:
        """The share of proposals accepted so far in this chain."""
        return self.accepted / self.proposed if self.proposed else float("nan")

    def logging(self):
        return {"accept": f"{self.acceptance:.2f}"}
