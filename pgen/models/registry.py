"""A name -> model class registry, so the CLI can say ``pgen train vae``.

The Python API imports classes directly; this exists for the CLI, for
``pgen.io.save_model``/``load_model`` and for the contract test that every registered
model must pass.

A registered class is an ``nn.Module`` with ``model(x=None, *, y=None, ...)``,
``guide(...)`` of the same signature, a ``config`` dict of its constructor arguments and
an ``event_shape``; it may define ``validate_data(x, y, *, name)`` (called by
``pgen.fit``) and sets the class attribute ``uses_labels = True`` if its model and guide
take labels ``y`` (run folders then pass them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["register", "get", "names", "spec_of", "ModelSpec"]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model.

    Attributes:
        name: the CLI name.
        cls: the model class (an ``nn.Module`` with ``model``, ``guide`` and ``config``).
        data_args: ``f(x, y) -> dict`` of constructor arguments read off the data
            (e.g. ``{"data_dim": 784}``); the CLI does not offer them as flags.
    """

    name: str
    cls: type
    data_args: Callable[[torch.Tensor, torch.Tensor | None], dict]


_REGISTRY: dict[str, ModelSpec] = {}


def register(name: str, *, data_args: Callable[[torch.Tensor, torch.Tensor | None], dict]):
    """Class decorator registering a model class under ``name``."""

    def decorate(cls):
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise ValueError(f"a model named {name!r} is already registered")
        _REGISTRY[name] = ModelSpec(name, cls, data_args)
        cls.registry_name = name
        return cls

    return decorate


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
