"""Models: each a Pyro model/guide pair in an ``nn.Module``.

``VAE`` (``pgen.models.vae``), ``CVAE`` and its deterministic ``Baseline``
(``pgen.models.cvae``), ``Diffusion`` (``pgen.models.diffusion``), ``AutoregressiveVAE``
with its MADE decoder (``pgen.models.made``), the autoregressive densities ``MADEDensity``
and ``PixelCNN`` (``pgen.models.autoregressive``), the flows ``RealNVP``, ``MAF`` and ``NSF``
(``pgen.models.flows``), ``PPCA`` (``pgen.models.ppca``, the
exact-likelihood oracle), the plain networks in ``pgen.models.nets`` and the name registry
the CLI uses. Energy-based models: ``BoltzmannMachine``, ``EnergyMLP`` and ``ProductOfExperts``
(``pgen.models.ebm``) and ``RBM``
(``pgen.models.rbm``), trained by persistent contrastive divergence and sampled by the
MCMC engine's Gibbs kernels, and ``ScoreModel`` (``pgen.models.score``), trained by
score matching through ``pgen.fit`` and sampled by annealed Langevin dynamics.

What a model may provide is declared in :mod:`pgen.models.protocols`; models are saved
and rebuilt by :func:`save_model` and :func:`load_model`.
"""

from . import nets, protocols, registry
from .autoregressive import MADEDensity, PixelCNN
from .cvae import CVAE, Baseline
from .dequantize import DequantizedFlow
from .diffusion import Diffusion
from .ebm import BoltzmannMachine, EnergyMLP, ProductOfExperts
from .flow_vae import FlowVAE
from .flows import MAF, NSF, RealNVP
from .gan import GAN, LSGAN, WGAN
from .made import MADE, AutoregressiveVAE
from .planar import PlanarModel
from .ppca import PPCA
from .rbm import RBM
from .registry import load_model, save_model
from .score import ScoreModel
from .ssvae import SSVAE
from .vae import VAE
from .wae import WAE

__all__ = [
    "VAE",
    "Diffusion",
    "AutoregressiveVAE",
    "MADE",
    "CVAE",
    "Baseline",
    "PPCA",
    "RBM",
    "BoltzmannMachine",
    "EnergyMLP",
    "ProductOfExperts",
    "ScoreModel",
    "SSVAE",
    "RealNVP",
    "MAF",
    "NSF",
    "PlanarModel",
    "FlowVAE",
    "DequantizedFlow",
    "GAN",
    "WGAN",
    "LSGAN",
    "WAE",
    "MADEDensity",
    "PixelCNN",
    "nets",
    "registry",
    "protocols",
    "save_model",
    "load_model",
]
