r"""The shared MCMC engine: :func:`sample` runs any Pyro ``MCMCKernel`` on any model.

This is the one place chains are run. A kernel is a Pyro ``MCMCKernel``: pgen's
:class:`~pgen.inference.kernels.NUTS` and :class:`~pgen.inference.kernels.HMC` (chosen by
name), Pyro's own kernels, or any other (energy-model samplers add theirs the same way).
The engine seeds each chain, runs warm-up and draws with a progress bar (chains one
after another in this process, or in parallel processes), maps draws to the
constrained space, and returns an :class:`MCMCResult` with an ArviZ ``InferenceData``,
R-hat, bulk and tail ESS, ESS per second and divergences, warning in plain words when
any of them says the draws should not be trusted.
"""

from __future__ import annotations

import math
import multiprocessing
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.infer.mcmc.mcmc_kernel import MCMCKernel
from tqdm.auto import tqdm

from ..checks import check_choice, check_int
from ..eval.arviz import flat_parameters, to_inference_data
from ..eval.diagnostics import ess_bulk, ess_tail, rhat
from .kernels.hmc import HMC, NUTS
from .potential import model_error

__all__ = ["sample", "final_states", "MCMCResult", "summarize", "convergence_warnings"]

KERNELS = ("nuts", "hmc")
STAT_NAMES = ("diverging", "step_size", "tree_depth", "n_steps", "acceptance_rate", "energy", "lp")


@dataclass(frozen=True)
class MCMCResult:
    """What :func:`sample` returns.

    Attributes:
        samples: posterior draws by site, constrained, ``(chain, draw, *site_shape)``.
        sample_stats: per-draw sampler statistics ``(chain, draw)``: ``diverging``,
            ``step_size``, ``tree_depth``, ``n_steps`` (leapfrog steps),
            ``acceptance_rate``, ``energy`` and ``lp`` (log density of the unconstrained
            draw, Jacobian included), as far as the kernel reports them.
        inference_data: ``arviz.InferenceData`` with ``posterior``, ``sample_stats``,
            ``log_likelihood`` and ``observed_data`` (and ``posterior_predictive`` on
            request), built with ``arviz.from_dict``.
        summary: a ``pandas.DataFrame`` with one row per scalar parameter: mean, sd,
            5%/50%/95% quantiles, ``ess_bulk``, ``ess_tail``, ``r_hat``.
        wall_time: seconds for warm-up and draws of all chains (elapsed; parallel chains
            overlap).
        warmup_time, sampling_time: the two parts, summed over chains.
        ess_per_second: the smallest bulk ESS over parameters divided by ``wall_time``.
        divergences: post-warm-up divergent transitions, over all chains.
        warnings: the plain-language warnings that were issued.
        chains, warmup, draws: the run's size.
        seeds: the seed of each chain.
        kernel: the kernel's name.
        config: the settings of the run.
    """

    samples: dict[str, np.ndarray]
    sample_stats: dict[str, np.ndarray]
    inference_data: Any
    summary: Any
    wall_time: float
    warmup_time: float
    sampling_time: float
    ess_per_second: float
    divergences: int
    warnings: list[str]
    chains: int
    warmup: int
    draws: int
    seeds: list[int]
    kernel: str
    config: dict = field(default_factory=dict)

    def draws_of(self, name: str) -> np.ndarray:
        """The draws of site ``name`` with chains pooled: ``(chain * draw, *shape)``."""
        if name not in self.samples:
            raise KeyError(f"no site {name!r}; sites: {sorted(self.samples)}")
        value = self.samples[name]
        return value.reshape(-1, *value.shape[2:])

    @property
    def min_ess_bulk(self) -> float:
        return float(np.nanmin(self.summary["ess_bulk"].to_numpy()))


def summarize(samples: dict[str, np.ndarray]):
    """A ``pandas.DataFrame`` of per-parameter summaries of ``(chain, draw, ...)`` draws."""
    import pandas as pd

    rows = {}
    for name, x in flat_parameters(samples).items():
        x = np.asarray(x, dtype=np.float64)
        flat = x.reshape(-1)
        q5, q50, q95 = np.quantile(flat, [0.05, 0.5, 0.95])
        enough = x.shape[1] >= 4
        rows[name] = {
            "mean": flat.mean(),
            "sd": flat.std(ddof=1) if flat.size > 1 else float("nan"),
            "q5": q5,
            "q50": q50,
            "q95": q95,
            "ess_bulk": ess_bulk(x) if enough else float("nan"),
            "ess_tail": ess_tail(x) if enough else float("nan"),
            "r_hat": rhat(x) if enough else float("nan"),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def convergence_warnings(
    summary, divergences: int, chains: int, draws: int, max_depth_hits: int = 0
) -> list[str]:
    """Plain-language warnings from a summary table (R-hat, ESS) and divergences."""
    messages = []
    rh = summary["r_hat"]
    bad = rh[rh > 1.01]
    if len(bad):
        worst = bad.sort_values(ascending=False)
        names = ", ".join(f"{k} ({v:.3f})" for k, v in list(worst.items())[:5])
        messages.append(
            f"R-hat is above 1.01 for {len(bad)} parameter(s): {names}. The chains have not "
            "mixed: they disagree about the posterior. Run longer (more warmup and draws) or "
            "reparameterize the model."
        )
    needed = 100 * chains
    for column, kind in (("ess_bulk", "bulk"), ("ess_tail", "tail")):
        ess = summary[column]
        low = ess[ess < needed]
        if len(low):
            names = ", ".join(f"{k} ({v:.0f})" for k, v in list(low.sort_values().items())[:5])
            messages.append(
                f"{kind} ESS is below {needed} (100 per chain) for {len(low)} parameter(s): "
                f"{names}. Estimates of posterior "
                f"{'means and medians' if kind == 'bulk' else 'quantiles and intervals'} are "
                "unreliable; draw more samples."
            )
    if divergences:
        messages.append(
            f"{divergences} divergent transition(s) after warm-up: the sampler met curvature "
            "it cannot follow (e.g. a funnel in a hierarchical model), so the draws may miss "
            "part of the posterior. Reparameterize (e.g. non-centred) or raise target_accept."
        )
    if max_depth_hits:
        messages.append(
            f"{max_depth_hits} of {chains * draws} transitions stopped at the maximum tree "
            "depth: trajectories were cut short, which makes sampling slow; raise "
            "max_tree_depth or improve the geometry."
        )
    return messages


# --------------------------------------------------------------------------- chains


def _make_kernel(
    kernel, model, *, jit, init, target_accept, max_tree_depth, dense_mass, step_size, num_steps
):
    if isinstance(kernel, MCMCKernel):
        return kernel
    if not isinstance(kernel, str):
        raise TypeError(
            "kernel must be 'nuts', 'hmc' or a pyro.infer.mcmc MCMCKernel instance; "
            f"got {type(kernel).__name__}"
        )
    name = check_choice("kernel", kernel, KERNELS)
    common = dict(step_size=step_size, dense_mass=dense_mass, target_accept=target_accept, init=init, jit=jit)
    if name == "nuts":
        return NUTS(model, max_tree_depth=max_tree_depth, **common)
    return HMC(model, num_steps=num_steps, **common)


def _kernel_stats(kernel, previous_divergences: int) -> tuple[dict, int]:
    """Per-draw statistics: pgen kernels report ``last_stats``; for other kernels the
    engine reads what Pyro's HMC/NUTS keep (step size, divergence list)."""
    stats = getattr(kernel, "last_stats", None)
    if stats is not None:
        return stats, 0
    divs = getattr(kernel, "_divergences", None)
    count = len(divs) if isinstance(divs, list) else 0
    out = {"diverging": count > previous_divergences}
    step = getattr(kernel, "step_size", None)
    if isinstance(step, (int, float)):
        out["step_size"] = float(step)
    return out, count


def _run_chain(kernel, chain: int, seed: int, warmup: int, draws: int, args, kwargs, report: Callable):
    """One chain; returns unconstrained draws by site, statistics and timings."""
    pyro.set_rng_seed(seed)
    start = time.perf_counter()
    try:
        kernel.setup(warmup, *args, **kwargs)
    except TypeError as error:
        if "arguments given failed" in str(error):
            raise
        raise model_error(error) from error
    params = kernel.initial_params
    kept: dict[str, list] = {name: [] for name in params}
    stats: dict[str, list] = {}
    divergences = 0
    warmup_time = 0.0
    for i in range(warmup + draws):
        params = kernel.sample(params)
        if i == warmup - 1:
            warmup_time = time.perf_counter() - start
        if i >= warmup:
            for name, value in params.items():
                kept[name].append(value.detach().cpu().clone())
            row, divergences = _kernel_stats(kernel, divergences)
            for key, value in row.items():
                stats.setdefault(key, []).append(value)
        report(chain, i, kernel)
    total = time.perf_counter() - start
    if warmup == 0:
        warmup_time = 0.0
    out = {  # one leading chain axis per run; a batched kernel's run is reshaped by _unbatch
        "params": {name: torch.stack(values).numpy()[None] for name, values in kept.items()},
        "stats": {k: np.asarray(v)[None] for k, v in stats.items()},
        "warmup_time": warmup_time,
        "sampling_time": total - warmup_time,
        "transforms": getattr(kernel, "transforms", None) or {},
    }
    kernel.cleanup()
    return out


def _unbatch(run: dict, batch: int) -> dict:
    """A run of ``batch`` chains held as one tensor, ``(1, draws, batch, ...)``, as
    ``batch`` chains ``(batch, draws, ...)``; per-draw statistics are per chain
    ``(1, draws, batch)`` or shared ``(1, draws)``."""
    params = {name: np.moveaxis(v[0], 1, 0) for name, v in run["params"].items()}
    stats = {}
    for key, v in run["stats"].items():
        v = v[0]
        stats[key] = (
            np.moveaxis(v, 1, 0) if v.ndim == 2 and v.shape[1] == batch else np.repeat(v[None], batch, 0)
        )
    return {**run, "params": params, "stats": stats}


class _Bars:
    """One tqdm bar per chain, refreshed at most twice a second."""

    def __init__(self, chains: int, warmup: int, draws: int, enabled: bool, parallel: bool):
        self.enabled, self.warmup, self.total = enabled, warmup, warmup + draws
        self.bars: dict[int, tqdm] = {}
        self.chains, self.parallel = chains, parallel
        self.last = 0.0

    def bar(self, chain: int) -> tqdm:
        if chain not in self.bars:
            self.bars[chain] = tqdm(
                total=self.total,
                desc=f"chain {chain + 1}/{self.chains} warmup"
                if self.warmup
                else f"chain {chain + 1}/{self.chains} sample",
                unit="it",
                position=chain if self.parallel else None,
                leave=True,
                disable=not self.enabled,
            )
        return self.bars[chain]

    def update(self, chain: int, i: int, postfix=None):
        bar = self.bar(chain)
        bar.n = i + 1
        if i + 1 == self.warmup:
            bar.set_description(f"chain {chain + 1}/{self.chains} sample", refresh=False)
        now = time.perf_counter()
        if now - self.last > 0.5 or i + 1 == self.total:
            if postfix:
                bar.set_postfix(postfix, refresh=False)
            bar.refresh()
            self.last = now

    def close(self):
        for bar in self.bars.values():
            bar.close()


def _parallel_chains(kernel, seeds, warmup, draws, args, kwargs, bars: _Bars) -> list[dict]:
    """Run chains in forked processes; each sends progress and its result back."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()

    def worker(chain: int, seed: int):
        torch.set_num_threads(1)

        def report(c, i, k):
            if (i + 1) % 25 == 0 or i + 1 == warmup + draws:
                queue.put(("tick", c, i, None))

        try:
            result = _run_chain(kernel, chain, seed, warmup, draws, args, kwargs, report)
            result["transforms"] = None  # rebuilt in the parent (transforms need not pickle)
            queue.put(("done", chain, result, None))
        except BaseException as error:  # noqa: BLE001 - sent to the parent, which raises it
            queue.put(("error", chain, f"{type(error).__name__}: {error}", traceback.format_exc()))

    processes = [context.Process(target=worker, args=(c, s), daemon=True) for c, s in enumerate(seeds)]
    for p in processes:
        p.start()
    results: dict[int, dict] = {}
    try:
        while len(results) < len(seeds):
            kind, chain, payload, extra = queue.get()
            if kind == "tick":
                bars.update(chain, payload)
            elif kind == "done":
                results[chain] = payload
            else:
                raise RuntimeError(f"chain {chain + 1} failed in its process: {payload}\n{extra}")
    finally:
        for p in processes:
            if p.is_alive():
                p.terminate()
            p.join()
    return [results[c] for c in range(len(seeds))]


def _constrain(params: dict[str, np.ndarray], transforms: dict) -> dict[str, np.ndarray]:
    """Unconstrained draws -> constrained; ``transforms`` map constrained -> unconstrained
    (Pyro's convention), so their inverses are applied."""
    out = {}
    for name, value in params.items():
        t = transforms.get(name)
        tensor = torch.from_numpy(np.ascontiguousarray(value))
        with torch.no_grad():
            out[name] = (t.inv(tensor) if t is not None else tensor).numpy().astype(np.float64)
    return out


def _pointwise(model, samples, dtypes, args, kwargs, observed, deterministic, *, predictive: bool, seed: int):
    """Re-run the model at every draw. Returns ``(per_observed, per_deterministic)``:
    the observed sites' pointwise log-likelihood (or, with ``predictive``, fresh draws of
    them from the posterior predictive), and the values of ``pyro.deterministic`` sites."""
    chains, n = next(iter(samples.values())).shape[:2]
    out: dict[str, list] = {name: [] for name in observed}
    det: dict[str, list] = {name: [] for name in deterministic}
    fn = poutine.uncondition(model) if predictive else model
    with torch.random.fork_rng(devices=[]), torch.no_grad(), pyro.validation_enabled(False):
        torch.manual_seed(seed)
        for c in range(chains):
            for s in range(n):
                values = {k: torch.as_tensor(v[c, s], dtype=dtypes.get(k)) for k, v in samples.items()}
                trace = poutine.trace(poutine.condition(fn, data=values)).get_trace(*args, **kwargs)
                for name in observed:
                    site = trace.nodes[name]
                    value = site["value"] if predictive else site["fn"].log_prob(site["value"])
                    out[name].append(value.detach().cpu().numpy())
                for name in deterministic:
                    det[name].append(trace.nodes[name]["value"].detach().cpu().numpy())

    def stack(d):
        return {k: np.asarray(v, dtype=np.float64).reshape(chains, n, *np.shape(v[0])) for k, v in d.items()}

    return stack(out), stack(det)


def sample(
    model: Callable,
    *args,
    kernel="nuts",
    chains: int = 4,
    warmup: int = 500,
    draws: int = 1000,
    seed: int = 0,
    progress: bool = True,
    jit: bool = False,
    init="uniform",
    parallel: bool = False,
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    dense_mass="auto",
    step_size: float | None = None,
    num_steps: int = 10,
    log_likelihood: bool = True,
    posterior_predictive: bool = False,
    warn: bool = True,
    **kwargs,
) -> MCMCResult:
    r"""Draw posterior samples of ``model(*args, **kwargs)`` by MCMC.

    Args:
        model: a Pyro model; its unobserved sample sites are sampled.
        *args, **kwargs: the model's arguments (its data), passed as
            ``model(*args, **kwargs)``.
        kernel: ``"nuts"`` (default), ``"hmc"``, or any ``pyro.infer.mcmc`` ``MCMCKernel``
            instance (e.g. ``pyro.infer.NUTS(model)`` or an energy-model sampler); the
            options below configure the named kernels only.
        chains: number of chains (>= 1), each with its own seed.
        warmup: warm-up iterations per chain (step size and mass matrix adaptation);
            discarded.
        draws: kept iterations per chain (>= 1).
        seed: the run's seed; chain seeds are derived from it, so a run repeats exactly.
        progress: show one progress bar per chain.
        jit: compile the potential energy and its gradient into one graph
            (:mod:`pgen.inference.potential`): same draws up to float rounding, several
            times faster per gradient.
        init: ``"uniform"`` (unconstrained coordinates uniform in (-2, 2)), ``"median"``
            (prior medians) or a dict of constrained site values.
        parallel: run chains in parallel processes (``fork``; Linux and macOS) instead
            of one after another.
        target_accept: mean acceptance probability that step-size adaptation aims at
            (raise towards 0.95 to remove divergences in difficult geometry).
        max_tree_depth: NUTS trajectories have at most ``2**max_tree_depth`` steps.
        dense_mass: ``"auto"`` (dense up to 50 dimensions), ``True`` or ``False``.
        step_size: initial step size (``None``: found by a heuristic).
        num_steps: leapfrog steps per HMC transition.
        log_likelihood: store the pointwise log-likelihood of observed sites per draw
            (for ``arviz.loo``/``waic``).
        posterior_predictive: also draw the observed sites from the posterior predictive.
        warn: issue ``RuntimeWarning`` s for R-hat > 1.01, low ESS and divergences.

    Returns:
        An :class:`MCMCResult`.

    Raises:
        ValueError, TypeError: bad arguments, a model with discrete latent sites, or
            arguments the model cannot be called with; each names the problem.

    Example:
        >>> result = pgen.sample(model, X, y, chains=4, warmup=500, draws=1000, seed=0)
        >>> result.summary[["mean", "sd", "r_hat"]]
        >>> arviz.plot_trace(result.inference_data)
    """
    if not callable(model):
        raise TypeError(f"model must be a callable Pyro model, got {type(model).__name__}")
    chains = check_int("chains", chains, minimum=1)
    warmup = check_int("warmup", warmup, minimum=0)
    draws = check_int("draws", draws, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    if parallel and "fork" not in multiprocessing.get_all_start_methods():
        raise ValueError("parallel=True needs the 'fork' start method (Linux, macOS); use parallel=False")
    k = _make_kernel(
        kernel,
        model,
        jit=jit,
        init=init,
        target_accept=target_accept,
        max_tree_depth=max_tree_depth,
        dense_mass=dense_mass,
        step_size=step_size,
        num_steps=num_steps,
    )
    kernel_name = kernel if isinstance(kernel, str) else type(kernel).__name__
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(chains)]
    bars = _Bars(chains, warmup, draws, progress, parallel)
    start = time.perf_counter()
    try:
        if parallel and chains > 1:
            if isinstance(k, HMC):
                k.potential = k._get_potential(args, kwargs)  # trace/compile once, before forking
            runs = _parallel_chains(k, seeds, warmup, draws, args, kwargs, bars)
        else:

            def report(chain, i, kern):
                bars.update(chain, i, kern.logging() if progress else None)

            runs = [_run_chain(k, c, s, warmup, draws, args, kwargs, report) for c, s in enumerate(seeds)]
    finally:
        bars.close()
    wall = time.perf_counter() - start
    transforms = getattr(k, "transforms", None) or runs[0]["transforms"] or {}
    batch = getattr(k, "batch_chains", None)  # a kernel that runs chains as one batch
    if batch is not None:
        runs = [_unbatch(r, batch) for r in runs]
    unconstrained = {name: np.concatenate([r["params"][name] for r in runs]) for name in runs[0]["params"]}
    samples = _constrain(unconstrained, transforms)
    stats = {}
    for key in runs[0]["stats"]:
        stats[key] = np.concatenate([r["stats"][key] for r in runs])
    requested_chains, chains = chains, len(next(iter(unconstrained.values())))
    divergences = int(stats["diverging"].sum()) if "diverging" in stats else 0
    depth_hits = (
        int((stats["tree_depth"] >= max_tree_depth).sum())
        if "tree_depth" in stats and kernel == "nuts"
        else 0
    )
    with torch.random.fork_rng(devices=[]):
        trace = poutine.trace(model).get_trace(*args, **kwargs)
    observed = {
        n: site["value"].detach()
        for n, site in trace.nodes.items()
        if site["type"] == "sample" and site["is_observed"] and not site["infer"].get("_deterministic")
    }
    dtypes = {n: site["value"].dtype for n, site in trace.nodes.items() if site["type"] == "sample"}
    deterministic = [
        n
        for n, site in trace.nodes.items()
        if site["type"] == "sample" and site["infer"].get("_deterministic")
    ]
    names = list(observed)
    loglik, latent = {}, samples
    if (log_likelihood and names) or deterministic:
        loglik, values = _pointwise(
            model,
            latent,
            dtypes,
            args,
            kwargs,
            names if log_likelihood else [],
            deterministic,
            predictive=False,
            seed=seed,
        )
        samples = {**latent, **values}
    summary = summarize(samples)
    ess_values = summary["ess_bulk"].to_numpy() if len(summary) else np.array([])
    min_ess = float(np.nanmin(ess_values)) if np.isfinite(ess_values).any() else float("nan")
    messages = convergence_warnings(summary, divergences, chains, draws, depth_hits)
    if warn:
        for message in messages:
            warnings.warn(message, RuntimeWarning, stacklevel=2)

    groups = {"posterior": samples, "sample_stats": dict(stats)}
    if loglik:
        groups["log_likelihood"] = loglik
    if posterior_predictive and names:
        groups["posterior_predictive"], _ = _pointwise(
            # deterministic sites are conditioned too: unconditioning them would resample them
            model,
            samples,
            dtypes,
            args,
            kwargs,
            names,
            [],
            predictive=True,
            seed=seed + 1,
        )
    groups["observed_data"] = {n: v.cpu().numpy() for n, v in observed.items()}
    with warnings.catch_warnings():
        # batched kernels run thousands of chains with few draws, which ArviZ suspects
        warnings.filterwarnings("ignore", message="More chains .* than draws", category=UserWarning)
        idata = to_inference_data(groups, attrs={"inference_library": "pgen", "kernel": kernel_name})
    config = {
        "kernel": kernel_name,
        "chains": requested_chains,
        "batch_chains": batch,
        "warmup": warmup,
        "draws": draws,
        "seed": seed,
        "jit": bool(jit),
        "init": init if isinstance(init, str) else "dict",
        "parallel": bool(parallel),
        "target_accept": target_accept,
        "max_tree_depth": max_tree_depth,
        "dense_mass": dense_mass,
    }
    return MCMCResult(
        samples=samples,
        sample_stats=stats,
        inference_data=idata,
        summary=summary,
        wall_time=wall,
        warmup_time=float(sum(r["warmup_time"] for r in runs)),
        sampling_time=float(sum(r["sampling_time"] for r in runs)),
        ess_per_second=min_ess / wall if wall > 0 and math.isfinite(min_ess) else float("nan"),
        divergences=divergences,
        warnings=messages,
        chains=chains,
        warmup=warmup,
        draws=draws,
        seeds=seeds,
        kernel=kernel_name,
        config=config,
    )


def final_states(
    kernel, site: str, transitions: int, *, seed: int = 0, model: Callable | None = None, **kwargs
) -> torch.Tensor:
    """Where a batched kernel's chains are after ``transitions`` transitions of one
    :func:`sample` run (quietly, nothing stored but the last draw): ``(chains, ...)``
    values of ``site``. For drawing samples from an energy or score model.

    Args:
        kernel: an MCMC kernel (e.g. ``rbm.gibbs_kernel(n)``).
        site: the state's site to return.
        transitions: at least 1.
        seed: seeds the run.
        model, kwargs: the model the kernel runs on and its arguments (default: a model
            with no sites, for kernels with their own energy).
    """
    transitions = check_int("transitions", transitions, minimum=1)
    run = sample(
        model if model is not None else (lambda *a, **k: None),
        kernel=kernel,
        chains=1,
        warmup=transitions - 1,
        draws=1,
        seed=seed,
        progress=False,
        warn=False,
        log_likelihood=False,
        **kwargs,
    )
    return torch.as_tensor(run.samples[site][:, -1], dtype=torch.get_default_dtype())
