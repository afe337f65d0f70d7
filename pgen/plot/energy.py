"""Figures of energy-based models: the density of a 2-D energy, a score field, chains
along MCMC, an RBM's filters, and the convergence of an AIS estimate of log Z.

Each function follows ``plot_x(data, *, ax=None, **kw) -> Axes`` (a new figure if ``ax``
is ``None``); :func:`plot_chain_snapshots` draws several panels and returns the figure.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .images import _numpy, image_grid

__all__ = [
    "energy_grid",
    "plot_energy_landscape",
    "plot_score_field",
    "plot_chain_snapshots",
    "plot_rbm_filters",
    "plot_ais_trace",
    "plot_ais_convergence",
]


def _axes(ax, size=(5, 4.5)):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=size)
    return ax


def _extent(data, extent, margin: float = 0.3):
    if extent is not None:
        return tuple(float(e) for e in extent)
    if data is None:
        return (-3.0, 3.0, -3.0, 3.0)
    a = _numpy(data)
    (x0, y0), (x1, y1) = a.min(0), a.max(0)
    pad = margin * max(x1 - x0, y1 - y0)
    return (x0 - pad, x1 + pad, y0 - pad, y1 + pad)


@torch.no_grad()
def energy_grid(energy, extent, grid: int = 200):
    r"""The normalized log density :math:`-E(x) - \log\sum_{\text{grid}} e^{-E}\Delta` on a
    ``grid`` x ``grid`` lattice over ``extent = (x0, x1, y0, y1)`` (the midpoint rule): the
    picture of a 2-D energy, and its log Z by quadrature. Returns ``(xs, ys, log_density,
    log_z)``; ``log_density[i, j]`` is at ``(xs[j], ys[i])``."""
    x0, x1, y0, y1 = extent
    xs = torch.linspace(x0, x1, grid + 1)
    ys = torch.linspace(y0, y1, grid + 1)
    xs, ys = (xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2  # cell midpoints
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    points = torch.stack([gx.reshape(-1), gy.reshape(-1)], -1).to(torch.get_default_dtype())
    e = torch.cat([torch.as_tensor(energy(chunk)).reshape(-1) for chunk in points.split(10000)]).double()
    cell = (x1 - x0) / grid * (y1 - y0) / grid
    log_z = float(torch.logsumexp(-e, 0) + math.log(cell))
    return xs.numpy(), ys.numpy(), (-e - log_z).reshape(grid, grid).numpy(), log_z


def plot_energy_landscape(
    energy,
    *,
    data=None,
    samples=None,
    extent=None,
    grid: int = 200,
    ax=None,
    title=None,
    floor: float = 8.0,
    score: str | None = None,
):
    """The density :math:`e^{-E(x)}/Z` of a 2-D energy (log scale, ``floor`` nats below its
    peak shown), with the data (white) and samples (red) over it; with ``score`` (the
    colour bar's label) the raw :math:`-E(x)` instead, as for a GAN critic, which is no
    log density.

    Args:
        energy: ``(n, 2) -> (n,)`` energies.
        data, samples: ``(n, 2)`` points, optional.
        extent: ``(x0, x1, y0, y1)`` (default: the data's box plus 30%).
    """
    ax = _axes(ax)
    extent = _extent(data, extent)
    xs, ys, log_p, log_z = energy_grid(energy, extent, grid)
    if score is None:
        top = float(log_p.max())
        shown, label = np.clip(log_p, top - floor, top), "log density (nats)"
    else:
        shown, label = log_p + log_z, score
    image = ax.imshow(shown, origin="lower", extent=extent, cmap="viridis", aspect="auto")
    ax.figure.colorbar(image, ax=ax, label=label)
    for points, color, label in ((data, "white", "data"), (samples, "tab:red", "samples")):
        if points is not None:
            a = _numpy(points)
            ax.scatter(a[:, 0], a[:, 1], s=2, color=color, alpha=0.5, label=label)
    if data is not None or samples is not None:
        ax.legend(markerscale=4, loc="upper right", fontsize=8)
    ax.set_xlim(extent[:2])
    ax.set_ylim(extent[2:])
    ax.set_title(title or "density of the energy model")
    return ax


@torch.no_grad()
def plot_score_field(score, *, data=None, extent=None, grid: int = 20, ax=None, title=None):
    r"""Arrows of a 2-D score :math:`s(x) \approx \nabla_x\log p(x)` on a ``grid`` x ``grid``
    lattice (direction, with length scaled by :math:`\|s\|^{1/2}` so both small and large
    scores stay visible), over the data (grey).

    Args:
        score: ``(n, 2) -> (n, 2)``.
    """
    ax = _axes(ax)
    extent = _extent(data, extent)
    x0, x1, y0, y1 = extent
    gx, gy = np.meshgrid(np.linspace(x0, x1, grid), np.linspace(y0, y1, grid))
    points = torch.tensor(np.stack([gx.ravel(), gy.ravel()], -1), dtype=torch.get_default_dtype())
    s = _numpy(score(points))
    norm = np.linalg.norm(s, axis=1, keepdims=True)
    shown = s / np.maximum(norm, 1e-12) * np.sqrt(norm)
    if data is not None:
        a = _numpy(data)
        ax.scatter(a[:, 0], a[:, 1], s=2, color="0.6", alpha=0.5, label="data")
    ax.quiver(
        gx.ravel(), gy.ravel(), shown[:, 0], shown[:, 1], np.sqrt(norm[:, 0]), cmap="plasma", width=0.004
    )
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_title(title or "score field (arrow length ~ |s|^1/2)")
    return ax


def plot_chain_snapshots(snapshots, *, data=None, image_shape=None, title=None, extent=None):
    """Where MCMC chains are after given numbers of steps, one panel per snapshot.

    Args:
        snapshots: a list of ``(label, states)``, states ``(chains, d)``; 2-D points are
            drawn as scatter plots over ``data``, images (``image_shape`` or square
            ``d``) as one column of chains per snapshot.
    """
    import matplotlib.pyplot as plt

    if not snapshots:
        raise ValueError("snapshots must hold at least one (label, states) pair")
    d = _numpy(snapshots[0][1]).shape[1]
    if d == 2:
        fig, axes = plt.subplots(1, len(snapshots), figsize=(2.6 * len(snapshots), 2.8), squeeze=False)
        extent = _extent(data, extent)
        for ax, (label, states) in zip(axes[0], snapshots, strict=True):
            if data is not None:
                a = _numpy(data)
                ax.scatter(a[:, 0], a[:, 1], s=1, color="0.75")
            b = _numpy(states)
            ax.scatter(b[:, 0], b[:, 1], s=2, color="tab:blue", alpha=0.6)
            ax.set_xlim(extent[:2])
            ax.set_ylim(extent[2:])
            ax.set_aspect("equal")
            ax.set_title(str(label), fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    else:
        chains = len(_numpy(snapshots[0][1]))
        fig, axes = plt.subplots(1, len(snapshots), figsize=(1.0 * len(snapshots) + 0.5, 0.9 * chains + 0.6))
        axes = np.atleast_1d(axes)
        for ax, (label, states) in zip(axes, snapshots, strict=True):
            ax.imshow(image_grid(states, nrow=1, image_shape=image_shape), cmap="gray_r", vmin=0, vmax=1)
            ax.set_title(str(label), fontsize=8)
            ax.axis("off")
    if title:
        fig.suptitle(title)
    return fig


def plot_rbm_filters(weight, *, image_shape=None, n: int = 64, ax=None, title=None):
    """The first ``n`` hidden units' weights :math:`W_{:j}` as images, each scaled to its own
    largest absolute value (red positive, blue negative)."""
    w = _numpy(weight).T[:n]
    w = w / np.maximum(np.abs(w).max(1, keepdims=True), 1e-12)
    grid = image_grid(w, image_shape=image_shape)
    ax = _axes(ax, (6, 6))
    ax.imshow(grid, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.axis("off")
    ax.set_title(title or f"filters of {len(w)} hidden units")
    return ax


def plot_ais_trace(traces, *, exact=None, ax=None, title=None):
    r"""AIS along its path: the estimate of :math:`\log Z_\beta` of each intermediate
    distribution against the number of distributions passed (the last point is the
    estimate of :math:`\log Z`). The curve's shape is that of the path, not a sign of
    convergence; see :func:`plot_ais_convergence` for that.

    Args:
        traces: ``{label: [(i, log_z), ...]}`` (``ais_log_partition(..., trace_every=...)``
            gives the list).
        exact: the true log Z, if known, as a dashed line.
    """
    ax = _axes(ax, (6, 4))
    for label, trace in traces.items():
        steps, values = zip(*trace, strict=True)
        ax.plot(steps, values, label=str(label))
    if exact is not None:
        ax.axhline(exact, color="k", ls="--", lw=1, label="exact")
    ax.set_xlabel("intermediate distributions passed")
    ax.set_ylabel("estimate of log Z_beta (nats)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "AIS along the annealing path")
    return ax


def plot_ais_convergence(log_weights, log_z_base: float, *, ax=None, title=None):
    r"""The AIS estimate :math:`\log Z_A + \log\frac1m\sum_{i \le m} w_i` against the
    number of chains m it averages (in a random order): flat when the chains agree, with
    jumps where one chain's weight dominates."""
    lw = torch.as_tensor(log_weights, dtype=torch.float64)
    lw = lw[torch.randperm(len(lw), generator=torch.Generator().manual_seed(0))]
    m = torch.arange(1, len(lw) + 1, dtype=torch.float64)
    running = log_z_base + torch.logcumsumexp(lw, 0) - m.log()
    ax = _axes(ax, (6, 4))
    ax.plot(m.numpy(), running.numpy())
    ax.set_xscale("log")
    ax.set_xlabel("chains averaged")
    ax.set_ylabel("estimate of log Z (nats)")
    ax.grid(alpha=0.3)
    ax.set_title(title or "AIS estimate as chains are added")
    return ax
