"""pgen: a zoo of generative models written as Pyro model/guide pairs.

Every model is trained by one SVI engine (:func:`pgen.fit`) and evaluated by the same
estimators (:mod:`pgen.eval`). Subpackages: ``pgen.data``, ``pgen.models``,
``pgen.inference``, ``pgen.eval``, ``pgen.teach``, ``pgen.io``, and imported on first use
``pgen.plot``, ``pgen.runs`` (run folders, what the CLI does) and ``pgen.families``.
"""

__version__ = "0.1.0"

from . import data, devices, eval, inference, io, models, teach  # noqa: E402
from .inference import Calibration, Comparison, MCMCResult, SVIResult, calibrate, compare, fit, sample  # noqa: E402

__all__ = [
    "fit",
    "SVIResult",
    "sample",
    "MCMCResult",
    "compare",
    "Comparison",
    "calibrate",
    "Calibration",
    "data",
    "devices",
    "models",
    "inference",
    "eval",
    "io",
    "teach",
    "plot",
    "runs",
    "families",
    "__version__",
]


def __getattr__(name):
    # matplotlib (plot) and the run layer (runs, families) are imported on first use
    if name in ("plot", "runs", "families"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'pgen' has no attribute {name!r}")
