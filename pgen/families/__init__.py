"""Model families: what the run layer and the CLI know about a model.

One file per family, named after it; each says, for its models, the fit defaults and
objective, its command-line options, how to evaluate, which figures to draw, how to
sample and how results read (:class:`~pgen.families.base.Family`). A registered model
names its family (``registry.register(..., family="latent")``); :func:`of_model` finds it.

* ``latent``: VAEs and PPCA;
* ``conditional``: the conditional VAE and its deterministic baseline;
* ``semisupervised``: the semi-supervised VAE (M2);
* ``diffusion``: diffusion models as hierarchical VAEs;
* ``boltzmann``: restricted Boltzmann machines;
* ``energy``: continuous energy-based models;
* ``score``: score models;
* ``flow``: normalizing flows with an exact log-likelihood;
* ``autoregressive``: MADE and PixelCNN, exact likelihoods of discrete values;
* ``dequantized``: flows trained with variational dequantization;
* ``adversarial``: GANs, trained by the adversarial game;
* ``wae``: Wasserstein autoencoders (MMD).
"""

from . import (
    adversarial,
    autoregressive,
    boltzmann,
    conditional,
    dequantized,
    diffusion,
    energy,
    flow,
    latent,
    score,
    semisupervised,
    wae,
)
from .base import Evaluation, Family, RunContext, get, names, of_model, register, unregister
from .options import Option, options_from

__all__ = [
    "Family",
    "RunContext",
    "Evaluation",
    "Option",
    "options_from",
    "register",
    "unregister",
    "get",
    "names",
    "of_model",
    "latent",
    "conditional",
    "semisupervised",
    "diffusion",
    "boltzmann",
    "energy",
    "score",
    "flow",
    "autoregressive",
    "dequantized",
    "adversarial",
    "wae",
]
