"""Latent-space and training figures."""

from __future__ import annotations

import numpy as np

from .images import _axes, _numpy

__all__ = ["project_2d", "plot_latent_scatter", "plot_training", "plot_points"]


def project_2d(z) -> tuple[np.ndarray, tuple[str, str]]:
    """Return ``z`` itself if 2-D, else its projection on the two leading principal
    components, with axis labels."""
    a = _numpy(z)
    if a.ndim != 2 or a.shape[1] < 2:
        raise ValueError(f"z must have shape (n, d) with d >= 2, got {a.shape}")
    if a.shape[1] == 2:
        return a, ("z1", "z2")
    centred = a - a.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    share = s[:2] ** 2 / (s**2).sum()
    labels = (f"PC 1 ({share[0]:.0%} of variance)", f"PC 2 ({share[1]:.0%})")
    return centred @ vt[:2].T, labels


def plot_latent_scatter(z, labels=None, *, ax=None, title=None, s: float = 6.0):
    """Encoded points coloured by label; more than two dimensions are projected on the
    two leading principal components (the axis labels say so)."""
    points, (xlabel, ylabel) = project_2d(z)
    ax = _axes(ax)
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=s, alpha=0.7)
    else:
        lab = _numpy(labels)
        if len(lab) != len(points):
            raise ValueError(f"{len(lab)} labels for {len(points)} points")
        discrete = np.allclose(lab, np.round(lab)) and len(np.unique(lab)) <= 20
        if discrete:
            for value in np.unique(lab):
                keep = lab == value
                ax.scatter(points[keep, 0], points[keep, 1], s=s, alpha=0.7, label=f"{int(value)}")
            ax.legend(title="label", markerscale=2, fontsize="small", loc="best")
        else:
            sc = ax.scatter(points[:, 0], points[:, 1], s=s, c=lab, cmap="viridis")
            ax.figure.colorbar(sc, ax=ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax


def plot_points(x, samples=None, *, ax=None, title=None, s: float = 4.0):
    """2-D data (grey) with model samples over it (blue)."""
    ax = _axes(ax)
    data = _numpy(x)
    ax.scatter(data[:, 0], data[:, 1], s=s, color="0.6", alpha=0.6, label="data")
    if samples is not None:
        gen = _numpy(samples)
        ax.scatter(gen[:, 0], gen[:, 1], s=s, color="tab:blue", alpha=0.6, label="samples")
    ax.set_aspect("equal")
    ax.legend(markerscale=3, loc="best")
    if title:
        ax.set_title(title)
    return ax


def plot_training(
    history, *, ax=None, title=None, val_label: str = "validation", ylabel: str = "ELBO (nats per example)"
):
    """Train and validation bound (nats per example) against epoch, from ``SVIResult.history``.

    With ten or more epochs the y-axis starts from the third epoch's values, so the
    first epochs' large negative bounds do not flatten the rest of the curve.
    """
    ax = _axes(ax)
    epochs = list(history["epoch"])
    if not epochs:
        raise ValueError("history holds no epochs yet")
    train = list(history["train_elbo"])
    ax.plot(epochs, train, label="train", marker="." if len(epochs) < 30 else None)
    val = history.get("val_elbo") or []
    pairs = [(e, v) for e, v in zip(epochs, val, strict=False) if v is not None]
    if pairs:
        ax.plot(*zip(*pairs, strict=True), label=val_label, marker="." if len(pairs) < 30 else None)
    if len(epochs) >= 10:
        shown = train[2:] + [v for _, v in pairs[2:]]
        lo, hi = min(shown), max(shown)
        ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return ax


def plot_rate_distortion(rates, distortions, betas=None, *, ax=None, title=None):
    r"""Rate :math:`R` (KL to the prior) against distortion :math:`D` (reconstruction
    negative log-likelihood), one point per model, with dashed lines of equal ELBO
    :math:`-(D + R)`: points on one line have the same bound, traded differently.

    Args:
        rates, distortions: nats per example, one per model (e.g. ``VAE.rate_distortion``).
        betas: labels for the points (the beta of each beta-VAE).
    """
    import matplotlib.pyplot as plt

    r, d = np.asarray(rates, dtype=float), np.asarray(distortions, dtype=float)
    if r.shape != d.shape or r.ndim != 1 or len(r) == 0:
        raise ValueError(f"rates and distortions must be 1-D of one length, got {r.shape} and {d.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.plot(r, d, "o-", color="C0")
    if betas is not None:
        if len(betas) != len(r):
            raise ValueError(f"betas has {len(betas)} entries for {len(r)} points")
        for ri, di, b in zip(r, d, betas, strict=True):
            ax.annotate(f"beta={b:g}", (ri, di), textcoords="offset points", xytext=(5, 4), fontsize=8)
    lo, hi = (r + d).min(), (r + d).max()
    span = np.linspace(0, r.max() * 1.1 + 1e-9, 50)
    for total in np.linspace(lo, hi, 3):
        ax.plot(span, total - span, "--", color="grey", lw=0.8)
    ax.text(span[-1], hi - span[-1], " equal ELBO", color="grey", fontsize=8, va="bottom")
    ax.set_xlabel("rate R = KL(q(z|x) || p(z)) (nats)")
    ax.set_ylabel("distortion D = -E log p(x|z) (nats)")
    pad = 0.08 * (d.max() - d.min() + 1.0)
    ax.set_ylim(d.min() - pad, d.max() + pad)  # the equal-ELBO lines run off the plotted points
    ax.set_title(title or "rate vs distortion")
    return ax


def plot_score_histograms(
    scores: dict, *, ax=None, title=None, xlabel="log p(x) (nats)", bins: int = 40, range=None
):
    """Overlaid histograms of scores by group, e.g. ``{"test digits": ll, "noise": ll_out}``.

    ``range=(lo, hi)`` limits the axis; a group with no score inside it is named in the
    legend with its mean, as off the chart."""
    import matplotlib.pyplot as plt

    if not scores:
        raise ValueError("scores is empty: give {name: values}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    arrays = {k: _numpy(v).reshape(-1) for k, v in scores.items()}
    if range is None:
        lo = min(a.min() for a in arrays.values())
        hi = max(a.max() for a in arrays.values())
    else:
        lo, hi = (float(v) for v in range)
    edges = np.linspace(lo, hi, bins + 1)
    for name, a in arrays.items():
        inside = a[(a >= lo) & (a <= hi)]
        if len(inside) == 0:
            ax.plot([], [], " ", label=f"{name}: off the chart (mean {a.mean():.4g})")
            continue
        ax.hist(inside, bins=edges, alpha=0.5, density=True, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax
