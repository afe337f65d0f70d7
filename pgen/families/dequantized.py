"""The dequantized family: flows trained with variational dequantization (``vdq``;
:mod:`pgen.models.dequantize`).

A latent-variable model in the Pyro sense (the dequantization noise u is the latent and
q(u|k) the guide), so it is evaluated as one: the variational bound (the ELBO) and the
importance-sampled log-likelihood of the grey levels, and beside them the uniform
dequantization bound of the same flow, so the two Jensen gaps of the notes are read off
the same run.
"""

from __future__ import annotations

from .base import Evaluation, RunContext, mean_and_se, register
from .flow import FlowFamily
from .likelihood import importance_metrics, importance_summary

__all__ = ["DequantizedFamily"]


@register
class DequantizedFamily(FlowFamily):
    name = "dequantized"
    requires = ()
    train_quantity = "variational dequantization bound (nats per example)"

    def train_summary(self, model, history: dict) -> str:
        return f"train bound {history['train_elbo'][-1]:.2f} nats/example (variational dequantization)"

    def evaluate(self, run: RunContext, **settings):
        from ..models.dequantize import jensen_gaps

        x, _ = run.model_view(settings["split"])
        metrics = importance_metrics(run, x, {}, **settings)
        uniform = jensen_gaps(run.model, x, num_samples=10, seed=settings["seed"])["uniform_bound"]
        u_mean, u_se = mean_and_se(uniform)
        metrics.update(
            exact=False,
            uniform_bound=u_mean,
            uniform_bound_se=u_se,
            jensen_gap_uniform=metrics["log_likelihood"] - u_mean,
            jensen_gap_variational=metrics["log_likelihood"] - metrics["elbo"],
        )
        return Evaluation(metrics)

    def summary(self, metrics: dict) -> list[str]:
        lines = importance_summary(metrics)
        uniform, variational = metrics["jensen_gap_uniform"], metrics["jensen_gap_variational"]
        lines.append(
            f"Jensen gaps (IS log-likelihood minus the bound): uniform dequantization {uniform:.2f} "
            f"nats, variational {variational:.2f} nats"
        )
        return lines
