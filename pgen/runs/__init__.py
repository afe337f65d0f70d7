"""Run folders: what ``pgen train``, ``sample``, ``evaluate`` and ``demo`` do, as functions,
one module per verb (:mod:`~pgen.runs.train`, :mod:`~pgen.runs.evaluate`,
:mod:`~pgen.runs.sample`, :mod:`~pgen.runs.demo`) over a :class:`RunFolder`.

A run's ``config.json`` maps one-to-one onto Python calls, so every run can be
reproduced in a script::

    spec = pgen.models.registry.get(c["model"])
    x, y, transform = pgen.data.load_split(c["data"], "train")
    m = spec.cls(**spec.data_args(x, y), **c["model_args"])
    pgen.fit(m.model, m.guide, x, **c["fit"])

(energy models: ``objective=m.contrastive_divergence(**c["objective_args"])`` in place of
the recorded name ``"contrastive_divergence"``). What a run does with its model is
decided by the model's family (:mod:`pgen.families`), never by the run layer.
"""

from ..data import BINARIZE, data_config
from ..data import load_split as load_data
from .demo import demo
from .evaluate import MetricsNotWritten, evaluate, quality
from .figures import make_figures
from .folder import RunFolder
from .model import build_model, load_run_model
from .options import DATA_FLAGS, FIT_KEYS, RUN_EPOCHS, default_folder
from .sample import sample
from .train import ensure, resume, train

__all__ = [
    "train",
    "resume",
    "ensure",
    "evaluate",
    "quality",
    "sample",
    "make_figures",
    "demo",
    "load_data",
    "data_config",
    "load_run_model",
    "build_model",
    "read_config",
    "read_metrics",
    "RunFolder",
    "MetricsNotWritten",
    "BINARIZE",
    "FIT_KEYS",
    "DATA_FLAGS",
    "default_folder",
    "RUN_EPOCHS",
]


def read_config(run_dir) -> dict:
    """The ``config.json`` of a run folder, checked."""
    return RunFolder(run_dir).read_config()


def read_metrics(run_dir) -> dict:
    """The ``metrics.json`` that :func:`evaluate` wrote into a run folder."""
    return RunFolder(run_dir).read_metrics()
