"""Inference engines: the SVI engine (:func:`fit`) and its objectives."""

from .elbo import ELBO, OBJECTIVES, ImportanceWeightedELBO, MeanFieldELBO, make_objective
from .svi import NonFiniteLossError, SVIResult, fit, scale_data_plate

__all__ = [
    "fit",
    "SVIResult",
    "NonFiniteLossError",
    "scale_data_plate",
    "ELBO",
    "MeanFieldELBO",
    "ImportanceWeightedELBO",
    "make_objective",
    "OBJECTIVES",
]
