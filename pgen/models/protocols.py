"""What a pgen model may provide, declared once.

Every registered model is a :class:`GenerativeModel`. The others are capabilities a
model has or not; each model class says which by its bases (a class inherits from the
protocols it implements, so ``isinstance`` answers from the declaration, never from a
probe of attributes). The run layer and the CLI never ask a model what it can do: they
ask its family (:mod:`pgen.families`), and families rely on these declarations.

Conventions shared by all models:

* ``model(x=None, *, y=None, n=None)`` and ``guide`` with the same signature; per-example
  sites in ``pyro.plate("data", n)``, the observed site named ``"obs"``. With ``x=None``
  the model generates ``n`` examples (one per ``y`` for a conditional model), so Pyro's
  ``Predictive`` works.
* ``sample(n, *, seed=None, **options)``: ``n`` examples ``(n, *event_shape)`` (a
  conditional model: ``n`` for each condition, ``(len(y), n, *event_shape)``). ``seed``
  seeds these draws only; the caller's random streams are left as they were.
* ``config``: the constructor's arguments, recorded by :func:`configured`, so that
  ``type(m)(**m.config)`` rebuilds the model (:func:`pgen.models.save_model`).
* ``validate_data(x, y=None, *, name)``: raise ``ValueError`` naming ``name`` if ``x``
  (and ``y``) are not data the model can fit. :func:`pgen.fit` and the evaluation
  functions call it.
"""

from __future__ import annotations

import functools
import inspect
import numbers
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from .latent import LatentVariableModel  # a base with helpers: interpolate, traverse, manifold

__all__ = [
    "GenerativeModel",
    "LatentVariableModel",
    "ConditionalModel",
    "SemiSupervisedModel",
    "EnergyModel",
    "ScoreBasedModel",
    "BoundedModel",
    "ExactLikelihoodModel",
    "configured",
    "plain",
]


def plain(value: Any) -> Any:
    """``value`` as JSON-able plain data: tuples become lists, tensors and arrays lists
    (booleans as 0/1), NumPy scalars Python numbers."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return (value.int() if value.dtype == torch.bool else value).tolist()
    if isinstance(value, np.ndarray):
        return plain(torch.from_numpy(value))
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def configured(init):
    """Decorate a model's ``__init__`` so that its arguments, defaults included, are
    recorded as ``self.config`` (plain data) once it has run, in the spirit of
    diffusers' ``register_to_config``. A subclass whose ``__init__`` is decorated too
    records its own arguments, not its base's."""
    signature = inspect.signature(init)
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in signature.parameters.values()):
        raise TypeError(f"{init.__qualname__}: a configured constructor takes named arguments only")

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        init(self, *args, **kwargs)
        self.config = {k: plain(v) for k, v in bound.arguments.items() if k != "self"}

    wrapper.__signature__ = signature
    return wrapper


@runtime_checkable
class GenerativeModel(Protocol):
    """Every registered model: an ``nn.Module`` holding a Pyro model/guide pair."""

    config: dict
    event_shape: tuple[int, ...]

    def model(self, x=None, *, y=None, n=None): ...

    def guide(self, x=None, *, y=None, n=None): ...

    def sample(self, n: int, *, seed: int | None = None, **options) -> torch.Tensor: ...

    def validate_data(self, x, y=None, *, name: str = "x") -> None: ...


class ConditionalModel:
    """A model of p(x|y): its likelihood is conditional, ``sample(n, *, y)`` draws ``n``
    outputs per condition, and ``prepare_data(images, labels, *, train)`` turns a
    dataset into its ``(x, y)`` pairs (e.g. hidden and observed pixels for in-painting).
    ``complete(images, *, n)`` in-paints where the task is ``"inpaint"``."""

    conditional = True


class SemiSupervisedModel:
    """A model of p(x) whose latent state includes a class y, observed for some
    examples (labels ``-1`` where missing): ``prepare_data(x, y, *, train)`` hides the
    labels it should not see, ``classify(x)`` is the guide's q(y|x)."""


class EnergyModel:
    """An unnormalized density p~(x) = exp(-E(x)), trained by contrastive divergence.

    Methods: ``contrastive_divergence(**options)`` builds the objective :func:`pgen.fit`
    takes (its keyword arguments are the options a run records); ``log_unnormalized(x)``
    is log p~(x) per example. Attribute ``chain_length`` names the argument of
    ``sample`` that sets how long its chains run; ``chains_start_at_data`` says whether
    figures and samples start the chains at data (``init=``) rather than from noise.
    """

    chain_length: str = "steps"
    chains_start_at_data: bool = False


class ScoreBasedModel:
    """A model of the score of noise-perturbed data, trained by score matching (its
    ``loss(x)`` per example is a ``pyro.factor`` of the model), sampled by annealed
    Langevin dynamics: ``score(x, sigma)``, ``sampler(num_chains, ...)`` (an MCMC
    kernel), ``sigmas`` (the noise ladder), ``matching`` (which objective) and
    ``chain_length`` (the argument of ``sample`` for the steps per noise level)."""

    chain_length: str = "steps_per_level"


class BoundedModel:
    """A model with a variational bound but no importance-sampled likelihood (its pair
    has auxiliary sites): ``elbo_terms(x, y=None, *, seed)`` gives every term per
    example, and ``elbo`` their sum."""


class ExactLikelihoodModel:
    """A model with an exact ``log_prob(x)`` (PPCA), the oracle of the estimators."""
