"""The Boltzmann family: restricted Boltzmann machines on binary data (``rbm``),
trained by CD-k or PCD-k with block Gibbs chains.

The test log-likelihood needs log Z: annealed importance sampling (AIS, Salakhutdinov &
Murray 2008), whose estimate of the likelihood errs high, and on request reverse AIS
(RAISE, Burda et al. 2015) from each test example, which errs low, so the two bracket
it. Drawn as samples and chains from test digits and from noise, and the filters.
"""

from __future__ import annotations

import time

import torch

from .. import plot
from ..inference.mcmc import sample as mcmc_sample
from ..models import protocols
from ..models.rbm import ais_log_partition, raise_log_likelihood
from .base import Evaluation, RunContext, mean_and_se, register
from .energy import QUIET, ContrastiveFamily, log_z_metrics, log_z_summary, snapshots
from .options import Option

__all__ = ["BoltzmannFamily"]


def _ais_figure(ais: dict, num_chains: int, num_betas: int):
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    plot.plot_ais_trace({f"{num_chains} chains": ais["trace"]}, ax=left)
    title = f"log Z = {ais['log_z']:.2f} +- {ais['log_z_se']:.2f} ({num_betas} betas)"
    plot.plot_ais_convergence(ais["log_weights"], ais["log_z_base"], ax=right, title=title)
    return fig


@register
class BoltzmannFamily(ContrastiveFamily):
    name = "boltzmann"
    requires = (protocols.EnergyModel,)
    evaluate_options = (
        Option("ais_betas", "rbm: intermediate distributions of AIS.", 10000, int),
        Option(
            "raise_betas",
            "rbm: also reverse AIS (RAISE) from each example with this many distributions: a "
            "conservative log-likelihood, the other side of AIS's bracket (0: skip).",
            0,
            int,
        ),
    )
    sample_options = (Option("steps", "rbm: Gibbs sweeps (default 1000), from test images.", None, int),)

    def evaluate(
        self,
        run: RunContext,
        *,
        split,
        seed,
        batch_size,
        num_samples,
        progress,
        ais_betas=10000,
        raise_betas=0,
        **options,
    ):
        """AIS with ``num_samples`` chains and ``ais_betas`` distributions (``ais.png``
        shows its convergence), and with ``raise_betas`` > 0 reverse AIS from each example."""
        m = run.model
        x, _ = run.model_view(split)
        start = time.perf_counter()
        p = run.split("train").x.mean(0).clamp(1e-3, 1 - 1e-3)
        base = (p / (1 - p)).log()  # the base model's visible biases: the data's log odds
        ais = ais_log_partition(
            m,
            num_chains=num_samples,
            num_betas=ais_betas,
            base_visible_bias=base,
            seed=seed,
            trace_every=max(1, ais_betas // 200),
            progress=progress,
        )
        metrics = log_z_metrics(run, split, x, ais, "ais")
        metrics.update(ais_chains=num_samples, ais_betas=ais_betas)
        if raise_betas:
            lower = raise_log_likelihood(
                m, x, num_betas=raise_betas, base_visible_bias=base, seed=seed, progress=progress
            )
            low_mean, low_se = mean_and_se(lower)
            metrics.update(
                raise_log_likelihood=low_mean, raise_log_likelihood_se=low_se, raise_betas=raise_betas
            )
        metrics.update(seed=seed, seconds=time.perf_counter() - start)
        return Evaluation(metrics, {"ais.png": _ais_figure(ais, num_samples, ais_betas)})

    def summary(self, m: dict) -> list[str]:
        lines = [log_z_summary(m)]
        if m.get("raise_log_likelihood") is not None:
            lines.append(
                f"{m['split']} log-likelihood by reverse AIS (conservative, {m['raise_betas']} betas): "
                f"{m['raise_log_likelihood']:.2f} +- {m['raise_log_likelihood_se']:.2f} nats"
            )
        return lines

    def sample(self, run: RunContext, *, n: int, seed: int, steps: int | None = None, **options):
        draws = self.chain_sample(run, n, seed, steps)
        return draws, run.draws_figure(draws, f"{n} samples (p(v|h) of Gibbs chains started at test images)")

    def figures(self, run: RunContext):
        if not run.is_image:
            return
        m, x, shape = run.model, run.split("test").x, run.meta.image_shape
        g = torch.Generator().manual_seed(0)
        starts = x[torch.randperm(len(x), generator=g)[:64]]
        draws = m.sample(64, sweeps=1000, init=starts, seed=0)
        yield (
            "samples.png",
            plot.plot_images(
                draws, image_shape=shape, title="p(v|h) after 1,000 Gibbs sweeps from test digits"
            ),
        )
        yield "filters.png", plot.plot_rbm_filters(m.weight.detach(), image_shape=shape)
        # three chains from uniform noise, three from test digits: Gibbs from noise can
        # stay in a high-entropy region of low probability (the README's RBM run)
        init = torch.cat([torch.bernoulli(torch.full((3, m.visible), 0.5), generator=g), starts[:3]])
        chains = mcmc_sample(m.model, kernel=m.gibbs_kernel(6, init=init), draws=1000, n=6, **QUIET)
        steps = [1, 3, 10, 30, 100, 300, 1000]
        title = "Gibbs chains: 3 from noise (top), 3 from test digits"
        yield (
            "chain.png",
            plot.plot_chain_snapshots(snapshots(chains, "v", steps), image_shape=shape, title=title),
        )
