r"""A first mass matrix from the posterior's curvature at its mode (a Laplace bridge
from variational to Monte Carlo inference).

Stan's warm-up starts from the identity metric and learns the posterior covariance from
the chain's own draws, window by window. On a posterior whose scales differ by orders of
magnitude (a regression on uncentred covariates: intercept and slope with correlation
-0.99999), the first windows see only the little the chain explored with a metric that
is wrong by those orders, and warm-up ends long before the metric is right.

Here the mode :math:`\hat z` of the potential is found (L-BFGS on the compiled
gradient, then Newton steps with the exact Hessian :math:`H` by automatic
differentiation), and :math:`H^{-1}` (the covariance of the Laplace approximation
:math:`\mathcal N(\hat z, H^{-1})`) is the first metric. It is used only where it means
something: the optimization reached a mode (Newton decrement
:math:`g^\top H^{-1} g < 1`) and :math:`H` is positive definite and finite. A funnel has
no mode (the density grows without bound towards its neck), so it keeps the identity.
The chain then starts from a draw of that Laplace approximation rather than from its
random initial point (as Pathfinder does; Zhang et al. 2022): a random start can lie
where the regression's residuals are thousands and the noise scale follows them, and
the chain then spends its warm-up walking back along the ridge with trajectories of
1,023 steps. Each chain searches from its own random start, so chains that find
different modes still disagree and R-hat still says so. The windows still re-estimate
the metric from draws.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["metric_at_mode"]

NEWTON_STEPS = 10


def _hessian(potential, z: np.ndarray) -> np.ndarray:
    """The exact Hessian of the potential at ``z`` (one forward and D backward passes
    through the eager model), as float64."""
    zt = torch.as_tensor(z, dtype=potential.dtype, device=potential.device)
    h = torch.autograd.functional.hessian(lambda v: -potential.log_density(v), zt)
    return h.detach().to("cpu", torch.float64).numpy()


def _newton(potential, z: np.ndarray, u: float, g: np.ndarray):
    """Damped Newton steps from ``z``; returns ``(mode, cov, None)`` at a mode or
    ``(None, None, why)``."""
    value_and_grad = potential.numpy_value_and_grad
    for _ in range(NEWTON_STEPS):
        h = _hessian(potential, z)
        if not np.all(np.isfinite(h)):
            return None, None, "the Hessian at the end of the optimization is not finite"
        h = 0.5 * (h + h.T)
        try:
            chol = np.linalg.cholesky(h)
        except np.linalg.LinAlgError:
            return None, None, "the Hessian at the end of the optimization is not positive definite"
        step = np.linalg.solve(chol.T, np.linalg.solve(chol, g))
        decrement = float(g @ step)
        if decrement < 1e-6:
            break
        for t in (1.0, 0.5, 0.25, 0.125):  # backtracking: the step must lower U
            u_new, g_new = value_and_grad(z - t * step)
            if u_new < u:
                z, u, g = z - t * step, u_new, g_new
                break
        else:
            break
    if decrement > 1.0:
        return None, None, f"no mode found (Newton decrement {decrement:.3g} after {NEWTON_STEPS} steps)"
    cov = np.linalg.inv(h)
    return z, 0.5 * (cov + cov.T), None


def metric_at_mode(potential, z0: np.ndarray, *, max_iterations: int = 1000):
    """``(mode, covariance, None)``: the mode reached from ``z0`` and the inverse Hessian
    there; or ``(None, None, reason)`` when there is no usable mode. The potential's count of failed
    evaluations is left as it was (the search's trial points are not the sampler's)."""
    from scipy.optimize import minimize

    failures = potential.failures.copy()
    value_and_grad = potential.numpy_value_and_grad

    def objective(z):
        u, g = value_and_grad(z)
        return (u, g) if np.isfinite(u) else (1e300, np.zeros_like(z))

    try:
        with np.errstate(all="ignore"):
            found = minimize(objective, z0, jac=True, method="L-BFGS-B", options={"maxiter": max_iterations})
            u, g = value_and_grad(found.x)
            if not (np.isfinite(u) and np.all(np.isfinite(g))):
                return None, None, "the optimization ended where the density is not finite"
            return _newton(potential, found.x, u, g)
    except Exception as error:  # any failure of the model here only means no mode metric
        return None, None, f"{type(error).__name__}: {error}"
    finally:
        potential.failures.clear()
        potential.failures.update(failures)
