"""What a run can be asked, as declared options: the ``pgen.fit`` settings a run takes and
its data settings, each with its default from where it is defined (``FitConfig``,
``data_config``) and its help from their docstrings. The CLI turns them into flags."""

from __future__ import annotations

import dataclasses
import inspect

from .. import data, families
from ..families.options import Option, argument_help
from ..inference import fit
from ..inference.svi import FitConfig
from ..inference.svi.config import OPTIMIZERS

__all__ = ["RUN_EPOCHS", "FIT_KEYS", "DATA_FLAGS", "fit_options", "data_options", "default_folder"]

RUN_EPOCHS = 50  # a run's length when neither epochs nor steps is given
# the pgen.fit arguments a run may set (the rest are the run's own: data, checkpoints, progress)
FIT_KEYS = (
    "objective",
    "epochs",
    "steps",
    "batch_size",
    "lr",
    "lr_final",
    "optimizer",
    "clip_norm",
    "seed",
    "checkpoint_every",
    "patience",
    "num_particles",
    "alpha",
    "jit",
)


def fit_options(family: families.Family | None = None) -> list[Option]:
    """The ``pgen.fit`` settings a run takes, with their defaults (the engine's, and
    :data:`RUN_EPOCHS`) and help from ``pgen.fit``'s docstring."""
    docs = argument_help(fit)
    defaults = {f.name: f.default for f in dataclasses.fields(FitConfig)}
    defaults.update(epochs=RUN_EPOCHS, objective=family.objective if family else None)
    kinds = {
        "epochs": int,
        "steps": int,
        "batch_size": int,
        "checkpoint_every": int,
        "patience": int,
        "num_particles": int,
        "seed": int,
        "lr": float,
        "lr_final": float,
        "clip_norm": float,
        "alpha": float,
        "jit": bool,
        "optimizer": str,
        "objective": str,
    }
    out = []
    for key in FIT_KEYS:
        help_text = docs.get(key, "")
        choices = OPTIMIZERS if key == "optimizer" else None
        if key == "objective":
            allowed = ", ".join(family.objectives) if family and family.objectives else "elbo, meanfield, ..."
            help_text = (
                f"the engine's objective, one of: {allowed} (elbo: Monte Carlo KL; meanfield: closed-form "
                "KL; iwae, renyi: importance-weighted bounds; enum: discrete latent sites summed out)."
            )
        if key == "epochs":
            help_text = "passes over the data (what a run counts unless --steps is given)."
        out.append(Option(key, help_text, defaults.get(key), kinds[key], choices=choices))
    return out


# the data flags of a run and the data_config arguments they set
DATA_FLAGS = {
    "data": "name",
    "data_path": "path",
    "binarize": "binarize",
    "data_seed": "seed",
    "val_fraction": "val_fraction",
    "n": "n",
}


def data_options(family: families.Family | None = None) -> list[Option]:
    """The data settings of a run, with the defaults and help of :func:`pgen.data.data_config`."""
    docs = argument_help(data.data_config)
    docs["name"] = "the data set."
    image = family.image_data if family else "threshold"
    docs["binarize"] = (
        "images: threshold at 0.5, static or dynamic (per minibatch) Bernoulli draws, uniform "
        f"dequantization (k + u) / levels, or none (grey levels). Default for this model: {image}."
    )
    defaults = {k: p.default for k, p in inspect.signature(data.data_config).parameters.items()}
    kinds = {"name": str, "path": str, "binarize": str, "seed": int, "val_fraction": float, "n": int}
    choices = {"name": tuple(data.names()), "binarize": data.BINARIZE}
    return [
        Option(flag, docs[arg], defaults[arg], kinds[arg], choices=choices.get(arg))
        for flag, arg in DATA_FLAGS.items()
    ]


def default_folder(model: str) -> str:
    """Where ``pgen train MODEL`` writes without ``--out``."""
    return f"runs/{model}"
