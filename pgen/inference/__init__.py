"""Inference engines: SVI (:func:`fit`) with its objectives, and MCMC (:func:`sample`)
with its kernels."""

from . import kernels
from .calibrate import Calibration, calibrate
from .compare import Comparison, compare
from .elbo import ELBO, OBJECTIVES, ImportanceWeightedELBO, MeanFieldELBO, make_objective
from .guides import GUIDES, VIPosterior, make_guide, vi_posterior
from .mcmc import MCMCResult, sample
from .potential import Potential
from .svi import NonFiniteLossError, SVIResult, fit, scale_data_plate

__all__ = [
    "fit",
    "SVIResult",
    "NonFiniteLossError",
    "scale_data_plate",
    "sample",
    "MCMCResult",
    "Potential",
    "compare",
    "Comparison",
    "calibrate",
    "Calibration",
    "make_guide",
    "vi_posterior",
    "VIPosterior",
    "GUIDES",
    "kernels",
    "ELBO",
    "MeanFieldELBO",
    "ImportanceWeightedELBO",
    "make_objective",
    "OBJECTIVES",
]
