"""The adversarial family: GANs (``gan``, ``wgan``, ``lsgan``; :mod:`pgen.models.gan`).

Trained by the game the model's ``adversarial(**options)`` builds (its options are the
run's ``objective_args``: ``--loss``, ``--critic-steps``, ...). A generator has no
likelihood, so a run is evaluated by its samples: on image data by the suite of
:func:`pgen.eval.features.sample_quality` (features of a classifier trained on the data
set); on 2-D toys by the Fréchet distance, nearest-neighbour distance, precision and
recall on the points themselves. Figures: samples; samples at fixed z over training
(the snapshots the game keeps in the checkpoint); for 2-D data the critic's score over
the plane with data and samples.
"""

from __future__ import annotations

import torch

from .. import plot
from ..eval.quality import frechet_distance, nearest_neighbour_distance, precision_recall
from .base import Evaluation, RunContext, cycled_labels, register
from .energy import ContrastiveFamily

__all__ = ["AdversarialFamily", "sample_metrics"]


def sample_metrics(run: RunContext, draws: torch.Tensor, x: torch.Tensor) -> dict:
    """Quality of ``draws`` against the data ``x`` of the run's split: on images the
    feature suite of :func:`pgen.eval.features.sample_quality` (training split for
    memorization), on other data the Fréchet distance, nearest-neighbour distance,
    precision and recall of the points themselves."""
    from ..eval.features import sample_quality

    if run.is_image:
        train = run.split("train")
        return sample_quality(
            draws.clamp(0, 1),
            run.cfg["data"]["name"],
            path=run.cfg["data"].get("path"),
            reference=x,
            train=train.x if train.fixed is None else train.fixed(train.x),
        )
    precision, recall = precision_recall(draws, x)
    return {
        "frechet_distance": frechet_distance(draws, x),
        "nearest_neighbour_distance": nearest_neighbour_distance(draws, x),
        "precision": precision,
        "recall": recall,
    }


@register
class AdversarialFamily(ContrastiveFamily):
    name = "adversarial"
    objective = "adversarial"
    objective_words = "an adversarial game"
    image_data = "none"  # grey levels as they are
    uses_labels = True  # a conditional generator takes them; an unconditional one ignores them
    train_quantity = "minus the critic's loss (per example; the Wasserstein estimate for wgan)"

    def train_summary(self, model, history):
        return (
            f"train: minus the critic's loss {history['train_elbo'][-1]:.3f} per example (not a likelihood)"
        )

    def _draws(self, run: RunContext, n: int, seed: int, y=None):
        m = run.model
        return m.sample(n, seed=seed, y=cycled_labels(n, m.num_classes) if y is None else y)

    def quality_draws(self, run: RunContext, *, n: int, seed: int):
        m = run.model
        labels = cycled_labels(n, m.num_classes)
        return self._draws(run, n, seed, y=labels).reshape(n, -1), labels

    def evaluate(self, run: RunContext, *, split, seed, num_samples, **options):
        x = run.split(split).x
        x = x.reshape(len(x), -1)
        n = max(num_samples, 2)
        draws = self._draws(run, n, seed).reshape(n, -1).cpu()
        metrics = {**run.header(split, x), "num_samples": n, "exact": False}
        metrics["quality"] = sample_metrics(run, draws, x)
        return Evaluation(metrics)

    def summary(self, metrics: dict) -> list[str]:
        q = metrics["quality"]
        words = ", ".join(f"{k} {v:.3f}" for k, v in q.items() if isinstance(v, float))
        return [f"{metrics['num_samples']} samples against the {metrics['split']} data: {words}"]

    def figures(self, run: RunContext):
        m, x = run.model, run.split("test").x
        samples = self._draws(run, 64 if run.is_image else 1000, 0)
        title = f"samples for labels 0, 1, ..., {m.num_classes - 1}, 0, ..." if m.num_classes else "samples"
        yield "samples.png", run.draws_figure(samples, title)
        progress = self._progress(run)
        if progress is not None:
            steps, draws = progress
            yield (
                "samples_over_training.png",
                plot.plot_samples_over_training(
                    steps,
                    draws.clamp(0, 1) if run.is_image else draws,
                    image_shape=run.meta.image_shape if run.is_image else None,
                    data=None if run.is_image else x,
                    title="samples at fixed z over training",
                ),
            )
        if not run.is_image and x.shape[1] == 2 and not m.num_classes:
            yield (
                "critic.png",
                plot.plot_energy_landscape(
                    lambda points: -m.critic(points.to(m._zero.dtype)).detach(),
                    data=x,
                    samples=samples[:300],
                    title="the critic's score (higher: judged more like data)",
                    score="critic score (a logit for minimax/non-saturating)",
                ),
            )

    @staticmethod
    def _progress(run: RunContext):
        """The game's snapshots from the run's checkpoint, with the final generator's
        draws at the same z: ``(steps, draws (m, k, dims))``, or ``None``."""
        from .. import io
        from ..inference.svi.checkpoint import CHECKPOINT_NAME

        path = run.folder / CHECKPOINT_NAME
        if not path.exists():
            return None
        state = io.load(path, kind="svi").get("objective") or {}
        snapshots = list(state.get("snapshots", []))
        if not snapshots:
            return None
        k, last = len(snapshots[0][1]), int(state.get("generator_updates", 0))
        if snapshots[-1][0] < last:
            snapshots.append((last, run.model.progress_draws(k).cpu()))
        steps = [step for step, _ in snapshots]
        return steps, torch.stack([d.reshape(k, -1) for _, d in snapshots])

    def sample(self, run: RunContext, *, n: int, seed: int, **options):
        draws = self._draws(run, n, seed)
        return draws, run.draws_figure(draws, f"{n} samples")
