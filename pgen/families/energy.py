"""The continuous energy family: unnormalized densities p~(x) = exp(-E(x)) on real data
(``ebm``; :class:`~pgen.models.protocols.EnergyModel`), trained by contrastive
divergence with Langevin chains and sampled by the MCMC engine.

:class:`ContrastiveFamily` holds what every contrastive-divergence family shares (the
Boltzmann family builds on it): the objective is the model's
``contrastive_divergence(**options)``, whose options are recorded in the run as
``objective_args``, and the engine's ``train_elbo`` is the contrastive gap, not a bound.
"""

from __future__ import annotations

import inspect
import time

import torch

from .. import plot
from ..eval.energy import importance_log_partition
from ..inference.mcmc import sample as mcmc_sample
from ..models import protocols
from .base import Evaluation, Family, RunContext, mean_and_se, register
from .options import Option, options_from

__all__ = ["ContrastiveFamily", "EnergyFamily", "QUIET", "snapshots", "log_z_summary", "log_z_metrics"]

# one quiet pass of the MCMC engine, for figures
QUIET = {"chains": 1, "warmup": 0, "seed": 0, "progress": False, "warn": False, "log_likelihood": False}


def snapshots(run, site: str, steps: list[int]):
    """``(label, states)`` after each of ``steps`` transitions of a one-pass MCMC run."""
    values = torch.as_tensor(run.samples[site])  # (chains, draws, d)
    return [(f"step {t}", values[:, t - 1]) for t in steps]


def log_z_metrics(run: RunContext, split: str, x, est: dict, method: str) -> dict:
    """The metrics of a test log-likelihood made with an estimate ``est`` of log Z:
    log p~(x) - log Z per example, averaged, with its standard error over examples."""
    with torch.no_grad():
        ll = run.model.log_unnormalized(x).double() - est["log_z"]
    mean, se = mean_and_se(ll)
    return {
        **run.header(split, x),
        "elbo": None,
        "log_likelihood": mean,
        "log_likelihood_se": se,
        "log_z": est["log_z"],
        "log_z_se": est["log_z_se"],
        "log_z_method": method,
        "nll": -mean,
        "bits_per_dim": run.bits_per_dim(-mean, int(x[0].numel())),
    }


def log_z_summary(m: dict) -> str:
    """The one-line summary of a log-likelihood made with an estimate of log Z."""
    bpd = "" if m["bits_per_dim"] is None else f", {m['bits_per_dim']:.4f} bits/dim"
    return (
        f"{m['split']} log-likelihood {m['log_likelihood']:.2f} +- {m['log_likelihood_se']:.2f} nats{bpd}; "
        f"log Z {m['log_z']:.2f} +- {m['log_z_se']:.2f} by {m['log_z_method']} ({m['n']} examples)"
    )


class ContrastiveFamily(Family):
    """Models trained by an objective that a method of the model builds: contrastive
    divergence here (``EnergyModel.contrastive_divergence``); the adversarial family's
    game (``GAN.adversarial``) the same way. ``objective`` names the method; its options
    are the run's ``objective_args``."""

    objective = "contrastive_divergence"
    objective_words = "contrastive divergence"
    objectives = ()
    train_quantity = "contrastive gap (nats per example)"

    def _method(self, model_name: str):
        from ..models import registry

        return getattr(registry.get(model_name).cls, self.objective)

    def objective_options(self, spec):
        return options_from(getattr(spec.cls, self.objective))

    def check_objective(self, model_name, objective):
        if objective is not None and objective != self.objective:
            names = " and ".join(o.flag for o in self.objective_options_of(model_name)[:2])
            raise ValueError(
                f"{model_name} trains by {self.objective_words}: choose its options ({names}, ...), "
                f"not --objective {objective}"
            )
        return self.objective

    def objective_options_of(self, model_name: str) -> list[Option]:
        from ..models import registry

        return self.objective_options(registry.get(model_name))

    def complete_objective_args(self, model_name: str, given: dict) -> dict:
        """Every option of the objective's method, defaults included (a run records all)."""
        method = self._method(model_name)
        defaults = {k: p.default for k, p in inspect.signature(method).parameters.items() if k != "self"}
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise ValueError(
                f"unknown {self.objective_words} arguments {unknown}; allowed: {sorted(defaults)}"
            )
        return {**defaults, **given}

    def build_objective(self, model, cfg):
        return getattr(model, self.objective)(**cfg["objective_args"])

    def train_summary(self, model, history):
        gap = history["train_elbo"][-1]
        return (
            f"train contrastive gap (mean log p~ of the data minus that of the chains) {gap:.2f} nats/example"
        )

    def chain_sample(self, run: RunContext, n: int, seed: int, steps: int | None, **kwargs):
        """``n`` draws from the model's sampler, ``steps`` long in its own unit."""
        m = run.model
        if steps is not None:
            kwargs[m.chain_length] = steps
        if m.chains_start_at_data:
            x = run.split("test").x
            kwargs["init"] = x[torch.randint(0, len(x), (n,), generator=torch.Generator().manual_seed(seed))]
        return m.sample(n, seed=seed, **kwargs)


@register
class EnergyFamily(ContrastiveFamily):
    name = "energy"
    requires = (protocols.EnergyModel,)
    sample_options = (Option("steps", "ebm: Langevin steps (default 500).", None, int),)

    def evaluate(self, run: RunContext, *, split, seed, batch_size, num_samples, progress, **options):
        """log Z by defensive importance sampling (low-dimensional data only), then the
        exact-up-to-log-Z test log-likelihood."""
        m = run.model
        x, _ = run.model_view(split)
        if x[0].numel() > 10:
            dims = x[0].numel()
            raise ValueError(
                f"importance sampling of log Z needs a low-dimensional energy; this one has {dims} dimensions"
            )
        start = time.perf_counter()
        train = run.split("train").x
        est = importance_log_partition(
            m.log_unnormalized, train, base_scale=m.base_scale, seed=seed, num_samples=200_000
        )
        metrics = log_z_metrics(run, split, x, est, "defensive importance sampling")
        metrics.update(
            is_samples=est["num_samples"], ess=est["ess"], seed=seed, seconds=time.perf_counter() - start
        )
        return Evaluation(metrics)

    def summary(self, m: dict) -> list[str]:
        return [log_z_summary(m)]

    def sample(self, run: RunContext, *, n: int, seed: int, steps: int | None = None, **options):
        draws = self.chain_sample(run, n, seed, steps)
        return draws, run.draws_figure(draws, f"{n} samples ({steps or 'default'} Langevin steps)")

    def figures(self, run: RunContext):
        m, x = run.model, run.split("test").x
        if run.is_image:
            yield (
                "samples.png",
                plot.plot_images(m.sample(64, seed=0).clamp(0, 1), image_shape=run.meta.image_shape),
            )
            return
        if x.shape[1] != 2:
            return
        samples = m.sample(1000, seed=0)
        yield "samples.png", plot.plot_points(x, samples, title="samples over the test data")
        yield "landscape.png", plot.plot_energy_landscape(m.total_energy, data=x, samples=samples[:300])
        init = 6 * torch.rand(500, 2, generator=torch.Generator().manual_seed(0)) - 3
        chains = mcmc_sample(m.model, kernel=m.langevin_kernel(500, init=init), draws=500, **QUIET)
        yield (
            "chain.png",
            plot.plot_chain_snapshots(
                snapshots(chains, "obs", [1, 10, 50, 200, 500]),
                data=x,
                title="Langevin chains (ULA, step 0.005)",
            ),
        )
