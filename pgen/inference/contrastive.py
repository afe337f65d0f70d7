r"""Contrastive divergence: the maximum-likelihood objective of an energy-based model, for
the shared SVI engine.

For a model with unnormalized density :math:`\tilde p_\theta(x) = e^{-E_\theta(x)}` and
:math:`p_\theta = \tilde p_\theta / Z_\theta`, the gradient of the average log-likelihood
is the difference of two expectations (the notes' positive and negative phases):

.. math::
    \nabla_\theta \frac1N\sum_n \log p_\theta(x_n)
    = \frac1N\sum_n \nabla_\theta \log\tilde p_\theta(x_n)
      - \mathbb E_{x \sim p_\theta}\!\left[\nabla_\theta \log\tilde p_\theta(x)\right].

The model expectation is estimated with samples from MCMC chains run by any of the MCMC
engine's kernels (block Gibbs for an RBM, Gibbs for a Boltzmann machine, Langevin for a
continuous energy). :class:`ContrastiveDivergence` turns this into a loss whose gradient
is minus that estimate (times N), so :func:`pgen.fit` trains an energy model like any
other Pyro model, with its minibatches, progress bar, checkpoints and resume:

* CD-k (Hinton 2002): each step starts the chains at the minibatch and runs ``k``
  transitions;
* PCD-k (Tieleman 2008): ``num_chains`` persistent chains carry over from step to step;
  with ``chains_per_step`` a random subset of them moves each step and a fraction
  ``restart`` of that subset starts afresh (the replay buffer of Du & Mordatch 2019).

The model is written as any pgen model: its observed site(s) inside
``pyro.plate("data", len(x))`` and the energy as ``pyro.factor``; the guide is empty (no
latent variables). :math:`\log\tilde p_\theta(x)` per example is the sum of the model's
log-densities with ``x`` observed, base distribution included, so ``log Z`` never
appears. The reported loss per example is
:math:`\overline{\log\tilde p}(\text{chains}) - \overline{\log\tilde p}(\text{data})`:
pgen's ``train_elbo`` is then minus it, the *contrastive gap* (how much more the model
favours the data than its own samples). It is not a bound on the log-likelihood; it
tends to zero as the chains come to look like the data, and the gap between its
training and validation values is the difference of their average log-likelihoods, since
:math:`\log Z` cancels.

References:
    Hinton (2002), Training products of experts by minimizing contrastive divergence.
    Tieleman (2008), Training restricted Boltzmann machines using approximations to the
    likelihood gradient.
    Du & Mordatch (2019), Implicit generation and modeling with energy based models.
"""

from __future__ import annotations

from collections.abc import Callable

import pyro
import torch
from pyro import poutine
from pyro.poutine.util import site_is_subsample

from ..checks import check_choice, check_float, check_int

__all__ = ["ContrastiveDivergence", "log_density_per_example"]

_INITS = ("data", "uniform")


def log_density_per_example(model: Callable, x: torch.Tensor, *args, **kwargs) -> tuple[torch.Tensor, float]:
    r""":math:`\log\tilde p(x_n)` for each row of ``x`` (the model run with ``x`` observed,
    every sample and factor site summed per example, without minibatch scaling), and the
    minibatch scale the SVI engine put on the data plate (1.0 outside :func:`pgen.fit`).

    Raises:
        ValueError: the model has a latent site, or a site without one value per example.
    """
    trace = poutine.trace(model).get_trace(x, *args, **kwargs)
    n = x.shape[0]
    total = torch.zeros(n, dtype=x.dtype, device=x.device)
    scale = 1.0
    for name, site in trace.nodes.items():
        if site["type"] != "sample" or site_is_subsample(site):
            continue
        if not site["is_observed"]:
            raise ValueError(
                f"contrastive divergence trains fully observed energy models; site {name!r} is latent "
                "(sample it inside the model's chains, or use an ELBO objective)"
            )
        lp = site["fn"].log_prob(site["value"])
        if lp.dim() == 0 or lp.shape[0] != n:
            raise ValueError(
                f"site {name!r} must have one log density per example (inside pyro.plate('data', "
                f"{n})); got shape {tuple(lp.shape)}"
            )
        total = total + lp.reshape(n, -1).sum(-1)
        site_scale = site["scale"]
        scale = float(site_scale) if not torch.is_tensor(site_scale) else float(site_scale.reshape(-1)[0])
    return total, scale


class ContrastiveDivergence(pyro.infer.ELBO):
    r"""CD-k and PCD-k (module docstring) as an objective for :func:`pgen.fit`.

    Args:
        kernel: ``kernel(num_chains, init=x0)`` returning an MCMC kernel of the engine
            (e.g. ``rbm.gibbs_kernel``) whose state has one site, started at the
            ``(num_chains, ...)`` tensor ``x0`` and leaving :math:`p_\theta` invariant. It
            is built afresh for each step, so it sees the current parameters.
        k: transitions per step.
        persistent: PCD (chains kept between steps) instead of CD (chains started at the
            minibatch).
        num_chains: PCD: the number of persistent chains.
        chains_per_step: PCD: move this many randomly chosen chains per step (default:
            all of them).
        restart: PCD: the fraction of the moved chains started afresh each step, in [0, 1).
        init: where fresh chains start: ``"data"`` (random rows of the minibatch),
            ``"uniform"`` (uniform over the minibatch's bounding box, for real data), or a
            callable ``(n, x_batch) -> (n, ...)`` tensor.
        alpha: weight of the penalty
            :math:`\alpha(\overline{\log\tilde p(\text{data})^2} + \overline{\log\tilde p(\text{chains})^2})`
            that keeps a flexible energy's values bounded (Du & Mordatch 2019); 0 for none.
            It is in the gradient, not in the reported loss.

    The persistent chains are part of the objective's ``state_dict()``, which
    :func:`pgen.fit` writes into its checkpoints, so a resumed run continues them.
    """

    def __init__(
        self,
        kernel: Callable,
        *,
        k: int = 1,
        persistent: bool = True,
        num_chains: int = 100,
        chains_per_step: int | None = None,
        restart: float = 0.0,
        init: str | Callable = "data",
        alpha: float = 0.0,
    ):
        super().__init__(num_particles=1)
        if not callable(kernel):
            raise TypeError(
                f"kernel must be a callable (num_chains, init=x0) -> MCMC kernel; got {type(kernel).__name__}"
            )
        self.kernel = kernel
        self.k = check_int("k", k, minimum=1)
        self.persistent = bool(persistent)
        self.num_chains = check_int("num_chains", num_chains, minimum=1)
        self.chains_per_step = (
            None if chains_per_step is None else check_int("chains_per_step", chains_per_step, minimum=1)
        )
        if self.chains_per_step is not None and self.chains_per_step > self.num_chains:
            raise ValueError(f"chains_per_step={self.chains_per_step} exceeds num_chains={self.num_chains}")
        self.restart = check_float("restart", restart, nonnegative=True, below=1.0)
        if not self.persistent and (chains_per_step is not None or self.restart > 0):
            raise ValueError("chains_per_step and restart apply to persistent chains (persistent=True)")
        self.init = init if callable(init) else check_choice("init", init, _INITS)
        self.alpha = check_float("alpha", alpha, nonnegative=True)
        self.chains: torch.Tensor | None = None
        self.last_stats: dict = {}

    # -- the chains
    def _fresh(self, n: int, xb: torch.Tensor) -> torch.Tensor:
        xb = xb.detach()
        if callable(self.init):
            x0 = torch.as_tensor(self.init(n, xb), dtype=xb.dtype, device=xb.device)
            if x0.shape != (n, *xb.shape[1:]):
                raise ValueError(f"init returned shape {tuple(x0.shape)}; expected {(n, *xb.shape[1:])}")
            return x0
        if self.init == "data":
            return xb[torch.randint(0, len(xb), (n,), device=xb.device)].clone()
        lo, hi = xb.min(0).values, xb.max(0).values
        return lo + (hi - lo) * torch.rand(n, *xb.shape[1:], dtype=xb.dtype, device=xb.device)

    def _run(self, x0: torch.Tensor) -> torch.Tensor:
        kernel = self.kernel(len(x0), init=x0)
        kernel.setup(0)
        state = kernel.initial_params
        if len(state) != 1:
            raise ValueError(f"the kernel's state must have one site; it has {sorted(state)}")
        for _ in range(self.k):
            state = kernel.sample(state)
        self.last_stats = dict(getattr(kernel, "last_stats", None) or {})
        (value,) = state.values()
        return value.detach().to(x0.dtype)

    def _negatives(self, xb: torch.Tensor, *, move: bool) -> torch.Tensor:
        """Samples for the negative phase; with ``move`` the chains take ``k`` transitions."""
        if not self.persistent:
            return self._run(xb.detach()) if move else xb.detach()
        if self.chains is None or self.chains.shape[1:] != xb.shape[1:]:
            self.chains = self._fresh(self.num_chains, xb).clone()  # owned: updated in place
        if self.chains.device != xb.device:  # restored from a checkpoint (CPU tensors)
            self.chains = self.chains.to(xb.device)
        if not move:
            return self.chains
        if self.chains_per_step is None:
            idx = torch.arange(self.num_chains, device=xb.device)
        else:
            idx = torch.randperm(self.num_chains, device=xb.device)[: self.chains_per_step]
        start = self.chains[idx]
        if self.restart > 0:
            fresh = torch.rand(len(idx), device=xb.device) < self.restart
            if bool(fresh.any()):
                start = start.clone()
                start[fresh] = self._fresh(int(fresh.sum()), xb)
        moved = self._run(start)
        self.chains[idx] = moved
        return moved

    # -- the objective
    def _terms(self, model, xb, args, kwargs, *, move: bool):
        lp_data, scale = log_density_per_example(model, xb, *args, **kwargs)
        neg = self._negatives(xb, move=move)
        lp_chains, _ = log_density_per_example(model, neg, *args, **kwargs)
        n_total = scale * len(xb)  # the SVI engine scales a minibatch of B to N = scale * B
        loss = n_total * (lp_chains.mean() - lp_data.mean())
        penalty = n_total * self.alpha * ((lp_data**2).mean() + (lp_chains**2).mean())
        return loss, penalty

    def _data(self, args):
        if not args or not torch.is_tensor(args[0]):
            raise ValueError("contrastive divergence needs the data batch as the model's first argument")
        return args[0], args[1:]

    def loss(self, model, guide, *args, **kwargs) -> float:
        """The loss on a batch against the current chains (which do not move)."""
        xb, rest = self._data(args)
        with torch.no_grad():
            loss, _ = self._terms(model, xb, rest, kwargs, move=False)
        return float(loss)

    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
        """One step's surrogate (the chains move): its gradient is minus the
        log-likelihood gradient estimate, plus the penalty's."""
        xb, rest = self._data(args)
        loss, penalty = self._terms(model, xb, rest, kwargs, move=True)
        return loss + penalty

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        xb, rest = self._data(args)
        loss, penalty = self._terms(model, xb, rest, kwargs, move=True)
        surrogate = loss + penalty
        if surrogate.requires_grad:
            surrogate.backward()
        return float(loss.detach())

    def _get_trace(self, model, guide, args, kwargs):  # pragma: no cover - Pyro's abstract hook
        raise NotImplementedError("contrastive divergence does not trace a guide")

    # -- checkpoints
    def state_dict(self) -> dict:
        return {"chains": None if self.chains is None else self.chains.clone()}

    def load_state_dict(self, state: dict) -> None:
        chains = state.get("chains")
        self.chains = None if chains is None else torch.as_tensor(chains).clone()
