"""The latent-variable family: VAEs (``vae``, ``arvae``) and probabilistic PCA (``ppca``),
models of p(x) = ∫ p(z) p(x|z) dz with an amortized guide q(z|x)
(:class:`~pgen.models.protocols.LatentVariableModel`).

Evaluated by the ELBO and the importance-sampled log-likelihood; drawn as samples,
reconstructions, interpolations, traversals, the latent scatter and, for a 2-D latent
space, the decoder's manifold.
"""

from __future__ import annotations

from .. import plot
from ..models import protocols
from .base import Evaluation, Family, RunContext, register
from .likelihood import importance_metrics, importance_summary

__all__ = ["LatentFamily"]


@register
class LatentFamily(Family):
    name = "latent"
    requires = (protocols.LatentVariableModel,)
    streams_data = True

    def evaluate(self, run: RunContext, **settings):
        x, _ = run.model_view(settings["split"])
        return Evaluation(importance_metrics(run, x, {}, **settings))

    def summary(self, metrics: dict) -> list[str]:
        return importance_summary(metrics)

    def figures(self, run: RunContext):
        m, test = run.model, run.split("test")
        x, y = test.x, test.y
        loc, _ = m.encode(x)
        yield "latent.png", plot.plot_latent_scatter(loc, y, title="test set, posterior means")
        if not run.is_image:
            samples = m.sample(len(x), seed=0, mean=False)
            yield "samples.png", plot.plot_points(x, samples, title="samples over the test data")
            return
        shape = run.meta.image_shape
        yield (
            "samples.png",
            plot.plot_images(m.sample(64, seed=0), image_shape=shape, title="samples (means of p(x|z))"),
        )
        yield (
            "reconstructions.png",
            plot.plot_reconstructions(x[:12], m.reconstruct(x[:12]), image_shape=shape),
        )
        pairs = m.interpolate(x[0:4], x[4:8], steps=10, method="spherical")
        yield (
            "interpolation.png",
            plot.plot_interpolation(
                pairs, image_shape=shape, title="spherical interpolation between test digits"
            ),
        )
        dims = list(range(min(m.latent_dim, 10)))
        beta = m.config.get("beta", 1.0)
        yield (
            "traversal.png",
            plot.plot_conditional_grid(
                m.traverse(x[0], dims=dims),
                row_labels=[f"z{d + 1}" for d in dims],
                image_shape=shape,
                ylabel="latent varied over [-3, 3]",
                title=f"latent traversals from a test digit (beta={beta:g})",
            ),
        )
        if m.latent_dim == 2:
            yield (
                "manifold.png",
                plot.plot_latent_manifold(
                    m.manifold(21, 3.0), extent=3.0, image_shape=shape, title="decoder over the latent plane"
                ),
            )

    def sample(self, run: RunContext, *, n: int, seed: int, **options):
        if run.is_image:
            draws = run.model.sample(n, seed=seed)
            return draws, run.draws_figure(draws, f"{n} samples (means of p(x|z))")
        draws = run.model.sample(n, seed=seed, mean=False)  # points: draws of x, not means
        return draws, run.draws_figure(draws, f"{n} samples over the test data")
