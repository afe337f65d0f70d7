r"""The potential energy of a Pyro model over one flat unconstrained vector.

Hamiltonian Monte Carlo samples :math:`z \in \mathbb{R}^D`, the model's continuous
latent sites mapped to unconstrained space by :math:`x = T(z)` (``biject_to`` of each
site's support) and laid end to end. Its target is

.. math::
    U(z) = -\log p(\text{data}, T(z)) - \log\lvert\det J_T(z)\rvert .

:class:`Potential` traces the model once to find the sites, their transforms and
shapes, and then evaluates :math:`U` and :math:`\nabla U` either eagerly (the model's
Python code runs at every call) or compiled: with ``jit=True`` the function
:math:`z \mapsto (U(z), \nabla U(z))` is traced once, forward and backward together,
into a graph of tensor operations (``make_fx`` of ``torch.func.grad_and_value``), which
TorchScript then runs without Pyro's or autograd's per-call Python overhead. Measured
on Bayesian logistic regression (569 x 30, one thread): 0.77 ms per gradient eagerly,
0.12 ms compiled (:mod:`pgen.inference.compile`). A model whose Python code reads its
latent values is refused before tracing (a trace on a fake tensor), linear-algebra
checks (a Cholesky factor of a matrix that is not positive definite) survive
compilation, and the compiled potential is checked against the eager one at two points
where the model is finite; a model that fails any of this (or draws its own random
numbers) runs eagerly, with a warning that says why.

A point where the model raises or is not finite has infinite energy
(:meth:`Potential.numpy_value_and_grad`): the samplers reject it, as Stan does.

Discrete latent sites with finite support (a mixture's assignments, an HMM's states)
are summed out, as Pyro's HMC does: the model runs under ``poutine.enum`` with every
such site enumerated in parallel, and Pyro's ``TraceEinsumEvaluator`` contracts the
factors (variable elimination), so :math:`U(z) = -\log \sum_d p(\text{data}, d,
T(z)) - \log\lvert\det J_T(z)\rvert`. The draws of the discrete sites are made
afterwards from their conditional given each draw of :math:`z`
(:meth:`EnumeratedJoint.draw`, Pyro's ``infer_discrete``).
"""

from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.distributions.util import scale_and_mask
from pyro.infer import config_enumerate, infer_discrete
from pyro.infer.mcmc.util import TraceEinsumEvaluator
from pyro.poutine.subsample_messenger import _Subsample
from torch.distributions import biject_to

from .arguments import describe_arguments
from .compile import DataDependentModel, compile_function

__all__ = ["Potential", "SiteLayout", "model_error", "EnumeratedJoint"]


@dataclass(frozen=True)
class SiteLayout:
    """Where one latent site lives in the flat vector.

    Attributes:
        name: the Pyro site name.
        shape: the site's constrained shape.
        unconstrained_shape: its shape after the inverse transform (differs for
            e.g. simplex-valued sites).
        offset: first index in the flat vector.
        size: number of flat coordinates.
        transform: maps unconstrained values to the site's support.
    """

    name: str
    shape: tuple[int, ...]
    unconstrained_shape: tuple[int, ...]
    offset: int
    size: int
    transform: torch.distributions.Transform


def model_error(error: Exception, what: str = "the model", args=None, kwargs=None) -> TypeError:
    """A clear error for a model that cannot be called with the arguments given (with
    their shapes and dtypes when they are given)."""
    shown = "" if args is None else f" ({describe_arguments(args, kwargs or {})})"
    return TypeError(
        f"calling {what} with the arguments given failed: {type(error).__name__}: {error}. "
        "The arguments after the model are passed on as model(*args, **kwargs); check that "
        f"they match the model's signature{shown}"
    )


def _reason(error: Exception) -> str:
    """The first line of an error, with numbers that change from point to point dropped,
    so that the same failure at different points counts as one reason."""
    first = (str(error).strip().splitlines() or [""])[0]
    first = re.sub(r"-?\d+\.\d+(e[-+]?\d+)?", "#", first)[:160]
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def _is_latent(site) -> bool:
    """A latent site that HMC moves (continuous)."""
    return _is_unobserved(site) and not site["fn"].support.is_discrete


def _is_unobserved(site) -> bool:
    return site["type"] == "sample" and not site["is_observed"] and not isinstance(site["fn"], _Subsample)


def _unused_entries(trace, name: str, site) -> torch.Tensor | None:
    """The entries of an ``obs_mask`` site's ``<name>_unobserved`` latent that nothing
    uses, as a boolean tensor of the site's value shape (``None`` for other sites).

    ``pyro.sample(name, d, obs=y, obs_mask=m)`` draws ``<name>_unobserved`` over the
    whole batch with its density masked to ``~m`` and keeps only those entries:
    ``name = where(m, <name>_observed, <name>_unobserved)``. Where ``m`` holds, the
    latent has no density and feeds nothing, so NUTS would drift there without bound
    (flat directions: every tree to the maximum depth, R-hat far above 1).
    """
    if not name.endswith("_unobserved"):
        return None
    observed = trace.nodes.get(name[: -len("_unobserved")] + "_observed")
    if observed is None or observed.get("type") != "sample" or not torch.is_tensor(observed.get("mask")):
        return None
    value, event_dim = site["value"], site["fn"].event_dim
    batch = value.shape[: value.dim() - event_dim]
    used_mask = torch.broadcast_to(observed["mask"].bool(), batch)
    return used_mask.reshape(tuple(batch) + (1,) * event_dim).expand(value.shape)


def _max_plate_nesting(trace) -> int:
    """How many plates deep the model's sites sit (the dims enumeration must keep clear)."""
    dims = [
        frame.dim
        for site in trace.nodes.values()
        if site["type"] == "sample"
        for frame in site["cond_indep_stack"]
        if frame.vectorized
    ]
    return -min(dims) if dims else 0


def _log_joint(trace) -> torch.Tensor:
    """Sum of the (scaled, masked) log-densities of every sample site in ``trace``."""
    total = 0.0
    for site in trace.nodes.values():
        if site["type"] == "sample" and not isinstance(site["fn"], _Subsample):
            lp = site["fn"].log_prob(site["value"])
            total = total + scale_and_mask(lp, site["scale"], site["mask"]).sum()
    return torch.as_tensor(total)


class Potential:
    """:math:`U(z)` and :math:`\\nabla U(z)` of ``model(*args, **kwargs)``.

    Args:
        model: a Pyro model whose latent sites are all continuous.
        args, kwargs: the model's arguments (the data), fixed for the potential's life.
        jit: compile value-and-gradient into one graph (see the module docstring).

    Raises:
        TypeError: the model cannot be called with ``args``/``kwargs``.
        ValueError: the model has discrete latent sites, no latent sites, or a plate
            that subsamples the data.
    """

    def __init__(
        self, model: Callable, args: tuple = (), kwargs: Mapping | None = None, *, jit: bool = False
    ):
        self.model = model
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.prototype = trace = self._prototype()
        self._check_sites(trace)
        self.summed = EnumeratedJoint.of(model, self.args, self.kwargs, trace)
        self.enumerated = self.summed.names if self.summed is not None else []
        layout, offset = [], 0
        # entries of obs_mask latents that nothing uses: a standard normal in unconstrained
        # space makes them proper and leaves the joint of everything else as it was
        self.pinned: dict[str, torch.Tensor] = {}
        for name, site in trace.nodes.items():
            if not _is_latent(site):
                continue
            transform = biject_to(site["fn"].support)
            value = site["value"].detach()
            u = transform.inv(value)
            layout.append(SiteLayout(name, tuple(value.shape), tuple(u.shape), offset, u.numel(), transform))
            unused = _unused_entries(trace, name, site)
            if unused is not None and tuple(u.shape) == tuple(value.shape) and bool(unused.any()):
                self.pinned[name] = unused
            offset += u.numel()
        self.layout: list[SiteLayout] = layout
        self.dim = offset
        self.dtype = layout[0].transform.inv(trace.nodes[layout[0].name]["value"]).dtype
        self.device = trace.nodes[layout[0].name]["value"].device
        self.observed = {
            name: site["value"].detach()
            for name, site in trace.nodes.items()
            if site["type"] == "sample" and site["is_observed"]
        }
        self.compiled = None
        self.jit_error: str | None = None
        if jit:
            self._compile()
        self.num_evaluations = 0
        self.failures: Counter = Counter()  # why U(z) could not be computed, and how often

    # -- structure
    def _prototype(self, tries: int = 10):
        """A trace of the model at a prior draw, for the sites' names, shapes and supports.
        A model may fail at some prior draws (a value its own checks refuse): up to
        ``tries`` draws are tried. An error that says the arguments do not fit the model
        (a wrong signature, shape or type) is raised at once, in pgen's words."""
        signature_errors = (TypeError, IndexError, AttributeError)
        with torch.random.fork_rng(devices=[]), pyro.validation_enabled(True):
            for attempt in range(tries):
                try:
                    return poutine.trace(self.model).get_trace(*self.args, **self.kwargs)
                except signature_errors as error:
                    raise model_error(error, args=self.args, kwargs=self.kwargs) from error
                except (KeyboardInterrupt, MemoryError):
                    raise
                except Exception as error:  # noqa: BLE001 - perhaps only this prior draw
                    if attempt < tries - 1:
                        continue
                    if isinstance(error, RuntimeError) and not isinstance(error, torch.linalg.LinAlgError):
                        raise model_error(error, args=self.args, kwargs=self.kwargs) from error
                    raise ValueError(
                        f"the model failed at each of {tries} draws from its prior, so its sites "
                        f"cannot be found: {type(error).__name__}: {error}"
                    ) from error
        raise AssertionError("unreachable")

    def _check_sites(self, trace) -> None:
        unbounded = [
            f"{name!r} ({type(site['fn']).__name__})"
            for name, site in trace.nodes.items()
            if _is_unobserved(site)
            and site["fn"].support.is_discrete
            and not site["fn"].has_enumerate_support
        ]
        if unbounded:
            raise ValueError(
                f"the model has discrete latent site(s) {', '.join(unbounded)} whose support is "
                "not finite, so they cannot be summed out; HMC and NUTS sum out discrete sites "
                "with finite support (Bernoulli, Categorical, ...) and move the continuous ones. "
                "Marginalize these by hand, observe them, or use a kernel for discrete variables"
            )
        subsampled = [
            f"{name!r} (size {site['fn'].size}, subsample {len(site['value'])})"
            for name, site in trace.nodes.items()
            if site["type"] == "sample"
            and isinstance(site["fn"], _Subsample)
            and len(site["value"]) < site["fn"].size
        ]
        if subsampled:
            raise ValueError(
                f"plate(s) {', '.join(subsampled)} subsample the data; MCMC needs the full "
                "likelihood at every step. Remove subsample_size"
            )
        if not any(_is_latent(site) for site in trace.nodes.values()):
            discrete = [n for n, site in trace.nodes.items() if _is_unobserved(site)]
            raise ValueError(
                "the model has no continuous latent sites: there is nothing for HMC or NUTS to move"
                + (f" (its discrete sites {discrete} are drawn by infer_discrete alone)" if discrete else "")
            )

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.layout]

    @property
    def transforms(self) -> dict[str, torch.distributions.Transform]:
        return {s.name: s.transform for s in self.layout}

    def unflatten(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Flat unconstrained ``(..., D)`` -> ``{site: unconstrained (..., *shape)}``."""
        batch = z.shape[:-1]
        return {
            s.name: z[..., s.offset : s.offset + s.size].reshape(tuple(batch) + s.unconstrained_shape)
            for s in self.layout
        }

    def flatten(self, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``{site: unconstrained value}`` -> flat ``(D,)``."""
        return torch.cat([params[s.name].reshape(-1) for s in self.layout])

    def constrain(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Flat unconstrained ``(..., D)`` -> ``{site: constrained value (..., *shape)}``."""
        return {name: self.transforms[name](u) for name, u in self.unflatten(z).items()}

    def unconstrain(self, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``{site: constrained value}`` -> flat unconstrained ``(D,)``."""
        parts = []
        for s in self.layout:
            value = torch.as_tensor(values[s.name], dtype=self.dtype, device=self.device)
            if tuple(value.shape) != s.shape:
                raise ValueError(
                    f"the value for site {s.name!r} has shape {tuple(value.shape)}; the model's "
                    f"site has shape {s.shape}"
                )
            parts.append(s.transform.inv(value).reshape(-1))
        return torch.cat(parts)

    # -- evaluation
    def log_density(self, z: torch.Tensor) -> torch.Tensor:
        """:math:`-U(z)` for a flat unconstrained ``z`` (differentiable)."""
        values, log_det = {}, 0.0
        for s in self.layout:
            u = z[s.offset : s.offset + s.size].reshape(s.unconstrained_shape)
            x = s.transform(u)
            values[s.name] = x
            log_det = log_det + s.transform.log_abs_det_jacobian(u, x).sum()
            if s.name in self.pinned:
                log_det = log_det - 0.5 * (u * u * self.pinned[s.name]).sum()
        if self.summed is not None:  # discrete sites summed out
            return self.summed.log_prob(values) + log_det
        trace = poutine.trace(poutine.condition(self.model, data=values)).get_trace(*self.args, **self.kwargs)
        return _log_joint(trace) + log_det

    def _eager(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            u = -self.log_density(z)
            (grad,) = torch.autograd.grad(u, z)
        return u.detach(), grad

    def _compile(self) -> None:
        from torch.func import grad_and_value

        def value_and_grad(z):
            grad, value = grad_and_value(lambda v: -self.log_density(v))(z)
            return value, grad

        def value_and_grad_autograd(z):
            # for models whose operations torch.func cannot transform (an autograd.Function
            # without setup_context, as in Pyro's contraction of enumerated sites): the
            # backward pass is traced as autograd runs it
            with torch.enable_grad():
                v = z.detach().requires_grad_(True)
                value = -self.log_density(v)
                (grad,) = torch.autograd.grad(value, v)
            return value.detach(), grad

        z0 = torch.zeros(self.dim, dtype=self.dtype, device=self.device)
        try:
            with pyro.validation_enabled(False):
                try:
                    compiled = compile_function(value_and_grad, z0)
                except DataDependentModel:
                    raise
                except Exception:  # noqa: BLE001 - the same through autograd, else the first error
                    compiled = compile_function(value_and_grad_autograd, z0)
            self._check_compiled(compiled)
        except Exception as error:  # any failure to compile means: run eagerly
            self.jit_error = f"{type(error).__name__}: {error}"
            warnings.warn(
                "the model's potential could not be compiled (jit), so it runs eagerly (slower, "
                f"same results; jit=False says so and silences this). Reason: {self.jit_error}",
                RuntimeWarning,
                stacklevel=3,
            )
            return
        self.compiled = compiled

    def _check_compiled(self, compiled, needed: int = 2, tries: int = 12) -> None:
        """The compiled graph must agree with the model at ``needed`` points it was not
        traced at. Points where the model itself fails (it raises, or its density or
        gradient is not finite) say nothing and are skipped."""
        gen = torch.Generator().manual_seed(12345)
        tol = 1e-4 if self.dtype == torch.float32 else 1e-8
        agreed = 0
        for i in range(tries):
            scale = (0.5, 1.5)[i % 2] / (1 + i // 4)  # nearer the origin as tries go on
            z = (scale * torch.randn(self.dim, generator=gen)).to(self.dtype).to(self.device)
            try:
                u_e, g_e = self._eager(z)
            except Exception:  # noqa: BLE001 - the model fails here: not a test point
                continue
            if not (math.isfinite(float(u_e)) and bool(torch.isfinite(g_e).all())):
                continue
            with torch.no_grad():
                u_c, g_c = compiled(z)
            close = torch.allclose(u_c, u_e, rtol=tol, atol=tol * (1 + abs(float(u_e)))) and torch.allclose(
                g_c, g_e, rtol=10 * tol, atol=10 * tol * (1 + float(g_e.abs().max()))
            )
            if not close:
                raise RuntimeError(
                    f"the compiled potential differs from the model at a test point "
                    f"(U {float(u_c):.6g} vs {float(u_e):.6g})"
                )
            agreed += 1
            if agreed == needed:
                return
        raise RuntimeError(
            f"the model's density was finite at only {agreed} of {tries} test points, too few "
            "to check the compiled graph against it"
        )

    def value_and_grad(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(U(z), grad U(z))`` for a flat ``z`` of the potential's dtype and device."""
        self.num_evaluations += 1
        if self.compiled is not None:
            with torch.no_grad():
                return self.compiled(z)
        return self._eager(z)

    def numpy_value_and_grad(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        """The same for a float64 numpy vector: the form the samplers use.

        Stan's rule: a point where the log density or its gradient cannot be computed
        (the model raises, e.g. a distribution's scale underflows to 0 or a Cholesky
        factor fails, or a value is not finite) has infinite energy. The sampler rejects
        it, as a divergence, and goes on; the reasons are counted in :attr:`failures`.
        """
        try:
            u, g = self.value_and_grad(torch.from_numpy(z).to(dtype=self.dtype, device=self.device))
            u = float(u)
            g = g.detach().to("cpu", torch.float64).numpy()
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as error:  # noqa: BLE001 - any failure of the model is a rejection
            self.failures[_reason(error)] += 1
            return math.inf, np.zeros(self.dim)
        if not math.isfinite(u):
            self.failures["the log density is not finite"] += 1
            return math.inf, np.zeros(self.dim)
        if not np.all(np.isfinite(g)):
            self.failures["the gradient is not finite"] += 1
            return math.inf, np.zeros(self.dim)
        return u, g


class EnumeratedJoint:
    r""":math:`\log \sum_d p(\text{data}, d, v)` of a model whose discrete latent sites
    of finite support :math:`d` are summed out by enumeration, at given values :math:`v`
    of its other latent sites; and draws of :math:`d` from :math:`p(d \mid v,
    \text{data})`. Built with :meth:`of`, which returns ``None`` for a model with no
    such sites."""

    def __init__(self, model: Callable, args: tuple, kwargs: dict, prototype, names: list[str]):
        self.model, self.args, self.kwargs, self.names = model, args, kwargs, names
        self.max_plate_nesting = _max_plate_nesting(prototype)
        self.first_dim = -1 - self.max_plate_nesting
        self.enum_model = poutine.enum(config_enumerate(model), first_available_dim=self.first_dim)
        with torch.random.fork_rng(devices=[]):
            trace = poutine.trace(self.enum_model).get_trace(*args, **kwargs)
        self.evaluator = TraceEinsumEvaluator(trace, True, self.max_plate_nesting)

    @classmethod
    def of(cls, model: Callable, args: tuple, kwargs: dict, prototype, exclude=()) -> EnumeratedJoint | None:
        """``exclude``: sites whose values will be given (a guide's sites)."""
        names = [
            n
            for n, site in prototype.nodes.items()
            if _is_unobserved(site)
            and site["fn"].support.is_discrete
            and site["fn"].has_enumerate_support
            and n not in exclude
        ]
        return cls(model, tuple(args), dict(kwargs), prototype, names) if names else None

    def log_prob(self, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        conditioned = poutine.condition(self.enum_model, data=dict(values))
        trace = poutine.trace(conditioned).get_trace(*self.args, **self.kwargs)
        return self.evaluator.log_prob(trace)

    def draw(self, values: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One draw of the discrete sites from their conditional given ``values``, by
        Pyro's ``infer_discrete`` (forward filtering, backward sampling)."""
        model = poutine.condition(config_enumerate(self.model), data=dict(values))
        sampler = infer_discrete(model, first_available_dim=self.first_dim, temperature=1)
        trace = poutine.trace(sampler).get_trace(*self.args, **self.kwargs)
        return {name: trace.nodes[name]["value"].detach() for name in self.names}
