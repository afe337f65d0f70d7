"""The WAE family: Wasserstein autoencoders with an MMD penalty (``wae``;
:mod:`pgen.models.wae`).

Trained by the engine's ELBO objective, which for this model without latent sites is
minus the WAE objective (its reconstruction cost and MMD penalty are factors). Evaluated
by the test reconstruction cost, the MMD between the encoded test data and the prior, and
the quality of samples (:func:`pgen.families.adversarial.sample_metrics`); drawn as
samples and reconstructions.
"""

from __future__ import annotations

import torch

from .. import plot
from .adversarial import sample_metrics
from .base import Evaluation, Family, RunContext, mean_and_se, register

__all__ = ["WAEFamily"]


@register
class WAEFamily(Family):
    name = "wae"
    objectives = ("elbo",)
    image_data = "none"  # grey levels, squared-error cost
    train_quantity = "minus the WAE objective (reconstruction cost + penalty x MMD^2, per example)"

    def train_summary(self, model, history):
        return f"train WAE objective {-history['train_elbo'][-1]:.3f} per example (cost + penalty x MMD^2)"

    def evaluate(self, run: RunContext, *, split, seed, num_samples, **options):
        from ..models.wae import mmd2

        m = run.model
        x = run.split(split).x
        x = x.reshape(len(x), -1).to(m._zero.dtype)
        with torch.no_grad():
            cost = ((x - m.reconstruct(x)) ** 2).sum(-1)
            g = torch.Generator().manual_seed(seed)
            prior = torch.randn(len(x), m.latent_dim, generator=g, dtype=x.dtype)
            mmd = float(mmd2(m.encode(x), prior))
        cost_mean, cost_se = mean_and_se(cost)
        n = max(num_samples, 2)
        draws = m.sample(n, seed=seed).reshape(n, -1).cpu()
        metrics = {
            **run.header(split, x),
            "reconstruction_cost": cost_mean,
            "reconstruction_cost_se": cost_se,
            "mmd2_to_prior": mmd,
            "num_samples": n,
            "exact": False,
            "quality": sample_metrics(run, draws, x),
        }
        return Evaluation(metrics)

    def summary(self, metrics: dict) -> list[str]:
        q = metrics["quality"]
        words = ", ".join(f"{k} {v:.3f}" for k, v in q.items() if isinstance(v, float))
        return [
            f"{metrics['split']} reconstruction cost {metrics['reconstruction_cost']:.3f} +- "
            f"{metrics['reconstruction_cost_se']:.3f}, MMD^2 of the codes to the prior "
            f"{metrics['mmd2_to_prior']:.4f}",
            f"{metrics['num_samples']} samples: {words}",
        ]

    def figures(self, run: RunContext):
        m, x = run.model, run.split("test").x
        samples = m.sample(64 if run.is_image else 1000, seed=0)
        yield "samples.png", run.draws_figure(samples, "samples")
        if run.is_image:
            shape = run.meta.image_shape
            yield (
                "reconstructions.png",
                plot.plot_reconstructions(x[:12], m.reconstruct(x[:12]), image_shape=shape),
            )

    def sample(self, run: RunContext, *, n: int, seed: int, **options):
        draws = run.model.sample(n, seed=seed)
        return draws, run.draws_figure(draws, f"{n} samples")
