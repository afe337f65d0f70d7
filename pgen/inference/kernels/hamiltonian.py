r"""The mathematics of Hamiltonian Monte Carlo and NUTS on a flat unconstrained vector.

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
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Metric",
    "leapfrog",
    "Point",
    "TransitionStats",
    "hmc_transition",
    "nuts_transition",
    "find_reasonable_step_size",
    "metric_from_covariance",
    "MAX_DELTA_H",
]

MAX_DELTA_H = 1000.0  # an energy error above this marks a divergent trajectory (Stan's value)


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


_MAX_VARIANCE = 1e30  # an estimate beyond this comes from a chain that wandered off, not from the posterior


def metric_from_covariance(cov: np.ndarray, previous: Metric) -> tuple[Metric, str | None]:
    """The metric for an estimated (regularized) posterior covariance, kept finite and
    positive definite: a dense estimate that is not positive definite gives way to its
    diagonal, and an estimate with non-finite, non-positive or absurdly large variances
    to the ``previous`` metric. Returns the metric and, when it fell back, why."""
    cov = np.asarray(cov, dtype=np.float64)
    if not np.all(np.isfinite(cov)) or np.abs(cov).max() > _MAX_VARIANCE:
        return (
            previous,
            "the estimated covariance is not finite (or beyond 1e30); the previous metric is kept",
        )
    diag = np.diag(cov) if cov.ndim == 2 else cov
    if not np.all(diag > 0):
        return previous, "the estimated variances are not all positive; the previous metric is kept"
    if cov.ndim == 2:
        try:
            return Metric(cov), None
        except np.linalg.LinAlgError:
            return Metric(
                diag
            ), "the dense covariance estimate is not positive definite; its diagonal is used"
    return Metric(cov), None


def leapfrog(z, p, grad, step_size: float, metric: Metric, value_and_grad):
    """One leapfrog step; returns ``(z, p, U, grad)`` at the new point."""
    p = p - 0.5 * step_size * grad
    z = z + step_size * metric.velocity(p)
    u, grad = value_and_grad(z)
    p = p - 0.5 * step_size * grad
    return z, p, u, grad


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
