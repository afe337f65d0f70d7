"""The model of a run: built from its configuration, or loaded from the folder."""

from __future__ import annotations

from pathlib import Path

from .. import data, families, rng
from ..inference.svi.checkpoint import restore_parameters
from ..io import load as load_checkpoint
from ..models import registry
from .folder import CHECKPOINT, MODEL, RunFolder

__all__ = ["build_model", "load_run_model"]


def build_model(cfg: dict, x, y):
    """The model of ``cfg``: its recorded arguments and those read off the training data
    ``(x, y)``, with initial weights drawn from the run's seed (the caller's random
    streams are left as they were)."""
    spec = registry.get(cfg["model"])
    if isinstance(x, data.ImageFiles):  # read off a sample: the files stay on disk
        k = min(len(x), 1024)
        x, y = x[:k], None if y is None else y[:k]
    with rng.forked(cfg["fit"].get("seed", 0)):
        return spec.cls(**{**spec.data_args(x, y), **cfg["model_args"]})


def load_run_model(run_dir: str | Path, *, checkpoint: bool = False):
    """The trained model of a run folder (``model.pt``). With ``checkpoint``, a run that
    was interrupted (no ``model.pt``) gives the model of its last checkpoint instead."""
    folder = RunFolder(run_dir)
    if folder.file(MODEL).is_file():
        return registry.load_model(folder.file(MODEL))
    if not folder.file(CHECKPOINT).exists():
        raise FileNotFoundError(
            f"{run_dir} has no trained model ({MODEL}) and no checkpoint; train it first"
            + (
                f", or finish it with `pgen train --resume {run_dir}`"
                if folder.file("config.json").exists()
                else ""
            )
        )
    saved = load_checkpoint(folder.file(CHECKPOINT), kind="svi")
    where = f"step {saved['step']} (epoch {saved['epoch']})"
    if not checkpoint:
        raise FileNotFoundError(
            f"{run_dir} has no trained model ({MODEL}): its training stopped at {where}. Finish it with "
            f"`pgen train --resume {run_dir}`, or use its last checkpoint with --checkpoint "
            "(checkpoint=True in Python)"
        )
    cfg = folder.read_config()
    family = families.of_model(cfg["model"])
    train = data.load_split(cfg["data"], "train", stream=family.streams_data)
    m = build_model(cfg, train.x, train.y)
    x, y = family.prepare(m, train.x[:2], train.y[:2], train=True)
    restore_parameters(m.model, m.guide, x, {"y": y} if family.uses_labels else {}, folder.file(CHECKPOINT))
    return m.eval()
