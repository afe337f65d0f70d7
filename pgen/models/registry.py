"""A name -> model class registry, so the CLI can say ``pgen train vae``; and saving and
loading registered models.

The Python API imports classes directly; this exists for the CLI and run folders, for
:func:`save_model`/:func:`load_model` and for the contract test that every registered
model must pass. A registered class is a :class:`~pgen.models.protocols.GenerativeModel`
whose constructor is :func:`~pgen.models.protocols.configured`, and it names its family
(:mod:`pgen.families`): the family, not the model, tells the run layer how to train,
evaluate, sample and draw it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import io

__all__ = [
    "register",
    "get",
    "names",
    "spec_of",
    "ModelSpec",
    "save_model",
    "load_model",
    "flat_size",
    "class_count",
]


def flat_size(x: torch.Tensor, y=None) -> int:
    """The size of one flattened example."""
    return int(x[0].numel())


def class_count(y) -> int:
    """The number of classes of integer labels ``y``, which must run from 0 to C - 1:
    labels 20..29 are refused rather than read as 30 classes of which 20 never occur."""
    y = torch.as_tensor(y)
    if y.is_floating_point() or y.numel() == 0:
        raise ValueError("class labels must be a non-empty array of integers")
    low, high = int(y.min()), int(y.max())
    distinct = int(torch.unique(y).numel())
    if low < 0 or distinct != high + 1:
        raise ValueError(
            f"the labels take {distinct} distinct value(s) from {low} to {high}; class labels must "
            f"be 0, 1, ..., C - 1 with every class present (a model of {high + 1} classes would "
            f"have {high + 1 - distinct} that never occur): relabel them"
        )
    return high + 1


@dataclass(frozen=True)
class ModelSpec:
    """A registered model.

    Attributes:
        name: the CLI name.
        cls: the model class.
        family: the name of its family in :mod:`pgen.families`.
        reads: the constructor arguments read off the data (the CLI offers no flag for
            them), computed by ``data_args``.
        data_args_fn: ``f(x, y) -> dict`` of those arguments.
    """

    name: str
    cls: type
    family: str
    reads: tuple[str, ...]
    data_args_fn: Callable

    def data_args(self, x, y=None) -> dict:
        """The constructor arguments read off training data ``x`` (and labels ``y``)."""
        out = self.data_args_fn(x, y)
        unknown = set(out) - set(self.reads)
        if unknown:
            raise RuntimeError(f"{self.name}: data_args gave {sorted(unknown)}, not declared in reads=")
        return out


_REGISTRY: dict[str, ModelSpec] = {}


def register(
    name: str, *, family: str, reads: tuple[str, ...] = ("data_dim",), data_args: Callable | None = None
):
    """Class decorator registering a model class under ``name``.

    Args:
        name: the CLI name (``pgen train NAME``).
        family: its family (``"latent"``, ``"conditional"``, ...).
        reads: constructor arguments read off the data.
        data_args: ``f(x, y) -> dict`` of them; default: ``{"data_dim": flat_size(x)}``.
    """
    fn = data_args or (lambda x, y: {"data_dim": flat_size(x)})

    def decorate(cls):
        _check_contract(name, cls)
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise ValueError(f"a model named {name!r} is already registered")
        _REGISTRY[name] = ModelSpec(name, cls, family, tuple(reads), fn)
        cls.registry_name = name
        return cls

    return decorate


_REQUIRED = ("model", "guide", "sample", "validate_data")


def _check_contract(name: str, cls: type) -> None:
    """A registered class provides what :class:`~pgen.models.protocols.GenerativeModel`
    declares, and records its constructor's arguments (``@configured``)."""
    missing = [m for m in _REQUIRED if not callable(getattr(cls, m, None))]
    if not hasattr(cls, "event_shape"):
        missing.append("event_shape")
    if missing:
        raise TypeError(f"model {name!r} ({cls.__name__}) lacks {missing}, which every pgen model provides")
    if not getattr(cls.__init__, "__wrapped__", None):
        raise TypeError(
            f"model {name!r} ({cls.__name__}): decorate its __init__ with pgen.models.protocols.configured, "
            "so that its constructor's arguments are recorded (model.config)"
        )


def unregister(name: str) -> None:
    """Remove a registration (for tests that register a model of their own)."""
    _REGISTRY.pop(name, None)


def names() -> list[str]:
    """Registered model names."""
    return sorted(_REGISTRY)


def get(name: str) -> ModelSpec:
    """The :class:`ModelSpec` registered as ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; registered models: {', '.join(names())}") from None


def spec_of(model: torch.nn.Module) -> ModelSpec:
    """The :class:`ModelSpec` of a model instance."""
    for spec in _REGISTRY.values():
        if type(model) is spec.cls:
            return spec
    raise ValueError(f"{type(model).__name__} is not a registered pgen model")


def save_model(path: str | Path, model: torch.nn.Module) -> Path:
    """Save a registered pgen model: its name, constructor arguments and state dict, as a
    safe checkpoint (:func:`pgen.io.save`).

    Example:
        >>> pgen.models.save_model("vae.pt", vae)
        >>> vae2 = pgen.models.load_model("vae.pt")
    """
    spec = spec_of(model)
    config = dict(model.config)
    json.dumps(config)  # constructor arguments must be plain data
    return io.save(
        path, {"model": spec.name, "config": config, "state_dict": dict(model.state_dict())}, kind="model"
    )


def load_model(path: str | Path) -> torch.nn.Module:
    """Rebuild a model saved by :func:`save_model` (in eval mode)."""
    state = io.load(path, kind="model")
    try:
        spec = get(state["model"])
        model = spec.cls(**state["config"])
        model.load_state_dict(state["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError) as error:
        raise io.CheckpointError(f"{path} does not describe a model this pgen can build: {error}") from error
    return model.eval()
