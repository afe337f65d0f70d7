r"""Hamiltonian Monte Carlo and the No-U-Turn sampler on a flat unconstrained vector.

The step maths is written as pure functions on numpy float64 vectors (momentum
refresh, leapfrog, the multinomial NUTS transition, dual averaging, the windowed
mass-matrix schedule), which the tests call directly; :class:`HMC` and :class:`NUTS` are
thin Pyro ``MCMCKernel`` wrappers that hold one chain's state and run warm-up
adaptation. The model enters only through its potential
:math:`U(z) = -\log p(\text{data}, T(z)) - \log|\det J_T(z)|` and its gradient
(:class:`pgen.inference.potential.Potential`).

With inverse mass matrix :math:`\Sigma` (the posterior covariance estimated during
warm-up), momentum :math:`p \sim \mathcal N(0, \Sigma^{-1})`, kinetic energy
:math:`K(p) = \tfrac12 p^\top \Sigma p`, and one leapfrog step of size :math:`\epsilon`

.. math::
    p \leftarrow p - \tfrac{\epsilon}{2}\nabla U(z),\quad
    z \leftarrow z + \epsilon\,\Sigma p,\quad
    p \leftarrow p - \tfrac{\epsilon}{2}\nabla U(z).

References:
    Neal (2011), MCMC using Hamiltonian dynamics, Handbook of MCMC.
    Hoffman & Gelman (2014), The No-U-Turn Sampler, JMLR 15 (dual averaging, Alg. 5).
    Betancourt (2017), A Conceptual Introduction to Hamiltonian Monte Carlo,
    arXiv:1701.02434 (multinomial sampling, the generalized U-turn criterion).
    Stan Reference Manual, "MCMC sampling" (windowed warm-up, the extra U-turn checks
    across merged subtrees, mass-matrix regularization).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from pyro.infer.mcmc.mcmc_kernel import MCMCKernel

from ...checks import check_choice, check_float, check_int
from ..potential import Potential

__all__ = [
    "HMC",
    "NUTS",
    "Metric",
    "DualAveraging",
    "WelfordCovariance",
    "adaptation_windows",
    "leapfrog",
    "nuts_transition",
    "hmc_transition",
    "find_reasonable_step_size",
    "DENSE_MASS_MAX_DIM",
]

MAX_DELTA_H = 1000.0  # an energy error above this marks a divergent trajectory (Stan's value)
DENSE_MASS_MAX_DIM = 50  # dense_mass="auto" adapts a dense matrix up to this many dimensions


# --------------------------------------------------------------------------- the metric


class Metric:
    r"""The inverse mass matrix :math:`\Sigma` (diagonal ``(D,)`` or dense ``(D, D)``)."""

    def __init__(self, inverse_mass: np.ndarray):
        inverse_mass = np.asarray(inverse_mass, dtype=np.float64)
        self.dense = inverse_mass.ndim == 2
        self.inverse_mass = inverse_mass
        if self.dense:
            chol = np.linalg.cholesky(inverse_mass)  # Sigma = L L^T, so p = L^{-T} e ~ N(0, Sigma^{-1})
            self._momentum_map = np.linalg.inv(chol).T
        else:
            self._momentum_scale = 1.0 / np.sqrt(inverse_mass)

    @classmethod
    def identity(cls, dim: int, dense: bool) -> Metric:
        return cls(np.eye(dim) if dense else np.ones(dim))

    def velocity(self, p: np.ndarray) -> np.ndarray:
        r""":math:`\Sigma p` (written :math:`p^\sharp` in the Stan manual)."""
        return self.inverse_mass @ p if self.dense else self.inverse_mass * p

    def kinetic(self, p: np.ndarray) -> float:
        return 0.5 * float(p @ self.velocity(p))

    def sample_momentum(self, rng: np.random.Generator) -> np.ndarray:
        e = rng.standard_normal(self.inverse_mass.shape[0])
        return self._momentum_map @ e if self.dense else self._momentum_scale * e


def leapfrog(z, p, grad, step_size: float, metric: Metric, value_and_grad):
    """One leapfrog step; returns ``(z, p, U, grad)`` at the new point."""
    p = p - 0.5 * step_size * grad
    z = z + step_size * metric.velocity(p)
    u, grad = value_and_grad(z)
    p = p - 0.5 * step_size * grad
    return z, p, u, grad


# --------------------------------------------------------------------------- adaptation


class DualAveraging:
    r"""Nesterov dual averaging of :math:`\log\epsilon` towards a target acceptance
    rate :math:`\delta` (Hoffman & Gelman 2014, eq. 6 and Alg. 5):

    .. math::
        \bar H_t = (1 - \tfrac{1}{t + t_0})\bar H_{t-1} + \tfrac{1}{t+t_0}(\delta - \alpha_t),\quad
        \log\epsilon_t = \mu - \tfrac{\sqrt t}{\gamma}\bar H_t,\quad
        \log\bar\epsilon_t = t^{-\kappa}\log\epsilon_t + (1 - t^{-\kappa})\log\bar\epsilon_{t-1}.
    """

    def __init__(self, step_size: float, target: float, gamma=0.05, t0=10.0, kappa=0.75):
        self.target, self.gamma, self.t0, self.kappa = target, gamma, t0, kappa
        self.restart(step_size)

    def restart(self, step_size: float) -> None:
        self.mu = math.log(10.0 * step_size)
        self.t = 0
        self.h_bar = 0.0
        self.log_step_bar = 0.0

    def update(self, accept_stat: float) -> float:
        """Feed one transition's acceptance statistic; returns the next step size."""
        self.t += 1
        eta = 1.0 / (self.t + self.t0)
        self.h_bar = (1.0 - eta) * self.h_bar + eta * (self.target - accept_stat)
        log_step = self.mu - math.sqrt(self.t) / self.gamma * self.h_bar
        weight = self.t ** (-self.kappa)
        self.log_step_bar = weight * log_step + (1.0 - weight) * self.log_step_bar
        return math.exp(log_step)

    @property
    def final_step_size(self) -> float:
        return math.exp(self.log_step_bar)


class WelfordCovariance:
    """Streaming mean and (co)variance (Welford 1962), regularized towards the identity
    as Stan does: ``n/(n+5) * S + 1e-3 * 5/(n+5) * I``."""

    def __init__(self, dim: int, dense: bool):
        self.dim, self.dense = dim, dense
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self.mean = np.zeros(self.dim)
        self.m2 = np.zeros((self.dim, self.dim)) if self.dense else np.zeros(self.dim)

    def update(self, x: np.ndarray) -> None:
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        if self.dense:
            self.m2 += np.outer(delta, x - self.mean)
        else:
            self.m2 += delta * (x - self.mean)

    def covariance(self, regularize: bool = True) -> np.ndarray:
        if self.n < 2:
            raise ValueError("need at least two draws for a covariance")
        cov = self.m2 / (self.n - 1)
        if not regularize:
            return cov
        w = self.n / (self.n + 5.0)
        shrink = 1e-3 * 5.0 / (self.n + 5.0)
        return w * cov + shrink * (np.eye(self.dim) if self.dense else 1.0)


def adaptation_windows(warmup: int, init_buffer=75, base_window=25, term_buffer=50) -> list[tuple[int, int]]:
    """Stan's slow adaptation windows ``[(start, end), ...]`` (iteration indices): a fast
    initial buffer, doubling windows that estimate the mass matrix, and a final buffer
    that only tunes the step size. Short warm-ups get 15% / 75% / 10%; under 20 steps
    the mass matrix is not adapted (no windows)."""
    if warmup < 20:
        return []
    if init_buffer + base_window + term_buffer > warmup:
        init_buffer = int(0.15 * warmup)
        term_buffer = int(0.1 * warmup)
        base_window = warmup - init_buffer - term_buffer
    last = warmup - term_buffer
    windows, start, size = [], init_buffer, base_window
    while start < last:
        end = start + size
        if end + 2 * size > last:
            end = last
        windows.append((start, end))
        start, size = end, 2 * size
    return windows


# --------------------------------------------------------------------------- transitions


@dataclass
class Point:
    """A point of phase space with its potential and gradient."""

    z: np.ndarray
    u: float
    grad: np.ndarray


@dataclass
class TransitionStats:
    """What one transition reports (the columns of ``sample_stats``)."""

    accept_stat: float
    n_steps: int
    tree_depth: int
    diverging: bool
    energy: float


def hmc_transition(point: Point, rng, step_size: float, num_steps: int, metric: Metric, value_and_grad):
    """One HMC transition: ``num_steps`` leapfrog steps, then a Metropolis accept/reject.

    Returns ``(new_point, TransitionStats)``.
    """
    p0 = metric.sample_momentum(rng)
    h0 = point.u + metric.kinetic(p0)
    z, p, u, g = point.z, p0, point.u, point.grad
    diverging = False
    for _ in range(num_steps):
        z, p, u, g = leapfrog(z, p, g, step_size, metric, value_and_grad)
        if not math.isfinite(u) or u + metric.kinetic(p) - h0 > MAX_DELTA_H:
            diverging = True
            break
    h = u + metric.kinetic(p) if not diverging else math.inf
    accept = min(1.0, math.exp(min(0.0, h0 - h))) if math.isfinite(h) else 0.0
    if rng.random() < accept:
        return Point(z, u, g), TransitionStats(accept, num_steps, 0, diverging, h)
    return point, TransitionStats(accept, num_steps, 0, diverging, h0)


class _Trajectory:
    """Mutable bookkeeping shared by one NUTS transition's recursive tree building."""

    __slots__ = ("h0", "step_size", "metric", "value_and_grad", "rng", "n_steps", "sum_accept", "diverging")

    def __init__(self, h0, step_size, metric, value_and_grad, rng):
        self.h0, self.step_size, self.metric = h0, step_size, metric
        self.value_and_grad, self.rng = value_and_grad, rng
        self.n_steps, self.sum_accept, self.diverging = 0, 0.0, False


@dataclass
class _Tree:
    """A subtree: its far end (to extend from), both ends' momenta and velocities, the
    summed momentum rho, its multinomial proposal and log total weight."""

    z_end: np.ndarray
    p_end: np.ndarray
    g_end: np.ndarray
    p_beg: np.ndarray
    v_beg: np.ndarray
    v_end: np.ndarray
    rho: np.ndarray
    proposal: Point
    p_proposal: np.ndarray
    log_weight: float


def _no_u_turn(v_minus, v_plus, rho) -> bool:
    """The generalized criterion: keep going while both end velocities point along rho."""
    return float(v_plus @ rho) > 0.0 and float(v_minus @ rho) > 0.0


def _build_tree(traj: _Trajectory, z, p, g, direction: int, depth: int) -> _Tree | None:
    """Build a subtree of 2^depth leapfrog steps from (z, p, g); ``None`` if it diverged
    or U-turned inside (the caller then stops)."""
    if depth == 0:
        z, p, u, g = leapfrog(z, p, g, direction * traj.step_size, traj.metric, traj.value_and_grad)
        v = traj.metric.velocity(p)
        h = u + 0.5 * float(p @ v)
        if not math.isfinite(h):
            h = math.inf
        traj.n_steps += 1
        delta = traj.h0 - h
        traj.sum_accept += 1.0 if delta > 0 else math.exp(delta)
        if -delta > MAX_DELTA_H:
            traj.diverging = True
            return None
        return _Tree(z, p, g, p, v, v, p, Point(z, u, g), p, delta)
    first = _build_tree(traj, z, p, g, direction, depth - 1)
    if first is None:
        return None
    second = _build_tree(traj, first.z_end, first.p_end, first.g_end, direction, depth - 1)
    if second is None:
        return None
    log_weight = float(np.logaddexp(first.log_weight, second.log_weight))
    if traj.rng.random() < math.exp(second.log_weight - log_weight):
        proposal, p_proposal = second.proposal, second.p_proposal
    else:
        proposal, p_proposal = first.proposal, first.p_proposal
    rho = first.rho + second.rho
    ok = (
        _no_u_turn(first.v_beg, second.v_end, rho)
        # the extra checks across the two halves (Stan), which catch U-turns that the
        # whole-tree criterion misses for near-periodic trajectories
        and _no_u_turn(first.v_beg, second.v_beg, first.rho + second.p_beg)
        and _no_u_turn(first.v_end, second.v_end, second.rho + first.p_end)
    )
    if not ok:
        return None
    return _Tree(
        second.z_end,
        second.p_end,
        second.g_end,
        first.p_beg,
        first.v_beg,
        second.v_end,
        rho,
        proposal,
        p_proposal,
        log_weight,
    )


def nuts_transition(point: Point, rng, step_size: float, metric: Metric, value_and_grad, max_tree_depth=10):
    """One multinomial NUTS transition (Betancourt 2017; Stan's algorithm): the
    trajectory doubles in a random direction until it makes a U-turn, diverges or reaches
    ``max_tree_depth``; each new subtree's proposal replaces the current one with
    probability min(1, W_subtree / W_old) (biased progressive sampling).

    Returns ``(new_point, TransitionStats)``; ``accept_stat`` is the mean Metropolis
    acceptance probability over the trajectory, which step-size adaptation targets.
    """
    p0 = metric.sample_momentum(rng)
    v0 = metric.velocity(p0)
    h0 = point.u + 0.5 * float(p0 @ v0)
    traj = _Trajectory(h0, step_size, metric, value_and_grad, rng)
    # the two ends of the trajectory: (z, p, grad, velocity)
    minus = plus = (point.z, p0, point.grad, v0)
    rho = p0.copy()
    sample, p_sample = point, p0
    log_weight = 0.0  # log sum of exp(H0 - H) over the trajectory; the start has weight 1
    depth = 0
    while depth < max_tree_depth:
        direction = 1 if rng.random() < 0.5 else -1
        z, p, g, _ = plus if direction == 1 else minus
        tree = _build_tree(traj, z, p, g, direction, depth)
        if tree is None:
            break
        depth += 1
        if tree.log_weight > log_weight or rng.random() < math.exp(tree.log_weight - log_weight):
            sample, p_sample = tree.proposal, tree.p_proposal
        log_weight = float(np.logaddexp(log_weight, tree.log_weight))
        new_end = (tree.z_end, tree.p_end, tree.g_end, tree.v_end)
        if direction == 1:
            old_rho, old_edge = rho, plus  # the old tree lies behind the new subtree
            plus = new_end
            checks = _no_u_turn(minus[3], tree.v_beg, old_rho + tree.p_beg) and _no_u_turn(
                old_edge[3], plus[3], tree.rho + old_edge[1]
            )
        else:
            old_rho, old_edge = rho, minus
            minus = new_end
            checks = _no_u_turn(tree.v_beg, plus[3], old_rho + tree.p_beg) and _no_u_turn(
                minus[3], old_edge[3], tree.rho + old_edge[1]
            )
        rho = old_rho + tree.rho
        if not (_no_u_turn(minus[3], plus[3], rho) and checks):
            break
    energy = sample.u + metric.kinetic(p_sample)
    accept = traj.sum_accept / max(traj.n_steps, 1)
    return sample, TransitionStats(accept, traj.n_steps, depth, traj.diverging, energy)


def find_reasonable_step_size(point: Point, rng, metric: Metric, value_and_grad, step_size=1.0) -> float:
    """Stan's heuristic: double or halve the step size until one leapfrog step's
    acceptance probability crosses 0.8."""
    p0 = metric.sample_momentum(rng)
    h0 = point.u + metric.kinetic(p0)
    direction = 0
    for _ in range(100):
        _, p, u, _ = leapfrog(point.z, p0, point.grad, step_size, metric, value_and_grad)
        h = u + metric.kinetic(p)
        delta = h0 - h if math.isfinite(h) else -math.inf
        new_direction = 1 if delta > math.log(0.8) else -1
        if direction == 0:
            direction = new_direction
        if new_direction != direction:
            break
        step_size = step_size * 2.0 if direction == 1 else step_size / 2.0
        if step_size > 1e7 or step_size < 1e-10:
            break
    return step_size


# --------------------------------------------------------------------------- kernels


class HMC(MCMCKernel):
    """Hamiltonian Monte Carlo with a fixed number of leapfrog steps, as a Pyro kernel.

    Warm-up adapts the step size by dual averaging and the inverse mass matrix from the
    draws of Stan's doubling windows. Run it with :func:`pgen.sample`.

    Args:
        model: a Pyro model with continuous latent sites.
        step_size: initial step size (found by a heuristic when ``None``).
        num_steps: leapfrog steps per transition (HMC only).
        adapt_step_size: tune the step size during warm-up.
        adapt_mass_matrix: estimate the inverse mass matrix during warm-up.
        dense_mass: ``True`` (full covariance), ``False`` (diagonal) or ``"auto"``:
            dense up to ``DENSE_MASS_MAX_DIM`` (50) unconstrained dimensions. A dense
            matrix undoes linear correlations (e.g. regression on uncentred covariates)
            that make a diagonal one crawl.
        target_accept: the mean acceptance probability that step-size adaptation aims at.
        init: how chains start: ``"uniform"`` (each unconstrained coordinate uniform in
            (-2, 2), Stan's default), ``"median"`` (prior medians), or a dict of
            constrained values for some sites (the rest uniform). Starts whose
            potential or gradient is not finite are redrawn (up to 100 times).
        jit: compile the potential and its gradient (see :mod:`pgen.inference.potential`).
        step_size_jitter: each transition uses the step size times a uniform factor in
            ``[1 - jitter, 1 + jitter]`` (HMC only; Neal 2011, sec. 5.4.2.2). A fixed
            trajectory length close to a period of the posterior (about 2 pi in the
            whitened space) brings every proposal back near its start; jittering breaks
            that. 0 turns it off.
    """

    _uses_tree = False

    def __init__(
        self,
        model,
        *,
        step_size: float | None = None,
        num_steps: int = 10,
        adapt_step_size: bool = True,
        adapt_mass_matrix: bool = True,
        dense_mass="auto",
        target_accept: float = 0.8,
        init="uniform",
        jit: bool = False,
        step_size_jitter: float = 0.2,
    ):
        if not callable(model):
            raise TypeError(f"model must be a callable Pyro model, got {type(model).__name__}")
        self.model = model
        self.step_size0 = None if step_size is None else check_float("step_size", step_size, positive=True)
        self.num_steps = check_int("num_steps", num_steps, minimum=1)
        self.adapt_step_size = bool(adapt_step_size)
        self.adapt_mass_matrix = bool(adapt_mass_matrix)
        if dense_mass not in (True, False, "auto"):
            raise ValueError(f"dense_mass must be True, False or 'auto'; got {dense_mass!r}")
        self.dense_mass = dense_mass
        self.target_accept = check_float("target_accept", target_accept, positive=True, below=1.0)
        if isinstance(init, str):
            check_choice("init", init, ("uniform", "median"))
        elif not isinstance(init, dict):
            raise TypeError(
                f"init must be 'uniform', 'median' or a dict of site values; got {type(init).__name__}"
            )
        self.init = init
        self.jit = bool(jit)
        self.step_size_jitter = check_float("step_size_jitter", step_size_jitter, nonnegative=True, below=1.0)
        self.potential: Potential | None = None
        self._cache_key = None

    # -- set-up
    def _get_potential(self, args, kwargs) -> Potential:
        key = (tuple(id(a) for a in args), tuple(sorted((k, id(v)) for k, v in kwargs.items())))
        if self.potential is None or key != self._cache_key:
            self.potential = Potential(self.model, args, kwargs, jit=self.jit)
            self._cache_key = key
        return self.potential

    def setup(self, warmup_steps, *args, **kwargs):
        self.potential = self._get_potential(args, kwargs)
        self.warmup_steps = int(warmup_steps)
        seed = int(torch.randint(0, 2**62, ()).item())
        self.rng = np.random.default_rng(seed)
        self.value_and_grad = self.potential.numpy_value_and_grad
        dim = self.potential.dim
        dense = dim <= DENSE_MASS_MAX_DIM if self.dense_mass == "auto" else bool(self.dense_mass)
        self.metric = Metric.identity(dim, dense)
        self.point = self._initial_point()
        self.step_size = (
            self.step_size0
            if self.step_size0 is not None
            else find_reasonable_step_size(self.point, self.rng, self.metric, self.value_and_grad)
        )
        self.adapter = DualAveraging(self.step_size, self.target_accept)
        self.windows = adaptation_windows(self.warmup_steps) if self.adapt_mass_matrix else []
        self.welford = WelfordCovariance(dim, dense)
        self.t = 0
        self.num_divergences = 0
        self.sum_accept = 0.0
        self.last_stats: dict | None = None
        self._last_params = None

    def _initial_point(self) -> Point:
        pot = self.potential
        given = {}
        if self.init == "median":
            given = _prior_medians(pot)
        elif isinstance(self.init, dict):
            unknown = sorted(set(self.init) - set(pot.names))
            if unknown:
                raise ValueError(
                    f"init names site(s) {unknown} that are not latent sites of the model; "
                    f"latent sites: {pot.names}"
                )
            given = dict(self.init)
        fixed = {}
        for s in pot.layout:
            if s.name in given:
                value = torch.as_tensor(given[s.name], dtype=pot.dtype)
                fixed[s.name] = s.transform.inv(value.reshape(s.shape)).reshape(-1).double().numpy()
        last = None
        for _ in range(100):
            z = self.rng.uniform(-2.0, 2.0, size=pot.dim)
            for s in pot.layout:
                if s.name in fixed:
                    z[s.offset : s.offset + s.size] = fixed[s.name]
            u, g = self.value_and_grad(z)
            if math.isfinite(u) and np.all(np.isfinite(g)):
                return Point(z, u, g)
            last = z
        raise ValueError(
            "could not find a starting point with a finite log density and gradient in 100 "
            f"tries; the last try gave U={u}. Check the model's support, or pass init= with "
            f"valid values for the sites {pot.names} (last try: {pot.constrain(torch.from_numpy(last))})"
        )

    @property
    def initial_params(self):
        return self._params(self.point)

    @initial_params.setter
    def initial_params(self, params):
        z = self.potential.flatten(params).double().numpy()
        u, g = self.value_and_grad(z)
        self.point = Point(z, u, g)

    @property
    def transforms(self):
        """``{site: transform}`` from constrained to unconstrained values (Pyro's
        convention for HMC kernels: draws are mapped back with ``transform.inv``)."""
        return {name: t.inv for name, t in self.potential.transforms.items()}

    def _params(self, point: Point) -> dict[str, torch.Tensor]:
        params = self.potential.unflatten(torch.from_numpy(point.z))
        self._last_params = params
        return params

    # -- one transition
    def _transition(self, point: Point):
        step = self.step_size
        if self.step_size_jitter:
            step *= 1.0 + self.step_size_jitter * (2.0 * self.rng.random() - 1.0)
        return hmc_transition(point, self.rng, step, self.num_steps, self.metric, self.value_and_grad)

    def sample(self, params):
        if params is not self._last_params:
            self.initial_params = params
        warming = self.t < self.warmup_steps
        with np.errstate(invalid="ignore", over="ignore"):  # diverging trajectories reach inf
            point, stats = self._transition(self.point)
        self.point = point
        if warming:
            self._adapt(stats)
        else:
            self.num_divergences += int(stats.diverging)
            self.sum_accept += stats.accept_stat
        self.t += 1
        self.last_stats = {
            "diverging": stats.diverging,
            "step_size": self.step_size if not warming else self._used_step,
            "tree_depth": stats.tree_depth,
            "n_steps": stats.n_steps,
            "acceptance_rate": stats.accept_stat,
            "energy": stats.energy,
            "lp": -point.u,
        }
        return self._params(point)

    def _adapt(self, stats: TransitionStats) -> None:
        self._used_step = self.step_size
        t = self.t
        if self.adapt_step_size:
            self.step_size = self.adapter.update(stats.accept_stat)
        for start, end in self.windows:
            if start <= t < end:
                self.welford.update(self.point.z)
                if t == end - 1:  # window closes: new metric, restart step-size search
                    cov = self.welford.covariance()
                    self.metric = Metric(cov)
                    self.welford.reset()
                    if self.adapt_step_size:
                        self.step_size = find_reasonable_step_size(
                            self.point, self.rng, self.metric, self.value_and_grad, self.step_size
                        )
                        self.adapter.restart(self.step_size)
                break
        if t == self.warmup_steps - 1 and self.adapt_step_size:
            self.step_size = self.adapter.final_step_size

    # -- reporting
    def logging(self):
        stats = self.last_stats or {}
        return OrderedDict(
            [
                ("step size", f"{self.step_size:.2e}"),
                ("acc. prob", f"{stats.get('acceptance_rate', float('nan')):.3f}"),
                ("steps", stats.get("n_steps", 0)),
                ("divergences", self.num_divergences),
            ]
        )

    def diagnostics(self):
        drawn = max(self.t - self.warmup_steps, 0)
        return {
            "divergences": self.num_divergences,
            "acceptance rate": self.sum_accept / drawn if drawn else float("nan"),
            "step size": self.step_size,
            "dense mass": self.metric.dense,
        }


class NUTS(HMC):
    """The No-U-Turn sampler (multinomial, generalized U-turn criterion), as a Pyro kernel.

    Args: as :class:`HMC`, with ``max_tree_depth`` (trajectories of at most
    ``2**max_tree_depth`` leapfrog steps) instead of ``num_steps``.
    """

    _uses_tree = True

    def __init__(self, model, *, max_tree_depth: int = 10, **kwargs):
        super().__init__(model, **kwargs)
        self.max_tree_depth = check_int("max_tree_depth", max_tree_depth, minimum=1)

    def _transition(self, point: Point):
        return nuts_transition(
            point, self.rng, self.step_size, self.metric, self.value_and_grad, self.max_tree_depth
        )


def _prior_medians(pot: Potential, num_samples: int = 15) -> dict[str, torch.Tensor]:
    """Median of ``num_samples`` prior draws of each latent site (seeded by the chain)."""
    from pyro import poutine

    draws: dict[str, list] = {name: [] for name in pot.names}
    for _ in range(num_samples):
        trace = poutine.trace(pot.model).get_trace(*pot.args, **pot.kwargs)
        for name in pot.names:
            draws[name].append(trace.nodes[name]["value"].detach())
    return {name: torch.stack(values).median(dim=0).values for name, values in draws.items()}
