"""The figures of ``docs/derivations.md``, one function per topic, as ``pgen teach TOPIC``
draws them. Each writes PNGs into ``out``, prints what it checked, and returns the
numbers.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ..checks import check_choice

__all__ = ["TOPICS", "make_figure"]


def _ppca_setup(seed: int):
    from ..models import PPCA

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(300, 5, generator=g) @ torch.randn(5, 5, generator=g) * 0.5
    torch.manual_seed(seed)
    return PPCA(5, 2), x


def figure_elbo(out: Path, seed: int = 0, quick: bool = False) -> dict:
    """log p(x) = ELBO + KL(q || p(z|x)) on probabilistic PCA, over training."""
    from .. import plot
    from .elbo import track_elbo_terms

    model, x = _ppca_setup(seed)
    h = track_elbo_terms(
        model, x, rounds=3 if quick else 12, steps=30 if quick else 60, lr=0.02, num_samples=200, exact=True
    )
    plot.save(
        plot.plot_elbo_terms(h, title="probabilistic PCA: the ELBO and its terms"), out / "elbo_terms.png"
    )
    worst = max(
        abs(e + k - v) for e, k, v in zip(h["elbo"], h["kl_posterior"], h["log_evidence"], strict=True)
    )
    print(f"log p(x) - (ELBO + KL(q||p(z|x))): at most {worst:.4f} nats over training (Monte Carlo error)")
    return h


def figure_iwae(out: Path, seed: int = 0, quick: bool = False) -> dict:
    """IWAE bounds against K, on probabilistic PCA with a fitted (imperfect) guide."""
    from .. import plot
    from ..inference import fit
    from .elbo import iwae_curve

    model, x = _ppca_setup(seed)
    fit(model.model, model.guide, x, steps=100 if quick else 400, lr=0.02, seed=seed, progress=False)
    ks = (1, 2, 5, 10, 50) if quick else (1, 2, 5, 10, 50, 100, 500, 1000)
    curve = iwae_curve(model.model, model.guide, x[:100], ks=ks, repeats=10 if quick else 20, exact=model)
    plot.save(plot.plot_iwae_curve(curve), out / "iwae.png")
    print(
        f"L_1 (ELBO) {curve.bounds[0]:.4f}, L_{curve.ks[-1]} {curve.bounds[-1]:.4f}, "
        f"log p(x) {curve.log_evidence:.4f} nats"
    )
    return {"ks": curve.ks, "bounds": curve.bounds, "log_evidence": curve.log_evidence}


def figure_meanfield(out: Path, seed: int = 0, quick: bool = False) -> dict:
    """CAVI on a 12-spin Ising model against log Z by enumeration."""
    from .. import plot
    from .meanfield import mean_field_ising, random_ising

    w, b = random_ising(12, coupling=0.4, seed=seed)
    run = mean_field_ising(w, b, sweeps=3 if quick else 6, seed=seed)
    plot.save(plot.plot_mean_field(run), out / "mean_field.png")
    print(
        f"mean-field ELBO {run.elbos[-1]:.4f} <= log Z {run.log_z:.4f}; largest error of a "
        f"mean: {float((run.means - run.exact_means).abs().max()):.3f}"
    )
    return {"elbos": run.elbos, "log_z": run.log_z}


def figure_score(out: Path, seed: int = 0, quick: bool = False) -> dict:
    """Explicit vs integration-by-parts score matching on a 2-D Gaussian, along a path
    of linear-plus-sine score models."""
    import numpy as np

    from .. import plot
    from .score import score_matching_objectives

    mean = torch.tensor([1.0, -0.5], dtype=torch.float64)
    cov = torch.tensor([[1.0, 0.6], [0.6, 2.0]], dtype=torch.float64)
    prec = torch.linalg.inv(cov)
    g = torch.Generator().manual_seed(seed)
    n = 2000 if quick else 20000
    x = mean + torch.randn(n, 2, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    thetas = np.linspace(0.0, 2.0, 9)
    explicit, implicit = [], []
    for theta in thetas:

        def model_score(z, theta=float(theta)):
            return -(z - theta * mean) @ (theta * prec) + 0.3 * torch.sin(z)

        obj = score_matching_objectives(model_score, x, lambda z: -(z - mean) @ prec)
        explicit.append(float(obj.explicit.mean()))
        implicit.append(float(obj.implicit.mean()))
    constant = 0.5 * float(torch.trace(prec))
    ax = plot.plot_score_matching(
        thetas,
        explicit,
        implicit,
        constant=constant,
        xlabel="theta (s = -theta P (x - theta mu) + 0.3 sin x)",
    )
    plot.save(ax, out / "score_matching.png")
    diffs = np.asarray(explicit) - np.asarray(implicit)
    print(
        f"explicit - implicit over {len(thetas)} thetas: {diffs.min():.4f} .. {diffs.max():.4f}; "
        f"C = {constant:.4f}"
    )
    return {"thetas": thetas.tolist(), "explicit": explicit, "implicit": implicit, "constant": constant}


def figure_gradients(out: Path, seed: int = 0, quick: bool = False) -> dict:
    """Variance of reparameterization and score-function gradients against S, for
    f(z) = ||z - a||^2 under q = N(mu, diag sigma^2) (exact gradient known)."""
    from .. import plot
    from .gradients import gradient_variance_curve

    a = torch.tensor([2.0, -1.0], dtype=torch.float64)
    mu = torch.tensor([0.5, 0.0], dtype=torch.float64)
    sigma = torch.tensor([1.0, 0.5], dtype=torch.float64)
    exact = torch.cat([2 * (mu - a), 2 * sigma])  # d/dmu and d/dsigma of ||mu - a||^2 + ||sigma||^2
    study = gradient_variance_curve(
        lambda z: ((z - a) ** 2).sum(-1), mu, sigma, repeats=500 if quick else 4000, exact=exact, seed=seed
    )
    plot.save(plot.plot_gradient_variance(study), out / "gradient_variance.png")
    at = {k: v[-1] for k, v in study.variance.items()}
    print(
        f"variance at S={study.sample_sizes[-1]}: "
        + ", ".join(f"{k} {v:.3g}" for k, v in at.items())
        + f"; largest bias {max(max(b) for b in study.bias.values()):.3f} (Monte Carlo error)"
    )
    return {"sample_sizes": study.sample_sizes, "variance": study.variance}


def figure_divergences(out: Path, seed: int = 0, quick: bool = False) -> dict:
    """One Gaussian fitted to a two-mode mixture by reverse KL, forward KL, JS and MMD.
    JS has two local minima; both are drawn (from starts on a mode and in the middle)."""
    from .. import plot
    from .divergences import GaussianMixture1D, fit_gaussian

    target = GaussianMixture1D()
    fits = [
        fit_gaussian("reverse_kl", target),
        fit_gaussian("forward_kl", target),
        fit_gaussian("mmd", target),
    ]
    js_mode = fit_gaussian("js", target, init=(1.0, 0.5))
    js_cover = fit_gaussian("js", target, init=(0.0, 2.0))
    fits += [js_cover, js_mode]
    labels = [f"{f.name}: mu={f.mu:.2f}, sigma={f.sigma:.2f} (value {f.value:.3f})" for f in fits]
    plot.save(plot.plot_divergence_fits(target, fits, labels=labels), out / "divergences.png")
    mean, var = target.moments()
    for f in fits:
        print(f"{f.name:11s} mu {f.mu:+.3f} sigma {f.sigma:.3f} value {f.value:.4f}")
    print(f"target mean {mean:.3f}, sd {var**0.5:.3f} (the forward-KL optimum); log 2 = {math.log(2):.4f}")
    return {f.name: (f.mu, f.sigma, f.value) for f in fits}


def figure_gaussians(out: Path, seed: int = 0, quick: bool = False) -> dict:
    """Mean-field and full-rank Gaussians fitted by the ELBO to a 0.9-correlated
    Gaussian, against their closed-form optima."""
    from .. import plot
    from .gaussians import gaussian_approximations

    g = gaussian_approximations([[1.0, 0.9], [0.9, 1.0]], steps=400 if quick else 1500, seed=seed)
    plot.save(plot.plot_gaussian_approximations(g), out / "gaussians.png")
    mf, exact = g.fitted["meanfield"][1].diagonal(), g.closed_form["meanfield"][1].diagonal()
    print(
        f"mean-field variances {mf[0]:.3f}, {mf[1]:.3f} (closed form 1/Lambda_ii = {exact[0]:.3f}; "
        f"the target's marginal variances are 1); KL(q||p) {g.kl['meanfield']:.4f} "
        f"(closed form {g.kl_closed_form['meanfield']:.4f} = -log(1 - 0.81)/2)"
    )
    fr = g.fitted["fullrank"][1]
    print(
        f"full-rank covariance {fr[0, 0]:.3f} {fr[0, 1]:.3f} {fr[1, 1]:.3f}; KL(q||p) {g.kl['fullrank']:.4f}"
    )
    return {"kl": g.kl, "kl_closed_form": g.kl_closed_form}


def figure_rate(out: Path, seed: int = 0, quick: bool = False) -> dict:
    """A beta-VAE sweep on the 8x8 digits: rate against distortion on the test digits."""
    from .. import data, plot
    from .rate import rate_distortion_sweep

    x, _ = data.load("digits", "train", binarize="threshold")
    x_test, _ = data.load("digits", "test", binarize="threshold")
    sweep = rate_distortion_sweep(
        x, x_test, betas=(0.5, 1.0, 2.0, 4.0, 8.0), epochs=10 if quick else 100, seed=seed
    )
    plot.save(
        plot.plot_rate_distortion_sweep(sweep, title="beta-VAE on 8x8 digits (test)"),
        out / "rate_distortion.png",
    )
    print("beta   rate R   distortion D   ELBO -(D+R)   D + beta R   engine's loss (+- se)")
    for i, beta in enumerate(sweep.betas):
        print(
            f"{beta:4g} {sweep.rates[i]:8.3f} {sweep.distortions[i]:12.3f} {sweep.elbos[i]:13.3f} "
            f"{sweep.distortions[i] + beta * sweep.rates[i]:12.3f} {sweep.engine_loss[i]:10.3f} "
            f"+- {sweep.engine_se[i]:.3f}"
        )
    print(f"model with the lowest D + beta R, per beta: {sweep.best_model_for_each_beta()}")
    return {"betas": sweep.betas, "rates": sweep.rates, "distortions": sweep.distortions}


def figure_collapse(out: Path, seed: int = 0, quick: bool = False) -> dict:
    """Posterior collapse: factorized vs MADE decoder on a binary Markov chain (exact
    log p(x)) and on the 8x8 digits."""
    import matplotlib.pyplot as plt

    from .. import data, plot
    from .collapse import BinaryMarkovChain, posterior_collapse

    chain = BinaryMarkovChain(dim=20, stay=0.9)
    x, x_test = chain.sample(2000 if quick else 10000, seed), chain.sample(1000, seed + 1)
    rounds = 2 if quick else 8
    studies = {"Markov chain": posterior_collapse(x, x_test, rounds=rounds, exact=chain, seed=seed)}
    x, _ = data.load("digits", "train", binarize="threshold")
    x_test, _ = data.load("digits", "test", binarize="threshold")
    studies["8x8 digits"] = posterior_collapse(
        x,
        x_test,
        hidden=(128,),
        made_hidden=(512,),
        rounds=rounds,
        epochs_per_round=2 if quick else 15,
        lr=2e-3,
        seed=seed,
    )
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for row, (name, study) in zip(axes, studies.items(), strict=True):
        plot.plot_posterior_collapse(study, axes=row, title=name)
    plot.save(fig, out / "posterior_collapse.png")
    result = {}
    for name, study in studies.items():
        kl = {k: study.final(k, "kl") for k in study.curves}
        elbo = {k: study.final(k, "elbo") for k in study.curves}
        exact = "" if study.log_likelihood is None else f"; exact log p(x) {study.log_likelihood:.3f}"
        print(
            f"{name}: KL factorized {kl['factorized']:.3f}, MADE {kl['autoregressive']:.3f} nats; "
            f"ELBO factorized {elbo['factorized']:.3f}, MADE {elbo['autoregressive']:.3f}{exact}"
        )
        result[name] = {"kl": kl, "elbo": elbo, "log_likelihood": study.log_likelihood}
    return result


def figure_flows(out: Path, seed: int = 0, quick: bool = False) -> dict:
    """A planar flow fitted to two moons, drawn after each layer; the change-of-variables
    identity checked on its layers."""
    import matplotlib.pyplot as plt

    from .. import data, fit, plot
    from ..models import PlanarModel
    from .flows import change_of_variables, planar_steps

    x, _ = data.load("moons", n=1000, seed=seed)
    torch.manual_seed(seed)
    m = PlanarModel(2, transforms=8)
    fit(m.model, m.guide, x, steps=150 if quick else 1500, batch_size=250, lr=1e-2, seed=seed, progress=False)
    stack = m.flow
    base = torch.distributions.Independent(
        torch.distributions.Normal(stack.loc.detach(), stack.log_scale.detach().exp()), 1
    )
    steps = planar_steps(stack.layers, base, extent=4.0, size=121 if quick else 241)
    check = change_of_variables(
        [layer.double() for layer in stack.layers], extent=12.0, size=401 if quick else 1201
    )
    m.float()
    shown = [0, 1, 2, 4, 8]
    fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown), 3.4))
    extent = [float(steps.axis[0]), float(steps.axis[-1])] * 2
    for ax, k in zip(axes, shown, strict=True):
        ax.imshow(steps.densities[k].T, origin="lower", extent=extent, cmap="viridis", aspect="equal")
        ax.set_title(f"after {k} planar layer{'s' if k != 1 else ''}\nmass on grid {steps.masses[k]:.3f}")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[-1].scatter(x[:300, 0], x[:300, 1], s=2, c="white", alpha=0.5)
    fig.suptitle("a planar flow on two moons: the density after each layer (data in white)")
    plot.save(fig, out / "planar_steps.png")
    with torch.no_grad():
        ll = float(m.log_prob(x).mean())
    print(
        f"planar flow, 8 layers: train log-likelihood {ll:.3f} nats; log|det J| closed form vs autograd: "
        f"largest difference {check.max_logdet_error:.2e}; density mass on a 24 x 24 grid {check.mass:.5f}"
    )
    return {"log_likelihood": ll, "max_logdet_error": check.max_logdet_error, "mass": check.mass}


def figure_autoregressive(out: Path, seed: int = 0, quick: bool = False) -> dict:
    """Sampling an autoregressive model costs D network passes; its likelihood one."""
    import matplotlib.pyplot as plt

    from .. import plot
    from ..models import PixelCNN
    from .flows import autoregressive_cost

    sides = [3, 4, 5] if quick else [4, 6, 8, 10, 12, 14]
    dims = [s * s for s in sides]
    torch.manual_seed(seed)
    cost = autoregressive_cost(lambda d: PixelCNN(d, levels=2, channels=16, layers=4), dims, n=64, seed=seed)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(cost.dims, cost.sample_seconds, "o-", label="64 draws (D passes)")
    ax.plot(cost.dims, cost.log_prob_seconds, "s-", label="log-likelihood of 64 images (1 pass)")
    ax.set_xlabel("pixels D")
    ax.set_ylabel("seconds")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("PixelCNN: sequential sampling against one-pass likelihood")
    plot.save(fig, out / "autoregressive_cost.png")
    print("D      passes per batch of draws   draw seconds   log-likelihood seconds   ratio")
    for d, k, s, l in zip(
        cost.dims, cost.sample_passes, cost.sample_seconds, cost.log_prob_seconds, strict=True
    ):
        print(f"{d:4d} {k:12d} {s:22.4f} {l:18.5f} {s / l:12.0f}")
    return {"dims": cost.dims, "passes": cost.sample_passes}


def figure_gan(out: Path, seed: int = 0, quick: bool = False) -> dict:
    """The optimal discriminator of a 1-D game, against one trained by pgen's adversarial
    objective, and simultaneous against alternating steps on min_x max_y xy."""
    import matplotlib.pyplot as plt
    import numpy as np

    from .. import plot
    from .games import bilinear_game, gaussian_mixture_logpdf, optimal_discriminator, trained_discriminator

    x = np.linspace(-6, 6, 1201)[:, None]
    cell = float(x[1, 0] - x[0, 0])
    p_args, q_args = ([[-2.0], [2.0]], [0.7, 0.7]), ([[0.5]], [1.5])
    lp, lq = gaussian_mixture_logpdf(x, *p_args), gaussian_mixture_logpdf(x, *q_args)
    opt = optimal_discriminator(lp, lq, cell)
    rng = np.random.default_rng(seed)
    real = np.concatenate([rng.normal(-2, 0.7, 5000), rng.normal(2, 0.7, 5000)])[:, None]
    fake = rng.normal(0.5, 1.5, 10000)[:, None]
    learned = trained_discriminator(real, fake, x, steps=300 if quick else 2000, seed=seed)
    game = bilinear_game(lr=0.1, steps=60 if quick else 200)
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    a.plot(x[:, 0], np.exp(lp), label="data p (two Gaussians)")
    a.plot(x[:, 0], np.exp(lq), label="generator q")
    a.plot(x[:, 0], opt.d_star, "k", label="D* = p / (p + q)")
    a.plot(x[:, 0], learned, "k--", label="D trained by pgen's critic steps")
    a.set_title(f"V(D*) = {opt.value:.4f};  2 JSD - log 4 = {2 * opt.jsd - np.log(4):.4f}")
    a.legend(fontsize=8)
    for path, style, name in (
        (game.simultaneous, "-", "simultaneous"),
        (game.alternating, "-", "alternating"),
    ):
        b.plot(path[:, 0], path[:, 1], style, lw=1, label=name)
    b.plot([0], [0], "k*", ms=10, label="equilibrium")
    b.set_xlabel("x (minimizes xy)")
    b.set_ylabel("y (maximizes xy)")
    b.set_aspect("equal")
    b.legend(fontsize=8)
    b.set_title(f"gradient steps on min_x max_y xy (lr 0.1, {len(game.simultaneous) - 1} steps)")
    plot.save(fig, out / "gan_game.png")
    weights = (np.exp(lp) + np.exp(lq)) / 2
    error = float((np.abs(learned - opt.d_star) * weights).sum() / weights.sum())
    grow = float(np.linalg.norm(game.simultaneous[-1]) / np.linalg.norm(game.simultaneous[0]))
    print(
        f"V(D*) {opt.value:.6f}, 2 JSD - log 4 {2 * opt.jsd - np.log(4):.6f}; trained D against D*: mean "
        f"|D - D*| {error:.4f} under (p + q)/2. Simultaneous steps: the distance to the equilibrium grew "
        f"{grow:.3f}x (closed form {(1 + 0.01) ** ((len(game.simultaneous) - 1) / 2):.3f}x); alternating: "
        f"largest distance {np.linalg.norm(game.alternating, axis=1).max():.3f} from "
        f"{np.linalg.norm(game.alternating[0]):.3f}"
    )
    return {"value": opt.value, "jsd": opt.jsd, "learned_error": error, "simultaneous_growth": grow}


def figure_modes(out: Path, seed: int = 0, quick: bool = False) -> dict:
    """Mode collapse on the ring of 8 Gaussians: modes covered and high-quality fraction
    over training, and the final samples, for each GAN loss."""
    import matplotlib.pyplot as plt

    from .. import plot
    from .games import mode_collapse

    study = mode_collapse(steps=100 if quick else 3000, every=50 if quick else 500, seed=seed)
    losses = list(study.modes)
    cols = 4
    rows = 1 + math.ceil(len(losses) / cols)
    fig = plt.figure(figsize=(4 * cols, 4 * rows))
    grid = fig.add_gridspec(rows, cols)
    curves = [fig.add_subplot(grid[0, :2]), fig.add_subplot(grid[0, 2:])]
    for loss in losses:
        curves[0].plot(study.steps, study.modes[loss], "o-", label=loss)
        curves[1].plot(study.steps, study.quality[loss], "o-", label=loss)
    curves[0].set(xlabel="generator steps", ylabel="modes covered (of 8)", ylim=(-0.3, 8.3))
    curves[1].set(xlabel="generator steps", ylabel="high-quality fraction (within 3 sd)", ylim=(0, 1))
    curves[0].legend(fontsize=8)
    panels = [fig.add_subplot(grid[1 + i // cols, i % cols]) for i in range(len(losses))]
    for ax, loss in zip(panels, losses, strict=True):
        pts = study.samples[loss]
        ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.4)
        ax.set(xlim=(-1.6, 1.6), ylim=(-1.6, 1.6), aspect="equal", title=f"{loss}: final samples")
    plot.save(fig, out / "mode_collapse.png")
    for loss in losses:
        print(
            f"{loss:14s} modes covered {study.modes[loss]}; high-quality fraction "
            f"{[round(q, 2) for q in study.quality[loss]]} at steps {study.steps}"
        )
    return {"modes": study.modes, "quality": study.quality}


TOPICS = {
    "gaussians": figure_gaussians,
    "divergences": figure_divergences,
    "rate": figure_rate,
    "collapse": figure_collapse,
    "gradients": figure_gradients,
    "elbo": figure_elbo,
    "iwae": figure_iwae,
    "meanfield": figure_meanfield,
    "score": figure_score,
    "flows": figure_flows,
    "autoregressive": figure_autoregressive,
    "gan": figure_gan,
    "modes": figure_modes,
}


def make_figure(topic: str, out="docs/derivations", *, seed: int = 0, quick: bool = False) -> dict:
    """Draw the figure(s) of ``topic`` (one of :data:`TOPICS`, or ``all``) into ``out``."""
    topic = check_choice("topic", topic, [*TOPICS, "all"])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if topic == "all":
        return {name: fn(out, seed, quick) for name, fn in TOPICS.items()}
    return TOPICS[topic](out, seed, quick)
