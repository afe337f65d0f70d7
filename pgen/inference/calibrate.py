r"""Simulation-based calibration (Talts, Betancourt, Simpson, Vehtari & Gelman 2018):
does an inference method give the right posterior *on average over the model's own
data*?

For :math:`s = 1..S`: draw :math:`\tilde\theta_s \sim p(\theta)` and
:math:`\tilde y_s \sim p(y \mid \tilde\theta_s)` from the model itself (its observed
sites sampled from the prior predictive), run the method on :math:`\tilde y_s`, and
record the rank of :math:`\tilde\theta_s` among :math:`L` posterior draws,
:math:`r_s = \#\{\ell : \theta^{(\ell)} < \tilde\theta_s\} \in \{0, \dots, L\}`. If
the method draws from the exact posterior, the ranks of every scalar parameter are
uniform on :math:`\{0..L\}` (the data-averaged posterior is the prior). A posterior
that is too narrow piles ranks at both ends (a U), a biased one at one end, one that is
too wide in the middle.

MCMC draws are thinned to :math:`L` nearly independent draws (autocorrelated draws
make even an exact sampler's ranks non-uniform; Talts et al. §5.1); guide draws are
independent already. Uniformity is tested per parameter with Pearson's chi-square over
``bins`` equal groups of ranks (``L + 1`` must be divisible by ``bins``), and shown as
rank histograms with the 99% band of a uniform count per bin (binomial) and as the
ECDF of the ranks minus the uniform CDF with its pointwise 99% band.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from pyro import poutine
from pyro.poutine.subsample_messenger import _Subsample

from ..checks import check_float, check_int
from ..eval.arviz import flat_parameters
from .arguments import check_option_names, model_arguments
from .guides import GUIDES, make_guide, vi_posterior
from .mcmc import KERNELS, sample
from .svi import fit

__all__ = ["calibrate", "Calibration"]


@dataclass
class Calibration:
    """What :func:`calibrate` returns.

    Attributes:
        ranks: ``{method: {parameter: (S,) ints in 0..L}}``.
        num_draws: ``L``, posterior draws per simulation.
        table: ``pandas.DataFrame``, one row per (method, parameter): ``chi2``,
            ``p_value`` (uniformity of the ranks), ``bins``, ``simulations``.
        errors: ``{method: message}`` for methods that failed on some simulation.
    """

    ranks: dict[str, dict[str, np.ndarray]]
    num_draws: int
    table: object
    errors: dict[str, str]

    def passed(self, method: str, level: float = 0.01) -> bool:
        """Whether every parameter's ranks pass the uniformity test at ``level``
        (Bonferroni-corrected over the parameters)."""
        rows = self.table[self.table["method"] == method]
        return bool((rows["p_value"] > level / max(len(rows), 1)).all())


def _observed_names(model, args, kwargs) -> set[str]:
    """The sites ``model(*args, **kwargs)`` observes."""
    with torch.random.fork_rng(devices=[]):
        trace = poutine.trace(model).get_trace(*args, **kwargs)
    return {n for n, s in trace.nodes.items() if s["type"] == "sample" and s["is_observed"]}


def _simulate(model, args, kwargs, observed_names: set[str], generator_seed: int):
    """One draw of the latent sites and of the observed sites from the model's prior
    predictive: ``(latents {site: value}, observations {site: value})``."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(generator_seed)
        trace = poutine.trace(poutine.uncondition(model)).get_trace(*args, **kwargs)
    latents, observed = {}, {}
    for name, site in trace.nodes.items():
        if (
            site["type"] != "sample"
            or site["infer"].get("_deterministic")
            or isinstance(site["fn"], _Subsample)
        ):
            continue
        (observed if name in observed_names else latents)[name] = site["value"].detach()
    return latents, observed


def _thin(draws: dict[str, np.ndarray], num: int) -> dict[str, np.ndarray]:
    """``num`` draws evenly spaced through ``(n, ...)`` draws."""
    n = len(next(iter(draws.values())))
    index = np.linspace(0, n - 1, num).round().astype(int)
    return {k: v[index] for k, v in draws.items()}


def _posterior_draws(method, model, args, kwargs, num_draws, seed, settings) -> dict[str, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method in KERNELS:
            run = sample(
                model,
                *args,
                kernel=method,
                chains=1,
                seed=seed,
                progress=False,
                warn=False,
                log_likelihood=False,
                model_kwargs=kwargs,
                **settings["mcmc"],
            )
            draws = {k: v[0] for k, v in run.samples.items()}
            return _thin(draws, num_draws)
        guide = make_guide(method, model)
        svi = fit(
            model,
            guide,
            None,
            model_args=tuple(args),
            model_kwargs=kwargs,
            seed=seed,
            progress=False,
            **settings["svi"],
        )
        post = vi_posterior(
            model,
            guide,
            tuple(args),
            kwargs,
            num_draws=max(num_draws, 10),
            seed=seed,
            param_state=svi.param_state,
        )
        return {k: v[0][:num_draws] for k, v in post.samples.items()}


def _next_fit(num_draws: int, bins: int) -> int:
    return bins * math.ceil((num_draws + 1) / bins) - 1


def uniformity(ranks: np.ndarray, num_draws: int, bins: int) -> tuple[float, float]:
    """Pearson's chi-square statistic of the ranks in ``bins`` equal groups of
    ``0..num_draws``, and its p-value (``bins - 1`` degrees of freedom)."""
    from scipy.stats import chi2

    counts = np.bincount(np.asarray(ranks) * bins // (num_draws + 1), minlength=bins)
    expected = len(ranks) / bins
    stat = float(((counts - expected) ** 2 / expected).sum())
    return stat, float(chi2.sf(stat, bins - 1))


def calibrate(
    model: Callable,
    *args,
    methods: Sequence[str] = ("nuts", "meanfield"),
    num_simulations: int = 100,
    num_draws: int = 99,
    bins: int = 10,
    seed: int = 0,
    warmup: int = 300,
    draws: int = 1000,
    steps: int = 2000,
    lr: float = 0.02,
    lr_final: float = 0.001,
    num_particles: int = 1,
    jit: bool = True,
    progress: bool = True,
    **kwargs,
) -> Calibration:
    """Simulation-based calibration of each method on ``model(*args, **kwargs)`` (see
    the module docstring).

    Args:
        model: a Pyro model whose observed sites can be drawn from it (an ``obs=``
            argument that is ``None`` or data: the data are replaced by simulations).
        *args, **kwargs: the model's arguments (covariates; the observed data in them
            are only a template).
        methods: ``"nuts"``, ``"hmc"`` and guide names.
        num_simulations: ``S`` (>= bins).
        num_draws: ``L``: posterior draws ranked against each truth; ``L + 1`` must be
            a multiple of ``bins``.
        bins: groups of ranks in the uniformity test and the histograms.
        seed: seeds the simulations and the methods.
        warmup, draws, jit: NUTS per simulation (one chain; ``draws`` are thinned to
            ``L``; ``jit=False`` saves the compilation where a run is short).
        steps, lr, lr_final, num_particles: SVI per simulation.
        progress: a progress bar over the simulations.

    Returns:
        A :class:`Calibration`; ``pgen.plot.calibrate.plot_ranks`` draws it.
    """
    check_option_names(kwargs, "pgen.calibrate")
    args, kwargs = model_arguments(args, kwargs)
    methods = list(methods)
    unknown = sorted(set(methods) - set(KERNELS) - set(GUIDES))
    if unknown or not methods:
        raise ValueError(f"methods must be names from {', '.join(KERNELS + GUIDES)}; got {methods!r}")
    bins = check_int("bins", bins, minimum=2)
    num_simulations = check_int("num_simulations", num_simulations, minimum=bins)
    num_draws = check_int("num_draws", num_draws, minimum=bins - 1)
    if (num_draws + 1) % bins:
        raise ValueError(
            "num_draws + 1 must be a multiple of bins so that each bin holds as many ranks; got "
            f"num_draws={num_draws}, bins={bins} (e.g. num_draws={_next_fit(num_draws, bins)})"
        )
    settings = {
        "mcmc": {
            "warmup": check_int("warmup", warmup, minimum=0),
            "draws": check_int("draws", draws, minimum=num_draws),
            "jit": bool(jit),
        },
        "svi": {
            "steps": check_int("steps", steps, minimum=1),
            "lr": check_float("lr", lr, positive=True),
            "lr_final": check_float("lr_final", lr_final, positive=True),
            "num_particles": check_int("num_particles", num_particles, minimum=1),
        },
    }
    from tqdm.auto import tqdm

    ranks: dict[str, dict[str, list]] = {m: {} for m in methods}
    errors: dict[str, str] = {}
    observed_names = _observed_names(model, args, kwargs)
    if not observed_names:
        raise ValueError(
            "the model observes no site with the arguments given: pass its data (as a template) so "
            "that calibrate knows which sites to simulate"
        )
    for s in tqdm(range(num_simulations), desc="calibrate", disable=not progress):
        truth, observed = _simulate(model, args, kwargs, observed_names, seed * 100003 + s)
        conditioned = poutine.condition(model, data=observed)
        truth = flat_parameters({k: v.cpu().numpy()[None] for k, v in truth.items()}, sample_dims=1)
        for method in methods:
            try:
                draws = _posterior_draws(method, conditioned, args, kwargs, num_draws, seed + s, settings)
                post = flat_parameters(draws, sample_dims=1)
            except Exception as error:  # noqa: BLE001 - kept, and the simulation goes on
                errors.setdefault(method, f"simulation {s}: {type(error).__name__}: {error}")
                continue
            for name, value in truth.items():
                ranks[method].setdefault(name, []).append(int((post[name] < value[0]).sum()))
    import pandas as pd

    rows, out = [], {}
    for method in methods:
        out[method] = {k: np.asarray(v) for k, v in ranks[method].items()}
        for name, r in out[method].items():
            stat, p = uniformity(r, num_draws, bins)
            rows.append(
                {
                    "method": method,
                    "parameter": name,
                    "chi2": stat,
                    "p_value": p,
                    "bins": bins,
                    "simulations": len(r),
                }
            )
    return Calibration(out, num_draws, pd.DataFrame(rows), errors)
