"""The flow family: models with an exact log-likelihood (``realnvp``, ``maf``, ``nsf``;
:mod:`pgen.models.flows`).

Trained by the shared engine with the ``elbo`` objective, which for a model without
latent variables is the exact log-likelihood; evaluated by that exact log-likelihood (and
bits/dim on dequantized images); drawn as sample grids, or for 2-D data as the density
over the data with samples.
"""

from __future__ import annotations

import torch

from .. import plot
from ..models import protocols
from .base import Evaluation, Family, RunContext, mean_and_se, register

__all__ = ["FlowFamily"]


@register
class FlowFamily(Family):
    name = "flow"
    requires = (protocols.ExactLikelihoodModel,)
    objectives = ("elbo",)
    image_data = "dequantize"  # a density on dequantized grey levels
    streams_data = True
    train_quantity = "log-likelihood (nats per example, exact)"

    def train_summary(self, model, history: dict) -> str:
        return f"train log-likelihood {history['train_elbo'][-1]:.2f} nats/example (exact)"

    def evaluate(self, run: RunContext, *, split, seed, batch_size, num_samples, progress, **options):
        x, _ = run.model_view(split)
        m = run.model
        with torch.no_grad():
            ll = torch.cat([m.log_prob(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
        mean, se = mean_and_se(ll)
        metrics = {
            **run.header(split, x),
            "log_likelihood": mean,
            "log_likelihood_se": se,
            "exact": True,
            "bits_per_dim": run.bits_per_dim(-mean, int(x[0].numel())),
        }
        return Evaluation(metrics)

    def summary(self, metrics: dict) -> list[str]:
        line = (
            f"{metrics['split']} log-likelihood {metrics['log_likelihood']:.2f} +- "
            f"{metrics['log_likelihood_se']:.2f} nats (exact)"
        )
        if metrics.get("bits_per_dim") is not None:
            line += f", {metrics['bits_per_dim']:.4f} bits/dim"
        return [line + f" ({metrics['n']} examples)"]

    def figures(self, run: RunContext):
        m, x = run.model, run.split("test").x
        samples = m.sample(64 if run.is_image else 1000, seed=0)
        yield "samples.png", run.draws_figure(samples, "samples")
        if not run.is_image and x.shape[1] == 2:
            yield (
                "density.png",
                plot.plot_energy_landscape(
                    lambda points: -m.log_prob(points).detach(),
                    data=x,
                    samples=samples[:300],
                    title="log p(x)",
                ),
            )

    def sample(self, run: RunContext, *, n: int, seed: int, **options):
        draws = run.model.sample(n, seed=seed)
        return draws, run.draws_figure(draws, f"{n} samples")
