"""Figures of a :class:`pgen.inference.compare.Comparison`: marginals, pairs, error vs time."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_marginals", "plot_pair", "plot_error_vs_time"]

_REFERENCE_STYLE = {"color": "black", "lw": 2.0, "ls": "--"}


def _methods(comparison):
    return [m for m in comparison.draws if m != "reference"]


def _density(ax, x, label, **style):
    from scipy.stats import gaussian_kde

    x = np.asarray(x, dtype=np.float64)
    if np.ptp(x) == 0:  # a point estimate (MAP): a vertical line
        ax.axvline(x[0], label=label, **style)
        return
    grid = np.linspace(*np.quantile(x, [0.001, 0.999]), 200)
    ax.plot(grid, gaussian_kde(x)(grid), label=label, **style)


def plot_marginals(comparison, parameters=None, *, max_parameters: int = 6, fig=None):
    """Overlaid marginal densities (Gaussian KDE) of each method and the reference (dashed),
    one panel per parameter (the first ``max_parameters`` unless ``parameters`` names them).

    Returns:
        The matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    ref = comparison.draws["reference"]
    names = list(parameters) if parameters is not None else list(ref)[:max_parameters]
    missing = [p for p in names if p not in ref]
    if missing:
        raise ValueError(f"unknown parameter(s) {missing}; parameters: {list(ref)[:20]}")
    cols = min(3, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig = fig or plt.figure(figsize=(4 * cols, 3 * rows))
    for i, p in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        _density(ax, ref[p], "reference", **_REFERENCE_STYLE)
        for m in _methods(comparison):
            if p in comparison.draws[m]:
                _density(ax, comparison.draws[m][p], m, lw=1.5)
        ax.set_title(p)
        ax.set_yticks([])
        if i == 0:
            ax.legend(fontsize=8)
    return fig


def _ellipse(ax, x, y, label, **style):
    """The 2-sigma ellipse of the Gaussian with the sample mean and covariance."""
    xy = np.stack([x, y])
    mean = xy.mean(1)
    cov = np.cov(xy) if xy.shape[1] > 1 else np.zeros((2, 2))
    vals, vecs = np.linalg.eigh(cov + 1e-12 * np.eye(2))
    t = np.linspace(0, 2 * np.pi, 200)
    circle = np.stack([np.cos(t), np.sin(t)])
    pts = mean[:, None] + 2.0 * vecs @ (np.sqrt(np.maximum(vals, 0))[:, None] * circle)
    ax.plot(pts[0], pts[1], label=label, **style)


def plot_pair(comparison, pair=None, *, ax=None, max_points: int = 500, seed: int = 0):
    """The reference's draws of two parameters (grey points) with each method's 2-sigma
    ellipse (the reference's dashed): mean-field ellipses are axis-aligned and too small
    where the posterior is correlated.

    Args:
        pair: two parameter names; default the most correlated pair in the reference
            (among the first 10 parameters).
    """
    import matplotlib.pyplot as plt

    ref = comparison.draws["reference"]
    if pair is None:
        names = list(ref)[:10]
        if len(names) < 2:
            raise ValueError("a pair plot needs at least two parameters")
        corr = np.corrcoef(np.stack([ref[p] for p in names]))
        np.fill_diagonal(corr, 0)
        i, j = np.unravel_index(np.nanargmax(np.abs(corr)), corr.shape)
        pair = (names[i], names[j])
    a, b = pair
    for p in pair:
        if p not in ref:
            raise ValueError(f"unknown parameter {p!r}; parameters: {list(ref)[:20]}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.5))
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(ref[a]), min(max_points, len(ref[a])), replace=False)
    ax.scatter(ref[a][idx], ref[b][idx], s=4, color="0.6", alpha=0.5, label="reference draws")
    _ellipse(ax, ref[a], ref[b], "reference", **_REFERENCE_STYLE)
    for m in _methods(comparison):
        d = comparison.draws[m]
        if a in d and b in d:
            _ellipse(ax, d[a], d[b], m, lw=1.5)
    ax.set_xlabel(a)
    ax.set_ylabel(b)
    ax.set_title("2-sigma ellipses")
    ax.legend(fontsize=8)
    return ax


def plot_error_vs_time(comparison, *, metric: str = "mean_w1", ax=None):
    """Bars of each method's error (``metric`` column of the table, default the mean
    marginal Wasserstein-1 in reference sds) beside bars of its run time."""
    import matplotlib.pyplot as plt

    table = comparison.table.dropna(subset=[metric]) if metric in comparison.table else None
    if table is None or not len(table):
        raise ValueError(f"the comparison table has no values of {metric!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    x = np.arange(len(table))
    ax.bar(x - 0.2, table[metric], width=0.4, color="tab:red", label=metric.replace("_", " "))
    ax.set_ylabel(metric.replace("_", " "), color="tab:red")
    ax2 = ax.twinx()
    ax2.bar(x + 0.2, table["seconds"], width=0.4, color="tab:blue", label="seconds")
    ax2.set_ylabel("seconds", color="tab:blue")
    ax.set_xticks(x)
    ax.set_xticklabels(table.index)
    ax.set_title("error against the reference (red) and run time (blue)")
    return ax
