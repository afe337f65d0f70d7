r"""Langevin kernels for energy and score models: the unadjusted Langevin algorithm
(ULA), Metropolis-adjusted Langevin (MALA; Roberts & Tweedie 1996) with its step size
adapted towards acceptance 0.574 (Roberts & Rosenthal 1998) by dual averaging, and
annealed Langevin dynamics along a noise ladder (Song & Ermon 2019).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from pyro import poutine
from pyro.poutine.util import site_is_subsample

from ...checks import check_float, check_int
from .adaptation import DualAveraging
from .batched import BatchedKernel, initial_state, rows

__all__ = ["Langevin", "AnnealedLangevin", "langevin_proposal", "mala_log_accept"]


def langevin_proposal(x: torch.Tensor, grad: torch.Tensor, step_size: float, noise: torch.Tensor):
    r"""One Langevin step :math:`x' = x - \epsilon\nabla E(x) + \sqrt{2\epsilon}\,\xi`."""
    return x - step_size * grad + math.sqrt(2.0 * step_size) * noise


def mala_log_accept(x, y, energy_x, energy_y, grad_x, grad_y, step_size: float) -> torch.Tensor:
    r"""Log acceptance probability of the MALA move x -> y, per chain (leading dim):
    :math:`\min(0, E(x) - E(y) + \log q(x\mid y) - \log q(y\mid x))` with
    :math:`q(b\mid a) = \mathcal N(b;\ a - \epsilon\nabla E(a),\ 2\epsilon I)`."""
    return (energy_x - energy_y + _log_q_ratio(x, y, grad_x, grad_y, step_size)).clamp(max=0.0)


def _log_q_ratio(x, y, grad_x, grad_y, step_size: float) -> torch.Tensor:
    r""":math:`\log q(x\mid y) - \log q(y\mid x)` per chain, for one site."""
    dims = tuple(range(1, x.dim()))
    forward = -((y - x + step_size * grad_x) ** 2).sum(dims) / (4.0 * step_size)
    backward = -((x - y + step_size * grad_y) ** 2).sum(dims) / (4.0 * step_size)
    return backward - forward


class Langevin(BatchedKernel):
    r"""Langevin dynamics on :math:`E(x)`: unadjusted (ULA, biased by O(step size)) or,
    with ``metropolis=True``, MALA (exact stationary law).

    The energy comes from ``potential_fn({site: (chains, ...)}) -> (chains,)`` energies,
    or from a Pyro ``model`` whose latent sites carry a leading chain dimension (sample
    them inside ``pyro.plate("chains", num_chains)``; an energy enters as
    ``pyro.factor``): E is minus the model's log density per chain, its sites must be
    real-valued.

    Args:
        model: a Pyro model (or ``None`` with ``potential_fn``).
        potential_fn: per-chain energies of a state dict.
        init: the initial state ``{site: (chains, ...)}`` or a callable of ``num_chains``
            giving it (with ``model``: default, the model's own draw).
        step_size: :math:`\epsilon > 0` (the initial one for MALA with adaptation).
        metropolis: MALA instead of ULA.
        adapt_step_size: MALA only: dual averaging during warm-up towards
            ``target_accept`` (mean over chains). Default: on for MALA.
        target_accept: in (0, 1); 0.574 is optimal for MALA in high dimensions.
        num_chains: chains run together; with ``model``, each latent site's leading
            dimension (for one chain the model may leave it out).
    """

    def __init__(
        self,
        model: Callable | None = None,
        *,
        potential_fn: Callable | None = None,
        init=None,
        step_size: float = 0.01,
        metropolis: bool = False,
        adapt_step_size: bool | None = None,
        target_accept: float = 0.574,
        num_chains: int = 1,
    ):
        if (model is None) == (potential_fn is None):
            raise ValueError("give exactly one of model (a Pyro model) and potential_fn (per-chain energies)")
        if potential_fn is not None and init is None:
            raise ValueError("potential_fn needs init: {site: (num_chains, ...) tensor} or a callable")
        super().__init__(num_chains)
        self.model, self.potential_fn, self.init = model, potential_fn, init
        self.step_size = check_float("step_size", step_size, positive=True)
        self.metropolis = bool(metropolis)
        if adapt_step_size and not self.metropolis:
            raise ValueError("adapt_step_size needs metropolis=True (ULA has no acceptance rate to aim at)")
        self.adapt_step_size = self.metropolis if adapt_step_size is None else bool(adapt_step_size)
        self.target_accept = check_float("target_accept", target_accept, positive=True, below=1.0)

    # -- energies
    def _setup(self, args, kwargs):
        self._args, self._kwargs = args, kwargs
        if self.model is not None:
            with torch.no_grad():
                trace = poutine.trace(self.model).get_trace(*args, **kwargs)
            latent = {
                name: site
                for name, site in trace.nodes.items()
                if site["type"] == "sample" and not site["is_observed"] and not site_is_subsample(site)
            }
            if not latent:
                raise ValueError("the model has no latent sample sites for Langevin to move")
            for name, site in latent.items():
                if site["fn"].support is not torch.distributions.constraints.real and not isinstance(
                    site["fn"].support, torch.distributions.constraints.independent
                ):
                    raise ValueError(
                        f"Langevin moves real-valued sites; site {name!r} has support {site['fn'].support}"
                    )
            n = self.batch_chains
            batched = all(s["value"].dim() and s["value"].shape[0] == n for s in latent.values())
            if not batched and n != 1:
                raise ValueError(
                    f"num_chains={n}: every latent site needs a leading dimension of {n} (sample it "
                    f"inside pyro.plate('chains', {n}))"
                )
            # one unbatched chain: the state gets a leading dimension of 1, dropped for the model
            self._squeeze = not batched
            state = {
                k: (s["value"].unsqueeze(0) if self._squeeze else s["value"]).detach()
                for k, s in latent.items()
            }
            if self.init is not None:
                state = initial_state(self.init, n, "init")
        else:
            state = initial_state(self.init, self.batch_chains, "init")
        self._state = state
        self._energy, self._grad = self._energy_and_grad(state)
        self._adapt = DualAveraging(self.step_size, self.target_accept) if self.adapt_step_size else None

    def _model_energy(self, state):
        values = {n: v.squeeze(0) for n, v in state.items()} if self._squeeze else state
        trace = poutine.trace(poutine.condition(self.model, data=values)).get_trace(
            *self._args, **self._kwargs
        )
        total = 0.0
        for site in trace.nodes.values():
            if site["type"] != "sample" or site_is_subsample(site):
                continue
            lp = site["fn"].log_prob(site["value"])
            scale = site["scale"]
            lp = lp * scale if not isinstance(scale, float) or scale != 1.0 else lp
            if lp.dim() == 0:
                if self.batch_chains != 1:
                    raise ValueError(
                        f"site {site['name']!r} has one log density for all {self.batch_chains} chains; "
                        "put it inside the chains plate"
                    )
                lp = lp.reshape(1)
            total = total + lp.reshape(self.batch_chains, -1).sum(-1)
        return -total

    def _energy_and_grad(self, state):
        with torch.enable_grad():
            leaves = {n: v.detach().requires_grad_(True) for n, v in state.items()}
            energy = self._model_energy(leaves) if self.model is not None else self.potential_fn(leaves)
            energy = torch.as_tensor(energy)
            if energy.shape != (self.batch_chains,):
                raise ValueError(
                    f"the energy must have shape (num_chains,) = ({self.batch_chains},); "
                    f"got {tuple(energy.shape)}"
                )
            grads = torch.autograd.grad(energy.sum(), list(leaves.values()))
        return energy.detach(), {n: g.detach() for n, g in zip(leaves, grads, strict=True)}

    # -- one transition
    def _transition(self, params):
        if params is not self._state:  # moved from outside: recompute energy and gradient
            self._state = {k: torch.as_tensor(v) for k, v in params.items()}
            self._energy, self._grad = self._energy_and_grad(self._state)
        x, eps = self._state, self.step_size
        proposal = {n: langevin_proposal(v, self._grad[n], eps, torch.randn_like(v)) for n, v in x.items()}
        energy, grad = self._energy_and_grad(proposal)
        stats = {"step_size": eps}
        if not self.metropolis:
            new, self._energy, self._grad = proposal, energy, grad
        else:
            ratio = sum(_log_q_ratio(x[n], proposal[n], self._grad[n], grad[n], eps) for n in x)
            log_a = (self._energy - energy + ratio).clamp(max=0.0)
            log_a = torch.nan_to_num(log_a, nan=-math.inf)
            accept = torch.rand_like(log_a).log() < log_a
            new = {n: torch.where(rows(accept, v), proposal[n], v) for n, v in x.items()}
            self._energy = torch.where(accept, energy, self._energy)
            self._grad = {n: torch.where(rows(accept, g), grad[n], g) for n, g in self._grad.items()}
            mean_accept = float(log_a.exp().mean())
            stats["accept_prob"] = mean_accept
            if self._adapt is not None and self._step <= self._warmup:
                self.step_size = self._adapt.update(mean_accept)
                if self._step == self._warmup:
                    self.step_size = self._adapt.final_step_size
        stats["energy"] = float(self._energy.mean())
        self.last_stats = stats
        return new


class AnnealedLangevin(BatchedKernel):
    r"""Annealed Langevin dynamics over a noise ladder (Song & Ermon 2019, Alg. 1): for
    each :math:`\sigma_i` from the largest down, ``steps_per_level`` steps
    :math:`x \leftarrow x + \tfrac{\alpha_i}{2} s(x, \sigma_i) + \sqrt{\alpha_i}\,z`,
    :math:`\alpha_i = \epsilon\,\sigma_i^2/\sigma_L^2` (the :func:`langevin_proposal` with
    energy gradient :math:`-s` and step :math:`\alpha_i/2`). One transition is one step,
    so a full pass is ``len(sigmas) * steps_per_level`` transitions (``warmup`` plus
    ``draws`` in :func:`pgen.sample`); later transitions stay at the smallest noise.

    Args:
        score_fn: ``(x, sigma) -> `` the score of the data perturbed by
            :math:`\mathcal N(0, \sigma^2 I)`, for ``x`` ``(chains, ...)``.
        sigmas: the ladder, decreasing.
        init: initial ``(chains, ...)`` positions, or a callable of ``num_chains``.
        steps_per_level: T.
        step_size: :math:`\epsilon`.
        num_chains: chains run together.
    """

    def __init__(
        self,
        score_fn: Callable,
        sigmas: Sequence[float],
        *,
        init,
        steps_per_level: int = 100,
        step_size: float = 2e-5,
        num_chains: int = 1,
    ):
        super().__init__(num_chains)
        sigmas = [float(s) for s in sigmas]
        if (
            not sigmas
            or any(s <= 0 for s in sigmas)
            or any(a < b for a, b in zip(sigmas, sigmas[1:], strict=False))
        ):
            raise ValueError(f"sigmas must be positive and decreasing; got {sigmas}")
        self.score_fn, self.sigmas, self.init = score_fn, sigmas, init
        self.steps_per_level = check_int("steps_per_level", steps_per_level, minimum=1)
        self.step_size = check_float("step_size", step_size, positive=True)

    def _setup(self, args, kwargs):
        init = self.init(self.batch_chains) if callable(self.init) else self.init
        self._state = initial_state({"x": init}, self.batch_chains, "init")

    @torch.no_grad()
    def _transition(self, params):
        level = min((self._step - 1) // self.steps_per_level, len(self.sigmas) - 1)
        sigma = self.sigmas[level]
        alpha = self.step_size * sigma**2 / self.sigmas[-1] ** 2
        x = params["x"]
        score = self.score_fn(x, sigma)
        x = langevin_proposal(x, -score, alpha / 2, torch.randn_like(x))
        self.last_stats = {"sigma": sigma}
        return {"x": x}
