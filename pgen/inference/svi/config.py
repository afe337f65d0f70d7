"""Every setting of :func:`pgen.fit` in one place: its default, its check, and whether a
resumed run must repeat it.

A field whose metadata says ``resume=True`` shapes the trajectory (the losses of a
resumed run equal an uninterrupted one only if it is unchanged); the others (``epochs``,
``steps``, ``patience``, ``progress``, ``checkpoint_every``, ...) may change between an
interrupted run and its continuation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...checks import check_choice, check_float, check_int
from ...rng import check_seed

__all__ = ["FitConfig", "OPTIMIZERS", "name_of"]

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")


def _resumed(default: Any = None) -> Any:
    """A field that a resumed run must repeat."""
    return field(default=default, metadata={"resume": True})


def name_of(obj) -> str | None:
    """What a checkpoint records of an object setting: a name, or the object's dotted name."""
    if obj is None:
        return None
    if isinstance(obj, str):
        return obj
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


@dataclass(frozen=True)
class FitConfig:
    """The settings of one :func:`pgen.fit` call (see its docstring for each), checked
    when made. Objects (an ``ELBO`` instance, an optimizer factory, a transform) are kept
    as given; :meth:`record` names them."""

    objective: Any = _resumed("elbo")
    epochs: int | None = None
    steps: int | None = None
    batch_size: int | None = _resumed(128)
    lr: float = _resumed(1e-3)
    lr_final: float | None = _resumed()
    optimizer: Any = _resumed("adam")
    clip_norm: float | None = _resumed()
    seed: int = _resumed(0)
    checkpoint_dir: str | Path | None = None
    checkpoint_every: int = 1
    resume: bool = False
    patience: int | None = None
    progress: bool = True
    num_particles: int | None = _resumed()
    alpha: float | None = _resumed()
    transform: Callable | None = _resumed()
    shuffle: bool = _resumed(True)
    plate_name: str = _resumed("data")
    jit: bool = _resumed(False)
    on_nonfinite: str = "raise"

    def __post_init__(self):
        if (self.epochs is None) == (self.steps is None):
            raise ValueError(
                f"give exactly one of epochs= or steps= (got epochs={self.epochs!r}, steps={self.steps!r})"
            )
        checked = {
            "epochs": None if self.epochs is None else check_int("epochs", self.epochs, minimum=1),
            "steps": None if self.steps is None else check_int("steps", self.steps, minimum=1),
            "batch_size": None
            if self.batch_size is None
            else check_int("batch_size", self.batch_size, minimum=1),
            "lr": check_float("lr", self.lr, positive=True),
            "lr_final": None
            if self.lr_final is None
            else check_float("lr_final", self.lr_final, positive=True),
            "clip_norm": None
            if self.clip_norm is None
            else check_float("clip_norm", self.clip_norm, positive=True),
            "seed": check_seed("seed", self.seed),
            "checkpoint_every": check_int("checkpoint_every", self.checkpoint_every, minimum=1),
            "patience": None if self.patience is None else check_int("patience", self.patience, minimum=1),
            "on_nonfinite": check_choice("on_nonfinite", self.on_nonfinite, ("raise", "warn")),
            "shuffle": bool(self.shuffle),
            "jit": bool(self.jit),
            "resume": bool(self.resume),
            "progress": bool(self.progress),
        }
        for key, value in checked.items():
            object.__setattr__(self, key, value)
        if isinstance(self.optimizer, str):
            check_choice("optimizer", self.optimizer, OPTIMIZERS)
        elif not callable(self.optimizer):
            raise TypeError(
                f"optimizer must be 'adam', 'adamw', 'sgd', 'rmsprop' or a callable, "
                f"got {type(self.optimizer).__name__}"
            )
        if self.transform is not None and not callable(self.transform):
            raise TypeError(f"transform must be callable, got {type(self.transform).__name__}")
        if not isinstance(self.plate_name, str) or not self.plate_name:
            raise TypeError(f"plate_name must be a non-empty string, got {self.plate_name!r}")
        if self.resume and self.checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir, the folder of the checkpoint")

    @classmethod
    def resume_fields(cls) -> tuple[str, ...]:
        """The settings a resumed run must repeat."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("resume"))

    def replace(self, **changes) -> FitConfig:
        return dataclasses.replace(self, **changes)

    def record(self, objective=None) -> dict[str, Any]:
        """The JSON-able record of these settings (``SVIResult.config`` and checkpoints):
        objects by name; ``objective``, the built objective, gives the particle count and
        alpha it resolved to."""
        out = {}
        for f in dataclasses.fields(self):
            if f.name in ("checkpoint_dir", "resume", "progress", "on_nonfinite", "checkpoint_every"):
                continue
            out[f.name] = getattr(self, f.name)
        out["objective"] = (
            self.objective if isinstance(self.objective, str) else name_of(type(self.objective))
        )
        out["optimizer"] = name_of(self.optimizer)
        out["transform"] = name_of(self.transform)
        if objective is not None:
            out["num_particles"] = getattr(objective, "num_particles", None)
            out["alpha"] = getattr(objective, "alpha", None)
        return out

    @staticmethod
    def differences(old: Mapping, new: Mapping, keys) -> list[str]:
        """``"key: checkpoint X, now Y"`` for each of ``keys`` that differs."""
        return [
            f"{k}: checkpoint {old.get(k)!r}, now {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)
        ]
