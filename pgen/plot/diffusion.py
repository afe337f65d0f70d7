"""Figures of diffusion models (:class:`pgen.models.Diffusion`)."""

from __future__ import annotations

import numpy as np

from .images import _axes

__all__ = ["plot_diffusion_terms"]


def plot_diffusion_terms(denoising_per_t, *, prior=None, reconstruction=None, ax=None, title=None):
    """The denoising-matching term :math:`\\mathbb E\\,\\mathrm{KL}(q(x_{t-1}|x_t,x_0) \\|
    p_\\theta(x_{t-1}|x_t))` against t (log scale; nats per example), with the prior
    matching and reconstruction terms in the legend."""
    ax = _axes(ax)
    d = np.asarray(denoising_per_t, dtype=float)
    t = np.arange(2, len(d) + 2)
    ax.plot(t, d, lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("timestep t")
    ax.set_ylabel("E KL(q(x_t-1 | x_t, x_0) || p(x_t-1 | x_t)), nats")
    parts = [f"sum over t: {d.sum():.2f}"]
    if prior is not None:
        parts.append(f"prior matching {prior:.4f}")
    if reconstruction is not None:
        parts.append(f"reconstruction {reconstruction:.2f}")
    ax.set_title(title or "the ELBO's denoising terms per timestep\n" + ", ".join(parts), fontsize=10)
    return ax
