"""Figures of a :class:`pgen.inference.calibrate.Calibration`: rank histograms and ECDF
differences (Talts et al. 2018; Säilynoja, Bürkner & Vehtari 2022)."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_ranks"]


def plot_ranks(calibration, *, max_parameters: int = 4, bins: int | None = None, fig=None):
    """For each method (rows) and each of the first ``max_parameters`` parameters: the
    histogram of the ranks with the 99% band of a bin's count under uniform ranks
    (binomial; grey), and, in the last column, the ECDF of each parameter's fractional
    ranks minus the uniform CDF with its pointwise 99% band. An exact method stays in the
    bands; a too narrow posterior makes a U (the ECDF difference dips then rises), a
    biased one a slope."""
    import matplotlib.pyplot as plt
    from scipy.stats import binom

    methods = list(calibration.ranks)
    names = list(next(iter(calibration.ranks.values())))[:max_parameters]
    L = calibration.num_draws
    bins = bins or int(calibration.table["bins"].iloc[0])
    cols = len(names) + 1
    if fig is None:
        fig = plt.figure(figsize=(2.6 * cols, 2.3 * len(methods)))
    axes = fig.subplots(len(methods), cols, squeeze=False)
    for row, method in enumerate(methods):
        ranks = calibration.ranks[method]
        for col, name in enumerate(names):
            ax = axes[row, col]
            r = ranks.get(name, np.array([], dtype=int))
            n = len(r)
            counts = np.bincount(r * bins // (L + 1), minlength=bins) if n else np.zeros(bins)
            lo, hi = binom.ppf([0.005, 0.995], n, 1 / bins) if n else (0, 0)
            ax.axhspan(lo, hi, color="0.85", zorder=0)
            ax.axhline(n / bins, color="0.5", lw=1)
            ax.bar(np.arange(bins), counts, width=0.9, color="C0" if row == 0 else f"C{row}")
            ax.set_xticks([])
            ax.set_title(f"{method}: {name}", fontsize=9)
        ax = axes[row, -1]
        grid = np.linspace(0, 1, 201)
        n = max((len(v) for v in ranks.values()), default=0)
        if n:
            band = np.sqrt(grid * (1 - grid) / n) * 2.576
            ax.fill_between(grid, -band, band, color="0.85")
            for name in names:
                u = (ranks[name] + 0.5) / (L + 1)
                ax.plot(grid, (u[:, None] <= grid).mean(0) - grid, lw=1, label=name)
        ax.axhline(0, color="0.5", lw=1)
        ax.set_title(f"{method}: ECDF - uniform", fontsize=9)
        ax.set_xlabel("fractional rank", fontsize=8)
        if row == 0:
            ax.legend(fontsize=7)
    return fig
