r"""The HMC and NUTS kernels: thin Pyro ``MCMCKernel`` wrappers that hold one chain's
state and run warm-up adaptation around the pure step functions of
:mod:`~pgen.inference.kernels.hamiltonian` and :mod:`~pgen.inference.kernels.adaptation`
(re-exported here). The model enters only through its potential
:math:`U(z) = -\log p(\text{data}, T(z)) - \log|\det J_T(z)|` and its gradient
(:class:`pgen.inference.potential.Potential`).
"""

from __future__ import annotations

import json
import math
from collections import Counter, OrderedDict

import numpy as np
import torch

from ...checks import check_choice, check_float, check_int
from ..potential import Potential
from .adaptation import DualAveraging, WelfordCovariance, adaptation_windows
from .base import PgenKernel, StepInfo
from .hamiltonian import (
    MAX_DELTA_H,
    Metric,
    Point,
    TransitionStats,
    find_reasonable_step_size,
    hmc_transition,
    leapfrog,
    metric_from_covariance,
    nuts_transition,
)
from .mode_metric import metric_at_mode

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
    "MAX_DELTA_H",
]

DENSE_MASS_MAX_DIM = 50  # dense_mass="auto" adapts a dense matrix up to this many dimensions
# A window estimates a dense matrix only from at least this many draws per dimension: with
# fewer, the sample covariance is rank-deficient or ill-conditioned (its smallest
# eigenvalue is about (1 - sqrt(D/n))^2 of the true one; Marchenko & Pastur 1967) and
# makes trajectories far longer than a diagonal estimate does; such a window uses the
# diagonal of its estimate.
DENSE_DRAWS_PER_DIM = 5


class HMC(PgenKernel):
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
        metric_init: the dense metric warm-up starts from: ``"mode"`` (default): the
            inverse Hessian at the posterior mode where there is one
            (:mod:`~pgen.inference.kernels.mode_metric`), else the identity;
            ``"identity"``: Stan's start.
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
        metric_init: str = "mode",
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
        elif not (isinstance(init, dict) or hasattr(init, "unconstrained")):
            raise TypeError(
                "init must be 'uniform', 'median', a dict of site values or a fitted guide (an SVIResult); "
                f"got {type(init).__name__}"
            )
        self.init = init
        self.jit = bool(jit)
        self.step_size_jitter = check_float("step_size_jitter", step_size_jitter, nonnegative=True, below=1.0)
        self.metric_init = check_choice("metric_init", metric_init, ("mode", "identity"))
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
        self.metric_notes: list[str] = []  # where mass-matrix adaptation had to fall back
        self.mode_metric = None
        if hasattr(self.init, "unconstrained"):  # a fitted guide (pgen.inference.bridges.GuideStart)
            self._start_from_guide(dense)
        else:
            self.point = self._initial_point()
        if (
            dense
            and self.adapt_mass_matrix
            and self.metric_init == "mode"
            and self.warmup_steps > 0
            and self.mode_metric is None
        ):
            mode, cov, why = metric_at_mode(self.potential, self.point.z)
            if cov is not None:
                self.metric, why = metric_from_covariance(cov, self.metric)
            self.mode_metric = "used" if why is None else f"not used: {why}"
            if why is None and not isinstance(self.init, dict):  # a start the user gave is kept
                self.point = self._laplace_point(mode)
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
        self.last_stats: StepInfo | None = None
        self._last_params = None

    def _start_from_guide(self, dense: bool) -> None:
        """First point: a draw of the fitted guide (one where the model is finite); first
        metric: the covariance of the guide's draws in the unconstrained space."""
        z = self.init.unconstrained(self.potential)
        cov = np.cov(z.T).reshape(len(z[0]), len(z[0]))
        self.metric, why = metric_from_covariance(cov if dense else np.diag(cov), self.metric)
        self.mode_metric = "not used: the metric came from the guide" if why is None else f"not used: {why}"
        for i in self.rng.permutation(len(z))[:100]:
            u, g = self.value_and_grad(z[i])
            if math.isfinite(u) and np.all(np.isfinite(g)):
                self.point = Point(z[i].copy(), u, g)
                return
        raise ValueError(
            "the model's density is not finite at any of 100 draws of the guide it was given as init"
        )

    def _laplace_point(self, mode: np.ndarray) -> Point:
        """A draw from the Laplace approximation N(mode, metric) (the mode itself where
        the model cannot be evaluated at the draw)."""
        z = mode + np.linalg.cholesky(self.metric.inverse_mass) @ self.rng.standard_normal(len(mode))
        for candidate in (z, mode):
            u, g = self.value_and_grad(candidate)
            if math.isfinite(u) and np.all(np.isfinite(g)):
                return Point(candidate, u, g)
        return self.point

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
                value = torch.as_tensor(given[s.name], dtype=pot.dtype, device=pot.device)
                fixed[s.name] = (
                    s.transform.inv(value.reshape(s.shape)).reshape(-1).detach().cpu().double().numpy()
                )
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
        reasons = "; ".join(f"{why} ({n})" for why, n in pot.failures.most_common(3))
        raise ValueError(
            "could not find a starting point with a finite log density and gradient in 100 "
            f"tries; the last try gave U={u}"
            + (f", and the model failed with: {reasons}" if reasons else "")
            + f". Check the model's support, or pass init= with valid values for the sites "
            f"{pot.names} (last try: {pot.constrain(torch.from_numpy(last).to(pot.device))})"
        )

    @property
    def initial_params(self):
        return self._params(self.point)

    @initial_params.setter
    def initial_params(self, params):
        z = self.potential.flatten(params).detach().cpu().double().numpy()
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
                    self._new_metric(t)
                    self.welford.reset()
                    if self.adapt_step_size:
                        self.step_size = find_reasonable_step_size(
                            self.point, self.rng, self.metric, self.value_and_grad, self.step_size
                        )
                        self.adapter.restart(self.step_size)
                break
        if t == self.warmup_steps - 1 and self.adapt_step_size:
            self.step_size = self.adapter.final_step_size

    def _new_metric(self, t: int) -> None:
        """The metric from the window that closes at step ``t``. A window with too few
        draws for a dense estimate gives its diagonal, unless the metric came from the
        mode (a full matrix already better than that diagonal), which is then kept."""
        cov = self.welford.covariance(towards=self.metric.inverse_mass)
        if cov.ndim == 2 and self.welford.n < DENSE_DRAWS_PER_DIM * len(cov):
            if self.mode_metric == "used":
                return
            cov = np.diag(np.diag(cov))  # too few draws for D*(D+1)/2 covariances
        self.metric, note = metric_from_covariance(cov, self.metric)
        if note:
            self.metric_notes.append(f"warm-up step {t + 1}: {note}")

    # -- checkpoints
    def state_dict(self) -> dict:
        """Everything this chain needs to go on exactly where it is (adapted step size and
        its dual-averaging state, mass matrix and the window's running estimate, point,
        random state, counts), as tensors and plain data for :func:`pgen.io.save`."""
        a, w = self.adapter, self.welford
        return {
            "t": self.t,
            "step_size": float(self.step_size),
            "used_step": float(getattr(self, "_used_step", self.step_size)),
            "adapter": {"mu": a.mu, "t": a.t, "h_bar": a.h_bar, "log_step_bar": a.log_step_bar},
            "metric": torch.from_numpy(np.array(self.metric.inverse_mass)),
            "welford": {
                "n": w.n,
                "mean": torch.from_numpy(w.mean.copy()),
                "m2": torch.from_numpy(w.m2.copy()),
            },
            "point": {
                "z": torch.from_numpy(self.point.z.copy()),
                "u": float(self.point.u),
                "grad": torch.from_numpy(np.array(self.point.grad, dtype=np.float64)),
            },
            "rng": json.dumps(self.rng.bit_generator.state),
            "num_divergences": self.num_divergences,
            "sum_accept": float(self.sum_accept),
            "metric_notes": list(self.metric_notes),
            "mode_metric": self.mode_metric,
            "failures": dict(self.potential.failures),
            "num_evaluations": self.potential.num_evaluations,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict` (after :meth:`setup` on the same model and data)."""
        if state["point"]["z"].numel() != self.potential.dim:
            raise ValueError(
                f"the checkpoint's chain has {state['point']['z'].numel()} unconstrained coordinates; "
                f"this model has {self.potential.dim}: it is not the model the run was started with"
            )
        self.t = int(state["t"])
        self.step_size = float(state["step_size"])
        self._used_step = float(state["used_step"])
        for key, value in state["adapter"].items():
            setattr(self.adapter, key, value)
        self.metric = Metric(state["metric"].numpy())
        self.welford.n = int(state["welford"]["n"])
        self.welford.mean = state["welford"]["mean"].numpy().copy()
        self.welford.m2 = state["welford"]["m2"].numpy().copy()
        p = state["point"]
        self.point = Point(p["z"].numpy().copy(), float(p["u"]), p["grad"].numpy().copy())
        self.rng.bit_generator.state = json.loads(state["rng"])
        self.num_divergences = int(state["num_divergences"])
        self.sum_accept = float(state["sum_accept"])
        self.metric_notes = list(state["metric_notes"])
        self.mode_metric = state["mode_metric"]
        self.potential.failures = Counter(state["failures"])
        self.potential.num_evaluations = int(state["num_evaluations"])
        self._last_params = None

    # -- reporting
    @property
    def failures(self):
        """How often, and why, the model's log density could not be computed (each such
        point was rejected as a divergence); a ``Counter`` over the potential's life."""
        from collections import Counter

        return Counter() if self.potential is None else self.potential.failures

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
            "mass matrix fallbacks": list(self.metric_notes),
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
