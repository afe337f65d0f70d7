"""Models: each a Pyro model/guide pair in an ``nn.Module``.

``VAE`` (``pgen.models.vae``), ``CVAE`` and its deterministic ``Baseline``
(``pgen.models.cvae``), ``Diffusion`` (``pgen.models.diffusion``), ``AutoregressiveVAE`` with its MADE decoder
(``pgen.models.made``), ``PPCA`` (``pgen.models.ppca``, the exact-likelihood
oracle), the plain networks in ``pgen.models.nets`` and the name registry the CLI uses.
"""

from . import nets, registry
from .cvae import CVAE, Baseline
from .diffusion import Diffusion
from .made import MADE, AutoregressiveVAE
from .ppca import PPCA
from .ssvae import SSVAE
from .vae import VAE

__all__ = [
    "VAE",
    "Diffusion",
    "AutoregressiveVAE",
    "MADE",
    "CVAE",
    "Baseline",
    "PPCA",
    "SSVAE",
    "nets",
    "registry",
]
