"""The semi-supervised family: models of p(x) whose latent state includes a class,
observed for a few training examples (``ssvae``;
:class:`~pgen.models.protocols.SemiSupervisedModel`).

Trained with the enumerated ELBO (``TraceEnum_ELBO`` sums the missing labels out);
evaluated as a density (test labels hidden) and by the accuracy of its classifier
q(y|x); drawn as samples of each class.
"""

from __future__ import annotations

import torch

from .. import plot
from ..models import protocols
from .base import Evaluation, Family, RunContext, class_draws, register
from .likelihood import importance_metrics, importance_summary

__all__ = ["SemiSupervisedFamily"]


def _rows(m, n: int, seed: int):
    draws = torch.stack([m.sample(n, y=c, seed=seed + c) for c in range(m.num_classes)])
    return draws, plot.plot_conditional_grid(draws, title="samples of each class y (means of p(x|y,z))")


@register
class SemiSupervisedFamily(Family):
    name = "semisupervised"
    requires = (protocols.SemiSupervisedModel,)
    objective = "enum"  # the guide's y is enumerated: TraceEnum_ELBO sums it out
    objectives = ("enum",)
    uses_labels = True

    def quality_draws(self, run: RunContext, *, n: int, seed: int):
        return class_draws(lambda k: _rows(run.model, k, seed)[0], n, run.model.num_classes)

    def prepare(self, model, x, y, *, train: bool):
        return model.prepare_data(x, y, train=train)

    def evaluate(self, run: RunContext, **settings):
        split = settings["split"]
        x, hidden = run.model_view(split)  # evaluated unlabelled: a bound on log p(x)
        metrics = importance_metrics(run, x, {"y": hidden}, **settings)
        labels = run.split(split).y
        metrics["accuracy"] = float((run.model.classify(x) == labels).float().mean())
        return Evaluation(metrics)

    def summary(self, metrics: dict) -> list[str]:
        return [
            *importance_summary(metrics),
            f"{metrics['split']} accuracy of the classifier q(y|x): {metrics['accuracy']:.4f}",
        ]

    def figures(self, run: RunContext):
        if run.is_image:
            yield "conditional_samples.png", _rows(run.model, 10, 0)[1]

    def sample(self, run: RunContext, *, n: int, seed: int, **options):
        if not run.is_image:
            raise ValueError(f"pgen sample draws figures of image data; {run.cfg['data']['name']} is not")
        return _rows(run.model, n, seed)
