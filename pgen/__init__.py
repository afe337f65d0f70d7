"""pgen: a zoo of generative models written as Pyro model/guide pairs.

Every model is trained by one SVI engine (:func:`pgen.fit`) and evaluated by the same
estimators (:mod:`pgen.eval`). Subpackages: ``pgen.data``, ``pgen.models``,
``pgen.inference``, ``pgen.eval``, ``pgen.teach``, ``pgen.plot`` (imported on first use),
``pgen.io``.
"""

__version__ = "0.1.0"

from . import data, eval, inference, io, models, teach  # noqa: E402
from .inference import Comparison, MCMCResult, SVIResult, compare, fit, sample  # noqa: E402

__all__ = [
    "fit",
    "SVIResult",
    "sample",
    "MCMCResult",
    "compare",
    "Comparison",
    "data",
    "models",
    "inference",
    "eval",
    "io",
    "teach",
    "plot",
    "__version__",
]


def __getattr__(name):
    # matplotlib is imported only when plotting is used
    if name == "plot":
        import importlib

        return importlib.import_module(".plot", __name__)
    raise AttributeError(f"module 'pgen' has no attribute {name!r}")
