"""Figures for :mod:`pgen.teach`."""

from __future__ import annotations

import numpy as np

from .images import _axes

__all__ = [
    "plot_elbo_terms",
    "plot_iwae_curve",
    "plot_mean_field",
    "plot_score_matching",
    "plot_gradient_variance",
    "plot_divergence_fits",
]


def plot_elbo_terms(history: dict, *, ax=None, title=None):
    """Reconstruction, KL and ELBO over training (``pgen.teach.track_elbo_terms``), with
    the exact log p(x) and ELBO + KL(q || p(z|x)) where known: the two coincide."""
    ax = _axes(ax)
    steps = np.asarray(history["step"])
    ax.plot(steps, history["reconstruction"], label="reconstruction E_q log p(x|z)")
    ax.plot(steps, -np.asarray(history["kl"]), label="- KL(q(z|x) || p(z))")
    ax.plot(steps, history["elbo"], "k", lw=2, label="ELBO")
    if history.get("log_evidence") and history["log_evidence"][0] is not None:
        ax.plot(steps, history["log_evidence"], "C3--", lw=2, label="log p(x) (exact)")
        total = np.asarray(history["elbo"]) + np.asarray(history["kl_posterior"])
        ax.plot(steps, total, "C3o", ms=4, mfc="none", label="ELBO + KL(q || p(z|x))")
    ax.set_xlabel("training step")
    ax.set_ylabel("nats per example")
    ax.legend(fontsize=8)
    ax.set_title(title or "the ELBO and its terms over training")
    return ax


def plot_iwae_curve(curve, *, ax=None, title=None):
    """The importance-weighted bound against K (log scale), with error bars and the
    exact log p(x) where known."""
    ax = _axes(ax)
    ax.errorbar(
        curve.ks, curve.bounds, yerr=2 * np.asarray(curve.stderr), fmt="o-", capsize=3, label="L_K (± 2 se)"
    )
    if curve.log_evidence is not None:
        ax.axhline(curve.log_evidence, color="C3", ls="--", label="log p(x) (exact)")
    ax.set_xscale("log")
    ax.set_xlabel("K (importance samples)")
    ax.set_ylabel("nats per example")
    ax.legend(fontsize=8)
    ax.set_title(title or "importance-weighted bounds: L_1 = ELBO <= L_K <= log p(x)")
    return ax


def plot_mean_field(run, *, ax=None, title=None):
    """The ELBO after each coordinate-ascent update (``pgen.teach.mean_field_ising``),
    under the exact log Z."""
    ax = _axes(ax)
    ax.plot(np.arange(len(run.elbos)), run.elbos, "o-", ms=3, label="mean-field ELBO")
    ax.axhline(run.log_z, color="C3", ls="--", label="log Z (exact, by enumeration)")
    d = len(run.means)
    for sweep in range(1, run.updates // d):
        ax.axvline(sweep * d, color="grey", lw=0.5, alpha=0.5)
    ax.set_xlabel(f"coordinate update (grey lines: sweeps over the {d} coordinates)")
    ax.set_ylabel("nats")
    ax.legend(fontsize=8)
    ax.set_title(title or "CAVI: each update raises the ELBO, which stays below log Z")
    return ax


def plot_score_matching(thetas, explicit, implicit, *, constant=None, ax=None, xlabel="theta", title=None):
    """Explicit and integration-by-parts score-matching objectives along a path of
    parameters: parallel curves, ``constant`` apart."""
    ax = _axes(ax)
    ax.plot(thetas, explicit, "o-", label="explicit: E ||s - grad log p||^2 / 2")
    ax.plot(thetas, implicit, "s-", label="by parts: E[||s||^2 / 2 + tr grad s]")
    diff = np.asarray(explicit) - np.asarray(implicit)
    ax.plot(thetas, diff, "k:", label="their difference")
    if constant is not None:
        ax.axhline(
            constant, color="C3", ls="--", lw=0.8, label=f"C = E ||grad log p||^2 / 2 = {constant:.3f}"
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("objective")
    ax.legend(fontsize=8)
    ax.set_title(title or "score matching: the two objectives differ by a constant")
    return ax


def plot_gradient_variance(study, *, ax=None, title=None):
    """Total variance of each gradient estimator against the number of samples S
    (log-log: slope -1 for every unbiased Monte Carlo estimator)."""
    ax = _axes(ax)
    for name, values in study.variance.items():
        ax.plot(study.sample_sizes, values, "o-", label=name)
    s = np.asarray(study.sample_sizes, dtype=float)
    first = study.variance[next(iter(study.variance))][0]
    ax.plot(s, first * s[0] / s, "k:", lw=0.8, label="1/S")
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import NullFormatter

    ax.set_xticks(s, [f"{int(v)}" for v in s])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("S (samples per estimate)")
    ax.set_ylabel("variance of the gradient estimate (summed over parameters)")
    ax.legend(fontsize=8)
    ax.set_title(title or "gradient estimators of E_q[f(z)]: same mean, different variance")
    return ax


def plot_divergence_fits(target, fits, *, labels=None, ax=None, title=None):
    """The target mixture density and each fitted Gaussian (``pgen.teach.fit_gaussian``),
    labelled by ``labels`` (default: the divergence and the fitted parameters)."""
    import torch

    ax = _axes(ax)
    _, m, s = target.tensors()
    x = torch.linspace(float(m.min() - 4 * s.max()), float(m.max() + 4 * s.max()), 800, dtype=torch.float64)
    ax.fill_between(x.numpy(), target.log_prob(x).exp().numpy(), color="0.85", label="target p (mixture)")
    for i, fit in enumerate(fits):
        q = torch.distributions.Normal(fit.mu, fit.sigma).log_prob(x).exp()
        label = labels[i] if labels is not None else f"{fit.name}: mu={fit.mu:.2f}, sigma={fit.sigma:.2f}"
        ax.plot(x.numpy(), q.numpy(), color=f"C{i}", label=label)
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    ax.set_title(title or "one Gaussian fitted to a mixture: mode seeking vs mass covering")
    return ax
