r"""The shared SVI engine: :func:`fit` trains any Pyro model/guide pair.

One loop serves every model in pgen (and any model a user writes): it minibatches the
data and scales the per-example sites so each step estimates the full-data objective,
runs the optimizer, shows progress, evaluates a validation bound, stops early, guards
against non-finite losses, checkpoints atomically, survives Ctrl-C and SIGTERM, and
resumes exactly.

The package, one concern per module:

* :mod:`~pgen.inference.svi.config`: :class:`FitConfig`, every setting with its default,
  its check and whether a resumed run must repeat it;
* :mod:`~pgen.inference.svi.data`: checks of the data, the ``data=None`` form, fingerprints;
* :mod:`~pgen.inference.svi.minibatch`: the data plate's ``N / B`` scaling;
* :mod:`~pgen.inference.svi.step`: :class:`SVIEngine`, ``init`` and ``update``;
* :mod:`~pgen.inference.svi.state`: :class:`SVIState`, what carries between steps;
* :mod:`~pgen.inference.svi.loop`: epochs, validation, early stopping, interruption;
* :mod:`~pgen.inference.svi.checkpoint`: what a checkpoint holds, writing and resuming;
* :mod:`~pgen.inference.svi.diagnose`: model/guide mismatches and non-finite steps, named;
* :mod:`~pgen.inference.svi.compile`: ``jit=True`` and its checks against eager;
* :mod:`~pgen.inference.svi.result`: :class:`SVIResult` and :class:`NonFiniteLossError`;
* :mod:`~pgen.inference.svi.api`: :func:`fit` itself.
"""

from .api import fit
from .checkpoint import CHECKPOINT_NAME
from .compile import TraceMismatch
from .config import FitConfig
from .loop import Interrupted
from .minibatch import scale_data_plate
from .result import NonFiniteLossError, SVIResult
from .state import SVIState
from .step import SVIEngine

__all__ = [
    "fit",
    "FitConfig",
    "SVIResult",
    "SVIState",
    "SVIEngine",
    "NonFiniteLossError",
    "Interrupted",
    "TraceMismatch",
    "scale_data_plate",
    "CHECKPOINT_NAME",
]
