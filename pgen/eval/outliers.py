r"""Outlier detection from likelihood: score inputs by :math:`\log p(x)` and measure how
well the score separates held-out data from outliers by the AUROC.

A density model that has learned the data should give its held-out examples a higher
likelihood than corrupted or out-of-distribution inputs (the notes' "detect outliers"
use of a generative model). The AUROC is the probability that a random held-out example
scores above a random outlier (ties count half): 1 is perfect, 0.5 is chance, and below
0.5 the outliers look *more* likely, the failure Nalisnick et al. (2019) found for deep
generative models on some dataset pairs.

References:
    Hanley & McNeil (1982), The meaning and use of the area under a ROC curve.
    Nalisnick et al. (2019), Do Deep Generative Models Know What They Don't Know? ICLR.
"""

from __future__ import annotations

import numpy as np
import torch

from ..checks import check_choice, check_float, check_int
from ..data.validate import check_data
from .likelihood import log_likelihood

__all__ = ["auroc", "corrupt", "likelihood_auroc", "CORRUPTIONS"]

CORRUPTIONS = ("flip", "noise", "invert", "rotate")


def auroc(scores_in, scores_out) -> float:
    r"""Area under the ROC curve for "in" scoring higher than "out".

    Computed as the Mann-Whitney statistic :math:`U / (n_{in} n_{out})` from the ranks
    of the pooled scores (average ranks for ties).
    """
    from scipy.stats import rankdata

    a = np.asarray(torch.as_tensor(scores_in).detach().cpu(), dtype=np.float64).reshape(-1)
    b = np.asarray(torch.as_tensor(scores_out).detach().cpu(), dtype=np.float64).reshape(-1)
    if len(a) == 0 or len(b) == 0:
        raise ValueError(f"auroc needs scores on both sides, got {len(a)} in and {len(b)} out")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("auroc: scores must be finite")
    ranks = rankdata(np.concatenate([a, b]))
    u = ranks[: len(a)].sum() - len(a) * (len(a) + 1) / 2.0
    return float(u / (len(a) * len(b)))


def corrupt(
    x: torch.Tensor, kind: str, *, image_shape=None, amount: float = 0.1, seed: int = 0
) -> torch.Tensor:
    """Outliers made from binary images ``x`` ``(n, pixels)``:

    * ``flip``: each pixel flipped with probability ``amount``;
    * ``noise``: independent Bernoulli pixels with the data's mean intensity (no digit);
    * ``invert``: ``1 - x``;
    * ``rotate``: each image turned 90 degrees (square images, or ``image_shape``).
    """
    kind = check_choice("kind", kind, CORRUPTIONS)
    x = check_data(x, name="x")
    if x.dim() != 2:
        raise ValueError(f"x must be flattened images (n, pixels), got shape {tuple(x.shape)}")
    g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    if kind == "flip":
        amount = check_float("amount", amount, positive=True, below=1.0)
        flips = torch.rand(x.shape, generator=g) < amount
        return torch.where(flips, 1.0 - x, x)
    if kind == "noise":
        return (torch.rand(x.shape, generator=g) < x.mean()).to(x.dtype)
    if kind == "invert":
        return 1.0 - x
    if image_shape is None:
        side = int(round(x.shape[1] ** 0.5))
        if side * side != x.shape[1]:
            raise ValueError(f"rotate needs square images or image_shape; {x.shape[1]} pixels is not square")
        image_shape = (side, side)
    return torch.rot90(x.reshape(-1, *image_shape), 1, dims=(1, 2)).reshape(len(x), -1).contiguous()


def likelihood_auroc(
    model, guide, x_in, x_out, *, num_samples: int = 100, seed: int = 0, batch_size: int = 100
):
    """Score both sets by the importance-sampled log-likelihood and return
    ``(auroc, scores_in, scores_out)``."""
    kw = dict(num_samples=num_samples, seed=seed, batch_size=batch_size)
    s_in = log_likelihood(model, guide, x_in, **kw)
    s_out = log_likelihood(model, guide, x_out, **kw)
    return auroc(s_in, s_out), s_in, s_out
