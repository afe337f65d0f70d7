"""The diffusion family: Gaussian diffusion models written as hierarchical VAEs
(``diffusion``; :class:`~pgen.models.protocols.BoundedModel`).

Trained with closed-form KLs (``meanfield``, the notes' decomposition) on dequantized
grey levels by default. Their pair has auxiliary sites, whose weights are not importance
weights, so a run is evaluated by its bound term by term (``elbo_terms``) rather than by
an importance-sampled likelihood. Drawn as samples, the forward and reverse processes,
the bound's terms per timestep, DDPM against DDIM, in-painting and, for a
class-conditional model, classifier-free guidance.
"""

from __future__ import annotations

import time

import torch
from tqdm.auto import tqdm

from .. import plot
from ..models import protocols
from .base import Evaluation, Family, RunContext, cycled_labels, mean_and_se, register
from .options import Option

__all__ = ["DiffusionFamily"]


@register
class DiffusionFamily(Family):
    name = "diffusion"
    requires = (protocols.BoundedModel,)
    objective = "meanfield"  # closed-form KLs: the notes' decomposition
    objectives = ("meanfield", "elbo")
    image_data = "dequantize"  # a density on dequantized grey levels
    streams_data = True
    uses_labels = True  # the labels reach the model; only num_classes > 0 uses them
    sample_options = (
        Option("sampler", "diffusion: ddpm (all T steps) or ddim.", "ddpm", str, choices=("ddpm", "ddim")),
        Option(
            "steps", "diffusion with --sampler ddim: the number of denoising steps (default 50).", None, int
        ),
    )

    def check_objective(self, model_name, objective):
        if objective == "simple":
            raise ValueError(
                "'simple' is a value of diffusion's --loss (the model's training loss), not an engine "
                "objective: use --loss simple"
            )
        return super().check_objective(model_name, objective)

    def train_summary(self, model, history):
        what = "train objective (minus the simple loss)" if model.loss == "simple" else "train ELBO"
        return f"{what} {history['train_elbo'][-1]:.2f} nats/example"

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, run: RunContext, *, split, seed, batch_size, num_samples, progress, **options):
        """The ELBO from all T terms (one draw each), its terms, and for dequantized
        images the bits/dim bound."""
        m = run.model
        x, y = run.model_view(split)
        start = time.perf_counter()
        parts = {"reconstruction": [], "prior": [], "denoising": [], "elbo": []}
        for i in tqdm(range(0, len(x), batch_size), disable=not progress, desc="ELBO terms", unit="batch"):
            yb = None if y is None or not m.num_classes else y[i : i + batch_size]
            terms = m.elbo_terms(x[i : i + batch_size], yb, seed=seed + i)
            for k in parts:
                parts[k].append(terms[k])
        e_mean, e_se = mean_and_se(torch.cat(parts["elbo"]))
        denoising = torch.cat(parts["denoising"], dim=1)
        dequantized = run.cfg["data"]["binarize"] == "dequantize"
        metrics = {
            **run.header(split, x),
            "conditional": bool(m.num_classes),
            "elbo": e_mean,
            "elbo_se": e_se,
            "reconstruction": torch.cat(parts["reconstruction"]).mean().item(),
            "prior_matching": torch.cat(parts["prior"]).mean().item(),
            "denoising": denoising.sum(0).mean().item(),
            "denoising_per_t": denoising.mean(1).tolist(),
            "log_likelihood": None,
            "nll_bound": -e_mean,
            "bits_per_dim": run.bits_per_dim(-e_mean, int(x[0].numel())) if dequantized else None,
            "dequantized_levels": run.meta.levels if dequantized else None,
            "seed": seed,
            "seconds": time.perf_counter() - start,
        }
        return Evaluation(metrics)

    def summary(self, m: dict) -> list[str]:
        bound = "" if m["bits_per_dim"] is None else f" <= {m['bits_per_dim']:.4f} bits/dim"
        return [
            f"{m['split']} ELBO {m['elbo']:.2f} +- {m['elbo_se']:.2f} nats{bound} ({m['n']} examples): "
            f"reconstruction {m['reconstruction']:.2f}, prior matching {m['prior_matching']:.2f}, "
            f"denoising {m['denoising']:.2f} over {len(m['denoising_per_t'])} timesteps"
        ]

    # ------------------------------------------------------------------ samples and figures

    def quality_draws(self, run: RunContext, *, n: int, seed: int):
        m = run.model
        labels = cycled_labels(n, m.num_classes)
        return m.sample(n, seed=seed, y=labels).reshape(n, -1), labels

    def sample(
        self,
        run: RunContext,
        *,
        n: int,
        seed: int,
        sampler: str = "ddpm",
        steps: int | None = None,
        **options,
    ):
        draws = run.model.sample(n, seed=seed, sampler=sampler, steps=steps)
        return draws, run.draws_figure(draws, f"{n} samples ({sampler})")

    def figures(self, run: RunContext):
        m, x = run.model, run.split("test").x
        steps = min(50, m.timesteps)
        n = 64 if run.is_image else 1000  # points are cheap and show the density
        labels = cycled_labels(n, m.num_classes)
        draws, path = m.sample(n, sampler="ddim", steps=steps, seed=0, y=labels, return_path=True)
        terms = m.elbo_terms(x[:50], seed=0)
        yield (
            "terms.png",
            plot.plot_diffusion_terms(
                terms["denoising"].mean(1),
                prior=float(terms["prior"].mean()),
                reconstruction=float(terms["reconstruction"].mean()),
            ),
        )
        if not run.is_image:
            yield (
                "samples.png",
                plot.plot_points(x, draws, title=f"DDIM ({steps} steps) samples over the test data"),
            )
            return
        shape = run.meta.image_shape
        yield (
            "samples.png",
            plot.plot_images(draws.clamp(0, 1), image_shape=shape, title=f"samples, DDIM {steps} steps"),
        )
        ts = torch.linspace(0, m.timesteps, 9).round().long().tolist()
        picks = torch.linspace(0, len(path) - 1, 9).round().long().tolist()
        strips = [
            (
                "forward.png",
                m.forward_states(x[:6], ts),
                "test digit",
                "forward process q(x_t | x_0) at t = " + ", ".join(map(str, ts)),
            ),
            (
                "reverse.png",
                [m.to_data_space(path[i][:6]) for i in picks],
                "sample",
                f"reverse process (DDIM, {steps} steps)",
            ),
        ]
        for name, states, ylabel, title in strips:
            strip = torch.stack(states, 1).clamp(0, 1)
            yield (
                name,
                plot.plot_conditional_grid(
                    strip, image_shape=shape, row_labels=list(range(6)), ylabel=ylabel, title=title
                ),
            )
        yield from _sampler_figures(m, x, shape)


def _sampler_figures(m, x, shape):
    """DDPM against DDIM at several step counts (the same x_T for every row), in-painting
    of the bottom half of test digits, and for a class-conditional model samples per class
    without and with classifier-free guidance."""
    cols = 10
    labels = cycled_labels(cols, m.num_classes)
    x_t = torch.randn(cols, m.data_dim, generator=torch.Generator().manual_seed(1), dtype=m.beta.dtype)
    rows, names = [m.sample(cols, sampler="ddpm", y=labels, x_t=x_t, seed=1)], [f"DDPM {m.timesteps}"]
    for steps in sorted({s for s in (10, 20, 50, 200) if s <= m.timesteps}):
        rows.append(m.sample(cols, sampler="ddim", steps=steps, y=labels, x_t=x_t, seed=1))
        names.append(f"DDIM {steps}")
    yield (
        "samplers.png",
        plot.plot_conditional_grid(
            torch.stack(rows).clamp(0, 1),
            image_shape=shape,
            row_labels=names,
            ylabel="sampler, steps",
            title="one x_T per column; DDIM is deterministic (eta = 0)",
        ),
    )
    truth = x[:8]
    rows = m.image_shape[-2]
    mask = torch.zeros(m.image_shape, dtype=torch.bool)
    mask[..., : rows // 2, :] = True  # the top half observed, in every channel
    mask = mask.reshape(-1)
    fills = [m.sample(8, sampler="ddpm", known=truth, mask=mask, seed=k).clamp(0, 1) for k in range(4)]
    yield (
        "inpainting.png",
        plot.plot_inpainting(
            truth, mask, torch.stack(fills, 1), image_shape=shape, title="in-painting the bottom half (DDPM)"
        ),
    )
    if m.num_classes:
        yield "guidance.png", _guidance_figure(m, shape)


def _guidance_figure(m, shape):
    import matplotlib.pyplot as plt

    weights = (0.0, 1.0, 4.0)
    fig, axes = plt.subplots(1, len(weights), figsize=(3.2 * len(weights), 4.2))
    classes = torch.arange(m.num_classes).repeat_interleave(6)
    for ax, w in zip(axes, weights, strict=True):
        draws = m.sample(
            len(classes), sampler="ddim", steps=min(50, m.timesteps), y=classes, guidance=w, seed=2
        )
        plot.plot_conditional_grid(
            draws.reshape(m.num_classes, 6, -1).clamp(0, 1),
            ax=ax,
            image_shape=shape,
            title=f"guidance w = {w:g}",
        )
    fig.suptitle("classifier-free guidance: (1 + w) eps(x_t, y) - w eps(x_t)")
    fig.tight_layout()
    return fig
