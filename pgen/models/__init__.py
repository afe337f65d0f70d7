"""Models: each a Pyro model/guide pair in an ``nn.Module``.

``VAE`` (``pgen.models.vae``), ``PPCA`` (``pgen.models.ppca``, the exact-likelihood
oracle), the plain networks in ``pgen.models.nets`` and the name registry the CLI uses.
"""

from . import nets, registry
from .ppca import PPCA
from .vae import VAE

__all__ = ["VAE", "PPCA", "nets", "registry"]
