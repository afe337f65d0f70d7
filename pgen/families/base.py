"""The family contract: what the run layer and the CLI may ask about a model.

A family says, for its models, how they are trained (the engine objective, its options,
the default treatment of image data, how a dataset becomes the model's data), how they
are evaluated, which figures are drawn, how they are sampled, and how results read in
one line. The run layer and the CLI ask the family of a run's model and nothing else:
adding a family is one model file (registered with ``family=NAME``) and one family file
(a :class:`Family` subclass decorated with :func:`register`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from .. import data
from ..eval import bits_per_dim
from ..inference.elbo import OBJECTIVES
from ..models import registry
from .options import Option, options_from

__all__ = ["Family", "RunContext", "Evaluation", "register", "get", "names", "of_model", "unregister"]


@dataclass
class Evaluation:
    """What a family's :meth:`Family.evaluate` returns: ``metrics`` (JSON-able, written
    to ``metrics.json``) and figures to save beside them, ``{file name: figure}``."""

    metrics: dict
    figures: dict = field(default_factory=dict)


class RunContext:
    """A trained (or interrupted) run as families see it: its folder, configuration,
    model and data, each split loaded once."""

    def __init__(self, folder: str | Path, cfg: dict, model: torch.nn.Module):
        self.folder, self.cfg, self.model = Path(folder), cfg, model
        self.family = of_model(cfg["model"])
        self._splits: dict = {}

    @functools.cached_property
    def meta(self) -> data.DatasetInfo:
        return data.info(self.cfg["data"]["name"], self.cfg["data"].get("path"))

    @property
    def is_image(self) -> bool:
        return self.meta.kind == "image"

    def split(self, name: str) -> data.Split:
        if name not in self._splits:
            self._splits[name] = data.load_split(self.cfg["data"], name)
        return self._splits[name]

    def model_view(self, name: str, *, train: bool = False):
        """``(x, y)`` of a split as the model sees it (:meth:`Family.prepare`)."""
        s = self.split(name)
        return self.family.prepare(self.model, s.x, s.y, train=train)

    def bits_per_dim(self, nll: float, dims: int) -> float | None:
        """Bits/dim of a negative log-likelihood (or its bound): binary data as is,
        dequantized grey levels with the D log(levels) shift; ``None`` for a density on
        values that were not discretized."""
        mode = self.cfg["data"]["binarize"]
        if mode == "none":
            return None
        return bits_per_dim(nll, dims, levels=self.meta.levels if mode == "dequantize" else None)

    def draws_figure(self, draws: torch.Tensor, title: str):
        """A figure of samples: an image grid (values clipped to [0, 1]) for image data,
        else the points over the test data."""
        from .. import plot

        if self.is_image:
            return plot.plot_images(draws.clamp(0, 1), image_shape=self.meta.image_shape, title=title)
        return plot.plot_points(self.split("test").x, draws, title=title)

    def header(self, split: str, x: torch.Tensor) -> dict:
        return {
            "run": str(self.folder),
            "model": self.cfg["model"],
            "family": self.family.name,
            "data": self.cfg["data"]["name"],
            "split": split,
            "n": len(x),
            "dims": int(x[0].numel()),
        }


def mean_and_se(values: torch.Tensor) -> tuple[float, float]:
    """The mean of per-example values and its standard error over the examples."""
    values = values.double()
    se = values.std().item() / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return values.mean().item(), se


class Family:
    """Base of every family; the defaults fit a VAE-like model/guide pair.

    Class attributes:
        name: the family's name, as models give it when they register.
        objective: the engine objective its runs use unless ``--objective`` says otherwise.
        objectives: the engine objectives it accepts.
        image_data: the default treatment of image data (``pgen.data.BINARIZE``).
        uses_labels: model and guide take the labels ``y``.
        redraws_data: whether training may re-draw the data each minibatch (dynamic
            binarization, dequantization); not if :meth:`prepare` splits images.
        streams_data: whether its training data may stay on disk
            (:class:`pgen.data.ImageFiles`, for sets read from local files): true where
            :meth:`prepare` and the model's data arguments only slice the data.
        train_quantity: what the engine's per-example ``train_elbo`` is, in words.
        evaluate_options, sample_options: options of ``pgen evaluate``/``pgen sample``
            that only this family's runs take.
        requires: the protocols of :mod:`pgen.models.protocols` its models implement
            (checked when a model of the family is first used).
    """

    name: ClassVar[str] = ""
    requires: ClassVar[tuple[type, ...]] = ()
    objective: ClassVar[str] = "elbo"
    objectives: ClassVar[tuple[str, ...]] = OBJECTIVES
    image_data: ClassVar[str] = "threshold"
    uses_labels: ClassVar[bool] = False
    redraws_data: ClassVar[bool] = True
    streams_data: ClassVar[bool] = False
    train_quantity: ClassVar[str] = "ELBO (nats per example)"
    evaluate_options: ClassVar[tuple[Option, ...]] = ()
    sample_options: ClassVar[tuple[Option, ...]] = ()

    # ------------------------------------------------------------------ training

    def model_options(self, spec: registry.ModelSpec) -> list[Option]:
        """The model's constructor arguments that the CLI offers (not those read off data)."""
        return options_from(spec.cls.__init__, skip=spec.reads)

    def objective_options(self, spec: registry.ModelSpec) -> list[Option]:
        """Options of the objective beyond the engine's (contrastive divergence's)."""
        return []

    def check_objective(self, model_name: str, objective: str | None) -> str:
        """The engine objective of a run, checked; ``None`` takes the family's."""
        if objective is None:
            return self.objective
        if objective not in OBJECTIVES:
            raise ValueError(
                f"--objective {objective}: {model_name} has no such loss; --objective is the engine's "
                f"objective, for {model_name} one of {list(self.objectives)} (a model's own loss is a model "
                "argument with its own name, e.g. diffusion's --loss)"
            )
        if objective not in self.objectives:
            raise ValueError(
                f"--objective for {model_name} is one of {list(self.objectives)} (the engine's objective); "
                f"got {objective!r}"
            )
        return objective

    def complete_objective_args(self, model_name: str, given: dict) -> dict | None:
        """The objective's options a run records (``None``: the family has none)."""
        if given:
            raise ValueError(f"{model_name} takes no objective options; got {sorted(given)}")
        return None

    def build_objective(self, model, cfg: dict):
        """What ``pgen.fit(objective=...)`` gets: the recorded name, or an object built from it."""
        return cfg["fit"]["objective"]

    def prepare(self, model, x, y, *, train: bool):
        """A dataset's ``(x, y)`` as the model sees it (the default: as loaded)."""
        return x, y

    def fit_data(self, x, y):
        """``pgen.fit``'s ``data``: ``(x, y)`` if the model takes labels, else ``x``."""
        return (x, y) if self.uses_labels else x

    def train_summary(self, model, history: dict) -> str:
        """The last epoch's training quantity in words."""
        return f"train ELBO {history['train_elbo'][-1]:.2f} nats/example"

    # ------------------------------------------------------------------ evaluation

    def evaluate(
        self,
        run: RunContext,
        *,
        split: str,
        seed: int,
        batch_size: int,
        num_samples: int,
        progress: bool,
        **options,
    ) -> Evaluation:
        raise NotImplementedError

    def summary(self, metrics: dict) -> list[str]:
        """``metrics`` in a few lines for the terminal (the file holds everything)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ figures and samples

    def figures(self, run: RunContext) -> Iterator[tuple[str, Any]]:
        """``(file name, figure)`` of a trained run, beside the training curve."""
        return iter(())

    def sample(self, run: RunContext, *, n: int, seed: int, **options) -> tuple[torch.Tensor, Any]:
        """``(draws, figure)``: ``n`` samples of the run's model and a figure of them."""
        raise NotImplementedError

    def quality_draws(
        self, run: RunContext, *, n: int, seed: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(draws (n, dims), labels)`` for the sample-quality suite: ``n`` samples as
        ``pgen sample`` draws them, flattened. Class-conditional families override it
        to draw the classes in turn and return the labels (for the classification
        accuracy score); the rest return ``None``."""
        draws, _ = self.sample(run, n=n, seed=seed)
        return draws.reshape(n, -1), None


def cycled_labels(n: int, num_classes: int) -> torch.Tensor | None:
    """Labels ``0, 1, ..., C-1, 0, 1, ...`` for ``n`` draws of a conditional model (``None``
    for an unconditional one, ``num_classes == 0``)."""
    return torch.arange(n) % num_classes if num_classes else None


def class_draws(sample_classes, n: int, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` draws of a class-conditional model, the classes in turn: ``sample_classes(k)``
    gives ``(num_classes, k, dims)``, ``k`` draws of each class; the first ``n`` of them
    in the order 0, 1, ..., C-1, 0, 1, ... with their labels."""
    k = -(-n // num_classes)
    draws = sample_classes(k)
    draws = draws.reshape(num_classes, k, -1).transpose(0, 1).reshape(num_classes * k, -1)
    labels = torch.arange(num_classes).repeat(k)
    return draws[:n], labels[:n]


_FAMILIES: dict[str, Family] = {}


def register(cls: type[Family]) -> type[Family]:
    """Class decorator: register a family (one instance) under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a name")
    if cls.name in _FAMILIES and type(_FAMILIES[cls.name]) is not cls:
        raise ValueError(f"a family named {cls.name!r} is already registered")
    _FAMILIES[cls.name] = cls()
    return cls


def unregister(name: str) -> None:
    """Remove a family (for tests that register one of their own)."""
    _FAMILIES.pop(name, None)


def names() -> list[str]:
    return sorted(_FAMILIES)


def get(name: str) -> Family:
    try:
        return _FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model family {name!r}; families: {', '.join(names())}") from None


def of_model(model_name: str) -> Family:
    """The family of a registered model, which must implement what the family requires."""
    spec = registry.get(model_name)
    family = get(spec.family)
    missing = [p.__name__ for p in family.requires if not issubclass(spec.cls, p)]
    if missing:
        raise TypeError(
            f"model {model_name!r} ({spec.cls.__name__}) is of the {family.name} family, which needs "
            f"{missing} of pgen.models.protocols; declare them as its bases"
        )
    return family
