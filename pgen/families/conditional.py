"""The conditional family: models of p(x|y) (``cvae``, ``cvae_baseline``;
:class:`~pgen.models.protocols.ConditionalModel`).

A run's images become the model's ``(x, y)`` by its ``prepare_data``: digit labels for
``task="class"``, hidden and observed pixels for in-painting. Evaluated by the
conditional ELBO and importance-sampled log p(x|y); drawn as samples of each class or
completions of test digits.
"""

from __future__ import annotations

import torch

from .. import plot
from ..models import protocols
from .base import Evaluation, Family, RunContext, class_draws, register
from .likelihood import importance_metrics, importance_summary

__all__ = ["ConditionalFamily"]


def _draws(m, x, n: int, seed: int):
    """``(file name, draws, figure)``: ``n`` completions of the first test images
    (in-painting) or ``n`` samples of each class (rows = classes)."""
    if m.task == "inpaint":
        k = min(8, len(x))
        draws = m.complete(x[:k], n=n, seed=seed)
        what = "completions" if m.stochastic else "prediction (deterministic)"
        title = f"{int(m.mask.sum())} of {m.data_dim} pixels observed: input, {what}, truth"
        return (
            "inpainting.png",
            draws,
            plot.plot_inpainting(x[:k], m.mask, draws, image_shape=m.image_shape, title=title),
        )
    if m.task == "class":
        draws = m.sample(n, y=torch.arange(m.num_classes), seed=seed)
        figure = plot.plot_conditional_grid(draws, title="samples of each class (means of p(x|y,z))")
        return "conditional_samples.png", draws, figure
    raise ValueError(f"pgen draws figures of the class and inpaint tasks, not of task={m.task!r}")


@register
class ConditionalFamily(Family):
    name = "conditional"
    requires = (protocols.ConditionalModel,)
    uses_labels = True
    redraws_data = False  # prepare_data splits whole images; a minibatch transform would not see them

    def prepare(self, model, x, y, *, train: bool):
        return model.prepare_data(x, y, train=train)

    def evaluate(self, run: RunContext, **settings):
        x, y = run.model_view(settings["split"])
        metrics = importance_metrics(run, x, {"y": y}, **settings)
        return Evaluation({**metrics, "conditional": True})

    def summary(self, metrics: dict) -> list[str]:
        return importance_summary(metrics, "conditional IS log-likelihood log p(x|y)")

    def figures(self, run: RunContext):
        if not run.is_image:
            return
        m, test = run.model, run.split("test")
        name, _, figure = _draws(m, test.x, 5 if m.task == "inpaint" else 10, 0)
        yield name, figure
        if m.stochastic:
            xx, yy = run.model_view("test")
            loc, _ = m.encode(xx, yy)
            yield "latent.png", plot.plot_latent_scatter(loc, test.y, title="test set, means of q(z|x,y)")

    def quality_draws(self, run: RunContext, *, n: int, seed: int):
        m = run.model
        if m.task != "class":
            raise ValueError(
                f"the sample-quality suite scores draws of the data distribution: a class-conditional "
                f"model (task='class'); this one has task={m.task!r}"
            )
        return class_draws(lambda k: m.sample(k, y=torch.arange(m.num_classes), seed=seed), n, m.num_classes)

    def sample(self, run: RunContext, *, n: int, seed: int, **options):
        if not run.is_image:
            raise ValueError(f"pgen sample draws figures of image data; {run.cfg['data']['name']} is not")
        _, draws, figure = _draws(run.model, run.split("test").x, n, seed)
        return draws, figure
