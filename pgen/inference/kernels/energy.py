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

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from pyro import poutine
from pyro.infer.mcmc.mcmc_kernel import MCMCKernel
from pyro.poutine.util import site_is_subsample

from ...checks import check_float, check_int
from .hmc import DualAveraging

__all__ = [
    "Langevin",
    "AnnealedLangevin",
    "RBMGibbs",
    "PairwiseGibbs",
    "langevin_proposal",
    "mala_log_accept",
    "rbm_sweep",
    "spin_block_update",
    "checkerboard",
]


# --------------------------------------------------------------------------- step maths


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


def rbm_sweep(v, weight, visible_bias, hidden_bias, u_hidden, u_visible):
    r"""One block Gibbs sweep of an RBM with :math:`E(v, h) = -v^\top W h - b^\top v - c^\top h`:
    :math:`h_j \sim \mathrm{Bernoulli}(\sigma(v^\top W_{:j} + c_j))`, then
    :math:`v_i \sim \mathrm{Bernoulli}(\sigma(W_{i:} h + b_i))`, each a uniform draw
    compared with its probability. Returns ``(v, h)``."""
    h = (u_hidden < torch.sigmoid(v @ weight + hidden_bias)).to(v.dtype)
    v = (u_visible < torch.sigmoid(h @ weight.T + visible_bias)).to(v.dtype)
    return v, h


def spin_block_update(y, weight, bias, block, u):
    r"""Resample the spins ``block`` (an independent set of the coupling graph) of
    :math:`E(y) = -\tfrac12 y^\top W y - b^\top y` (W symmetric, zero diagonal) given the
    rest: :math:`P(y_i = 1\mid y_{-i}) = \sigma(2(W_{i:}y + b_i))`. Returns the new ``y``."""
    field = y @ weight[:, block] + bias[block]
    y = y.clone()
    y[:, block] = torch.where(u < torch.sigmoid(2.0 * field), 1.0, -1.0).to(y.dtype)
    return y


def checkerboard(rows: int, cols: int) -> list[torch.Tensor]:
    """The two colour classes of a ``rows x cols`` grid (flattened row-major): the
    independent blocks of a nearest-neighbour Ising model."""
    rows, cols = check_int("rows", rows, minimum=1), check_int("cols", cols, minimum=1)
    idx = torch.arange(rows * cols)
    parity = (idx // cols + idx % cols) % 2
    return [idx[parity == 0], idx[parity == 1]]


# --------------------------------------------------------------------------- the driver


class _Batched(MCMCKernel):
    """State: ``{site: (chains, ...)}``; statistics of the last transition in
    ``last_stats``; no transforms (the sites are unconstrained)."""

    transforms: dict = {}

    def __init__(self, num_chains: int):
        self.batch_chains = check_int("num_chains", num_chains, minimum=1)
        self.last_stats: dict | None = None
        self._state: dict[str, torch.Tensor] | None = None
        self._warmup = 0
        self._step = 0

    def setup(self, warmup_steps, *args, **kwargs):
        self._warmup, self._step = warmup_steps, 0
        self._setup(args, kwargs)

    def _setup(self, args, kwargs):
        pass

    @property
    def initial_params(self):
        return self._state

    @initial_params.setter
    def initial_params(self, params):
        self._state = {k: torch.as_tensor(v) for k, v in params.items()}

    def logging(self):
        return {k: f"{v:.3g}" for k, v in (self.last_stats or {}).items()}

    def diagnostics(self):
        return dict(self.last_stats or {})

    def sample(self, params):
        self._step += 1
        self._state = self._transition(params)
        return self._state

    def _transition(self, params):  # pragma: no cover - abstract
        raise NotImplementedError


def _initial_state(init, num_chains: int, name: str) -> dict[str, torch.Tensor]:
    if callable(init):
        init = init(num_chains)
    if not isinstance(init, dict) or not init:
        raise TypeError(f"{name} must be a dict {{site: (num_chains, ...) tensor}} or a callable giving one")
    out = {}
    for site, value in init.items():
        value = torch.as_tensor(value, dtype=torch.get_default_dtype()).clone()
        if value.dim() < 1 or value.shape[0] != num_chains:
            raise ValueError(
                f"{name}[{site!r}] must have num_chains={num_chains} rows; got shape {tuple(value.shape)}"
            )
        out[site] = value
    return out


class Langevin(_Batched):
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
                state = _initial_state(self.init, n, "init")
        else:
            state = _initial_state(self.init, self.batch_chains, "init")
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
            new = {n: torch.where(_rows(accept, v), proposal[n], v) for n, v in x.items()}
            self._energy = torch.where(accept, energy, self._energy)
            self._grad = {n: torch.where(_rows(accept, g), grad[n], g) for n, g in self._grad.items()}
            mean_accept = float(log_a.exp().mean())
            stats["accept_prob"] = mean_accept
            if self._adapt is not None and self._step <= self._warmup:
                self.step_size = self._adapt.update(mean_accept)
                if self._step == self._warmup:
                    self.step_size = self._adapt.final_step_size
        stats["energy"] = float(self._energy.mean())
        self.last_stats = stats
        return new


def _rows(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.reshape(-1, *([1] * (like.dim() - 1)))


class RBMGibbs(_Batched):
    r"""Block Gibbs sampling of an RBM (:func:`rbm_sweep`); the state is
    ``{"v": (chains, visible)}`` of 0/1 values.

    Args:
        weight, visible_bias, hidden_bias: :math:`W` ``(visible, hidden)``, b, c; tensors
            (parameters are read at every sweep, so training updates are seen).
        num_chains: chains run together.
        init: initial visible units ``(chains, visible)`` (default: uniform 0/1 draws).
        sweeps: sweeps per transition (k of CD-k).
    """

    def __init__(self, weight, visible_bias, hidden_bias, *, num_chains: int = 1, init=None, sweeps: int = 1):
        super().__init__(num_chains)
        if (
            weight.dim() != 2
            or visible_bias.shape != weight.shape[:1]
            or hidden_bias.shape != weight.shape[1:]
        ):
            raise ValueError(
                "weight must be (visible, hidden) with visible_bias (visible,) and hidden_bias (hidden,); "
                f"got {tuple(weight.shape)}, {tuple(visible_bias.shape)}, {tuple(hidden_bias.shape)}"
            )
        self.weight, self.visible_bias, self.hidden_bias = weight, visible_bias, hidden_bias
        self.sweeps = check_int("sweeps", sweeps, minimum=1)
        self.init = init

    def _setup(self, args, kwargs):
        n, d = self.batch_chains, self.weight.shape[0]
        if self.init is None:
            v = torch.randint(0, 2, (n, d)).to(self.weight.dtype)
        else:
            v = torch.as_tensor(self.init, dtype=self.weight.dtype)
            if v.shape != (n, d) or not ((v == 0) | (v == 1)).all():
                raise ValueError(f"init must be ({n}, {d}) of 0/1 values; got shape {tuple(v.shape)}")
        self._state = {"v": v}

    @torch.no_grad()
    def _transition(self, params):
        v = params["v"]
        w, b, c = self.weight.detach(), self.visible_bias.detach(), self.hidden_bias.detach()
        for _ in range(self.sweeps):
            v, h = rbm_sweep(v, w, b, c, torch.rand(v.shape[0], w.shape[1]), torch.rand(v.shape))
        self.last_stats = {"mean_visible": float(v.mean())}
        return {"v": v}


class PairwiseGibbs(_Batched):
    r"""Gibbs sampling of :math:`p(y) \propto \exp(\tfrac12 y^\top W y + b^\top y)`,
    :math:`y \in \{-1, 1\}^d`; the state is ``{"y": (chains, d)}``.

    Args:
        weight: symmetric ``(d, d)`` couplings with a zero diagonal.
        bias: ``(d,)``.
        blocks: ``None`` for a systematic scan one site at a time, or a list of index
            tensors covering every site once, each an independent set of the coupling
            graph (e.g. :func:`checkerboard` for a grid), updated as one block.
        num_chains: chains run together.
        init: initial spins ``(chains, d)`` of -1/1 (default: uniform).
    """

    def __init__(self, weight, bias, *, blocks: Sequence | None = None, num_chains: int = 1, init=None):
        super().__init__(num_chains)
        d = weight.shape[0]
        if weight.shape != (d, d) or bias.shape != (d,):
            raise ValueError(
                f"weight must be (d, d) and bias (d,); got {tuple(weight.shape)}, {tuple(bias.shape)}"
            )
        if not torch.allclose(weight, weight.T) or bool(weight.diagonal().abs().max() > 0):
            raise ValueError("weight must be symmetric with a zero diagonal (E(y) = -1/2 y^T W y - b^T y)")
        if blocks is None:
            blocks = [torch.tensor([i]) for i in range(d)]
        blocks = [torch.as_tensor(b, dtype=torch.long).reshape(-1) for b in blocks]
        covered = torch.cat(blocks).sort().values
        if not torch.equal(covered, torch.arange(d)):
            raise ValueError(f"blocks must cover each of the {d} sites exactly once")
        for i, block in enumerate(blocks):
            if bool(weight[block][:, block].abs().max() > 0):
                raise ValueError(
                    f"block {i} is not an independent set: some of its sites are coupled, so they "
                    "cannot be resampled together"
                )
        self.weight, self.bias, self.blocks, self.init = weight, bias, blocks, init

    def _setup(self, args, kwargs):
        n, d = self.batch_chains, self.weight.shape[0]
        if self.init is None:
            y = torch.randint(0, 2, (n, d)).to(self.weight.dtype) * 2 - 1
        else:
            y = torch.as_tensor(self.init, dtype=self.weight.dtype)
            if y.shape != (n, d) or not ((y == -1) | (y == 1)).all():
                raise ValueError(f"init must be ({n}, {d}) of -1/1 spins; got shape {tuple(y.shape)}")
        self._state = {"y": y}

    @torch.no_grad()
    def _transition(self, params):
        y = params["y"]
        w, b = self.weight.detach(), self.bias.detach()
        for block in self.blocks:
            y = spin_block_update(y, w, b, block, torch.rand(y.shape[0], len(block)))
        self.last_stats = {"magnetization": float(y.mean())}
        return {"y": y}


class AnnealedLangevin(_Batched):
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
        self._state = _initial_state({"x": init}, self.batch_chains, "init")

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
