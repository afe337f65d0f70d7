"""``pgen sample``: draws from a run's model, as a figure and as values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import families, io
from ..checks import check_int
from .evaluate import check_options, on_device
from .folder import RunFolder
from .model import load_run_model

__all__ = ["sample"]


def sample(
    run_dir: str | Path,
    *,
    n: int = 64,
    seed: int = 0,
    out: str | Path | None = None,
    checkpoint: bool = False,
    device=None,
    **options,
) -> torch.Tensor:
    """Draw ``n`` samples from a run's model (``n`` per class or completions of test
    images for conditional models); save a figure (``samples.png`` by default) and the
    values (``.npz`` beside it, key ``samples``). ``options`` are the family's
    (diffusion: ``sampler="ddim", steps=50``; energy models: ``steps``, the length of the
    chains). ``device``: where to draw them (:func:`pgen.runs.evaluate.on_device`)."""
    folder = RunFolder(run_dir)
    cfg = folder.read_config()
    n = check_int("n", n, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    family = families.of_model(cfg["model"])
    options = check_options(
        family, cfg["model"], {k: v for k, v in options.items() if v is not None}, "sample_options"
    )
    out = Path(out) if out is not None else folder.file("samples.png")
    io.check_writable(out.parent, what="the folder of --out")
    m = load_run_model(run_dir, checkpoint=checkpoint)
    with on_device(m, device):
        draws, figure = family.sample(families.RunContext(folder.path, cfg, m), n=n, seed=seed, **options)
    draws = draws.cpu()
    from .. import plot

    plot.save(figure, out)
    np.savez(out.with_suffix(".npz"), samples=draws.numpy())
    return draws
