"""The score family: noise-conditional score models (``score``;
:class:`~pgen.models.protocols.ScoreBasedModel`), trained by exact, sliced or denoising
score matching (the model's ``matching`` argument; the objective is a ``pyro.factor`` of
the model, so the engine's objective is the plain ELBO of an empty guide) and sampled by
annealed Langevin dynamics.

A score model has no likelihood: a run is evaluated by its test score-matching loss and
by how far its samples fall from the test data, against training points.
"""

from __future__ import annotations

import time

import torch

from .. import plot
from ..eval import nearest_neighbour_distance
from ..inference.mcmc import sample as mcmc_sample
from ..models import protocols
from ..models.score import MATCHING
from .base import Evaluation, Family, RunContext, mean_and_se, register
from .energy import QUIET, snapshots
from .options import Option

__all__ = ["ScoreFamily"]


@register
class ScoreFamily(Family):
    name = "score"
    requires = (protocols.ScoreBasedModel,)
    objectives = ("elbo",)
    train_quantity = "minus the score-matching loss"
    sample_options = (
        Option("steps", "score: annealed Langevin steps per noise level (default 100).", None, int),
    )

    def check_objective(self, model_name, objective):
        if objective is not None and objective != "elbo":
            hint = f" ('{objective}' is a --matching value)" if objective in MATCHING else ""
            raise ValueError(
                f"--objective for {model_name} is one of ['elbo'] (the engine's objective; the model's "
                f"score-matching objective is --matching {'|'.join(MATCHING)}){hint}; got {objective!r}"
            )
        return "elbo"

    def train_summary(self, model, history):
        value = history["train_elbo"][-1]
        return f"train objective (minus the sigma^2-weighted score-matching loss, per example) {value:.4g}"

    def evaluate(self, run: RunContext, *, split, seed, batch_size, num_samples, progress, **options):
        m = run.model
        x, _ = run.model_view(split)
        start = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            loss = torch.cat([m.loss(chunk).detach() for chunk in x.split(1000)])
        draws = m.sample(min(len(x), 1000), seed=seed)
        mean, se = mean_and_se(loss)
        metrics = {
            **run.header(split, x),
            "elbo": None,
            "log_likelihood": None,
            "score_matching": mean,
            "score_matching_se": se,
            "matching": m.matching,
            "sample_nearest_distance": nearest_neighbour_distance(draws, x),
            "reference_nearest_distance": nearest_neighbour_distance(run.split("train").x[: len(draws)], x),
            "seed": seed,
            "seconds": time.perf_counter() - start,
        }
        return Evaluation(metrics)

    def summary(self, m: dict) -> list[str]:
        return [
            f"{m['split']} {m['matching']} score-matching loss {m['score_matching']:.4f} +- "
            f"{m['score_matching_se']:.4f}; samples' mean distance to the nearest {m['split']} point "
            f"{m['sample_nearest_distance']:.4f} (training points: {m['reference_nearest_distance']:.4f})"
        ]

    def sample(self, run: RunContext, *, n: int, seed: int, steps: int | None = None, **options):
        m = run.model
        draws = m.sample(n, seed=seed, **({} if steps is None else {m.chain_length: steps}))
        return draws, run.draws_figure(draws, f"{n} samples (annealed Langevin)")

    def figures(self, run: RunContext):
        m, x = run.model, run.split("test").x
        if run.is_image:
            shape = run.meta.image_shape
            yield "samples.png", plot.plot_images(m.sample(64, seed=0).clamp(0, 1), image_shape=shape)
            yield "chain.png", _annealing(m, 6, image_shape=shape)
            return
        if x.shape[1] != 2:
            return
        yield "samples.png", plot.plot_points(x, m.sample(1000, seed=0), title="samples over the test data")
        mid = m.sigmas[len(m.sigmas) // 2]
        field = plot.plot_score_field(
            lambda p: m.score(p, mid), data=x, title=f"learned score at sigma = {mid:.3g}"
        )
        yield "score_field.png", field
        yield "chain.png", _annealing(m, 500, data=x)


def _annealing(m, chains: int, *, data=None, image_shape=None):
    """Annealed Langevin chains at the end of four noise levels."""
    kernel = m.sampler(chains)
    total = len(m.sigmas) * kernel.steps_per_level
    run = mcmc_sample(lambda: None, kernel=kernel, draws=total, **QUIET)
    levels = sorted({0, len(m.sigmas) // 4, len(m.sigmas) // 2, len(m.sigmas) - 1})
    steps = [(i + 1) * kernel.steps_per_level for i in levels]
    snaps = [
        (f"sigma {m.sigmas[i]:.3g}", states.clamp(0, 1) if image_shape is not None else states)
        for i, (_, states) in zip(levels, snapshots(run, "x", steps), strict=True)
    ]
    title = "annealed Langevin: chains at the end of noise levels"
    return plot.plot_chain_snapshots(snaps, data=data, image_shape=image_shape, title=title)
