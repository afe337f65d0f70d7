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
    "plot_gaussian_approximations",
    "plot_rate_distortion_sweep",
    "plot_posterior_collapse",
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


def _ellipse(mean, cov, radius: float = 2.0, n: int = 200):
    """Points of the ``radius``-sigma contour of a 2-D Gaussian."""
    t = np.linspace(0, 2 * np.pi, n)
    chol = np.linalg.cholesky(np.asarray(cov, dtype=float))
    return np.asarray(mean, dtype=float)[:, None] + radius * chol @ np.stack([np.cos(t), np.sin(t)])


def plot_gaussian_approximations(result, *, dims=(0, 1), ax=None, title=None):
    """2-sigma contours of the target and of each fitted and closed-form Gaussian
    approximation (``pgen.teach.gaussian_approximations``), in two coordinates."""
    ax = _axes(ax)
    i = list(dims)

    def sub(mean, cov):
        return np.asarray(mean)[i], np.asarray(cov)[np.ix_(i, i)]

    def draw(mean, cov, style, label, **kw):
        e = _ellipse(*sub(mean, cov))
        ax.plot(e[0], e[1], style, label=label, **kw)

    draw(result.mean, result.cov, "k-", "target p", lw=3, alpha=0.35)
    draw(*result.fitted["fullrank"], "C0-", f"full rank, fitted (KL(q||p) {result.kl['fullrank']:.3f})")
    draw(*result.fitted["meanfield"], "C1-", f"mean field, fitted (KL(q||p) {result.kl['meanfield']:.3f})")
    draw(
        *result.closed_form["meanfield"],
        "C1--",
        f"mean field, closed form 1/Lambda_ii (KL {result.kl_closed_form['meanfield']:.3f})",
    )
    draw(
        *result.closed_form["meanfield_forward_kl"],
        "C2:",
        "mean field, forward-KL optimum Sigma_ii "
        f"(KL(q||p) {result.kl_closed_form['meanfield_forward_kl']:.3f})",
    )
    ax.set_aspect("equal")
    ax.set_xlabel(f"x_{dims[0] + 1}")
    ax.set_ylabel(f"x_{dims[1] + 1}")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    if ax.figure.get_figheight() < 6.5:
        ax.figure.set_size_inches(6, 7)
    ax.set_title(title or "best Gaussian approximations (2-sigma contours)")
    return ax


def plot_rate_distortion_sweep(sweep, *, ax=None, title=None):
    """The beta-VAE sweep (``pgen.teach.rate_distortion_sweep``) in the rate-distortion
    plane, with the line D + beta R = const through each model in its colour: each
    model's beta line should leave every other model above it."""
    from .latent import plot_rate_distortion

    ax = plot_rate_distortion(
        sweep.rates, sweep.distortions, sweep.betas, ax=ax, title=title or "beta-VAE: rate against distortion"
    )
    r = np.asarray(sweep.rates)
    span = np.linspace(0, r.max() * 1.1 + 1e-9, 50)
    for i, (ri, di, beta) in enumerate(zip(sweep.rates, sweep.distortions, sweep.betas, strict=True)):
        ax.plot(
            span, di - beta * (span - ri), color=f"C{i + 1}", lw=1, alpha=0.8, label=f"D + {beta:g} R = const"
        )
    ax.legend(fontsize=7, loc="upper right")
    return ax


def plot_posterior_collapse(study, *, axes=None, title=None):
    """KL(q(z|x) || p(z)) and the ELBO on held-out data over training, for the
    factorized and the autoregressive decoder (``pgen.teach.posterior_collapse``), with
    the exact log p(x) where known. Draws into two Axes (new ones if ``axes`` is None)
    and returns them."""
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax_kl, ax_elbo = axes
    labels = {
        "factorized": "factorized decoder prod_d p(x_d|z)",
        "autoregressive": "MADE decoder prod_d p(x_d|x_<d, z)",
    }
    for i, (name, curve) in enumerate(study.curves.items()):
        ax_kl.plot(study.epochs, curve["kl"], "o-", ms=3, color=f"C{i}", label=labels.get(name, name))
        ax_elbo.plot(
            study.epochs[1:], curve["elbo"][1:], "o-", ms=3, color=f"C{i}", label=labels.get(name, name)
        )
    ax_kl.axhline(0.0, color="grey", lw=0.6)
    ax_kl.set_xlabel("epoch")
    ax_kl.set_ylabel("KL(q(z|x) || p(z)), nats")
    ax_kl.legend(fontsize=8)
    ax_kl.set_title((title + ": " if title else "") + "the KL term (rate)")
    if study.log_likelihood is not None:
        ax_elbo.axhline(study.log_likelihood, color="C3", ls="--", label="exact log p(x)")
    ax_elbo.set_xlabel("epoch")
    ax_elbo.set_ylabel("held-out ELBO, nats per example")
    ax_elbo.legend(fontsize=8)
    ax_elbo.set_title((title + ": " if title else "") + "the ELBO")
    return axes
