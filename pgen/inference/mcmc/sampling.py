"""``pgen.sample``: run the chains, then turn them into an :class:`MCMCResult`."""

from __future__ import annotations

import math
import multiprocessing
import os
import time
import warnings
from collections import Counter
from collections.abc import Callable, Mapping

import numpy as np
import torch

from ... import rng
from ...checks import check_int
from ...devices import device_of, resolve_device, to_device
from ...eval.arviz import to_inference_data
from ..arguments import check_option_names, model_arguments
from ..bridges import GuideStart
from ..guides import VIPosterior
from ..kernels.hmc import HMC
from ..svi.distributed import current_group
from .chains import Bars, ChainsStopped, make_kernel, parallel_chains, sequential_chains, unbatch
from .checkpoint import ChainStore
from .postprocess import constrain, discrete_draws, model_sites, pointwise
from .result import MCMCResult, convergence_warnings, rejection_warnings, summarize

__all__ = ["sample", "final_states"]


def sample(
    model: Callable,
    *args,
    kernel="nuts",
    chains: int = 4,
    warmup: int = 500,
    draws: int = 1000,
    seed: int = 0,
    progress: bool = True,
    jit: bool = True,
    init="uniform",
    parallel: bool | str = "auto",
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    dense_mass="auto",
    metric_init: str = "mode",
    step_size: float | None = None,
    num_steps: int = 10,
    log_likelihood: bool = True,
    posterior_predictive: bool = False,
    warn: bool = True,
    model_kwargs: dict | None = None,
    checkpoint=None,
    checkpoint_every: int = 100,
    resume: bool = False,
    device=None,
    **kwargs,
) -> MCMCResult:
    r"""Draw posterior samples of ``model(*args, **kwargs)`` by MCMC.

    The caller's random streams (torch, Python, NumPy) are left as they were.

    Args:
        model: a Pyro model; its unobserved sample sites are sampled.
        *args, **kwargs: the model's arguments (its data), passed as
            ``model(*args, **kwargs)``; checked first (:mod:`pgen.inference.arguments`):
            numpy arrays, pandas objects and lists of floats become tensors, and NaN,
            infinite or empty arrays are refused, naming the argument.
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
            times faster per gradient. A model that cannot be compiled (its Python code
            reads its latent values, or the graph disagrees with it at test points) runs
            eagerly, with one warning saying why; ``config["compiled"]`` of the result
            says which ran. ``jit=False``: always eager.
        init: ``"uniform"`` (unconstrained coordinates uniform in (-2, 2)), ``"median"``
            (prior medians), a dict of constrained site values, or a fitted guide (the
            ``SVIResult`` of ``pgen.fit`` on the same model and data, or its
            ``posterior()``): each chain then starts at one of the guide's draws, with
            the covariance of its draws as the first mass matrix
            (:mod:`pgen.inference.bridges`).
        parallel: ``True``: run chains in parallel processes (``fork``; Linux and macOS),
            one thread each; ``False``: one after another; ``"auto"`` (default): in
            processes when there are several chains, pgen's named kernel, more than one
            core and ``fork``, and CUDA is not in use. ``config["parallel"]`` says which.
            Inside a ``torch.distributed`` job (e.g. under ``torchrun``) the chains are
            also spread over the ranks, chain ``c`` on rank ``c mod W``, and every rank
            gets all of them back: the same draws as one process
            (:mod:`pgen.inference.svi.distributed`).
        device: where the model runs: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or
            ``"auto"`` (:func:`pgen.devices.resolve_device`). The model's tensor arguments
            (and the module of a bound ``model``) are moved there; ``None`` (default) leaves
            them where they are. The potential and its gradient are computed there; the
            NUTS/HMC dynamics run in float64 on the CPU and the draws come back to it.
            Chains run one after another on a GPU (a batched kernel runs them together).
        target_accept: mean acceptance probability that step-size adaptation aims at
            (raise towards 0.95 to remove divergences in difficult geometry).
        max_tree_depth: NUTS trajectories have at most ``2**max_tree_depth`` steps.
        dense_mass: ``"auto"`` (dense up to 50 dimensions), ``True`` or ``False``.
        metric_init: where a dense mass matrix's warm-up starts: ``"mode"`` (default):
            the inverse Hessian at the posterior mode, and the chain's first point drawn
            from that Laplace approximation, where the posterior has a mode
            (:mod:`~pgen.inference.kernels.mode_metric`; a funnel has none and starts
            as Stan does); ``"identity"``: Stan's start. ``config["mode_metric"]`` says
            per chain whether the mode was used, or why not.
        step_size: initial step size (``None``: found by a heuristic).
        num_steps: leapfrog steps per HMC transition.
        log_likelihood: store the pointwise log-likelihood of observed sites per draw
            (for ``arviz.loo``/``waic``). Not for a model with enumerated discrete sites,
            whose pointwise likelihood would depend on the discrete values drawn.
        posterior_predictive: also draw the observed sites from the posterior predictive.
        warn: issue ``RuntimeWarning`` s for R-hat > 1.01, low ESS and divergences.
        checkpoint: a folder where each chain of pgen's ``"nuts"``/``"hmc"`` is saved every
            ``checkpoint_every`` iterations and when it finishes (``chain-<k>.pt``,
            atomic writes; :mod:`pgen.inference.mcmc.checkpoint`): draws so far, adapted
            step size and mass matrix, last point, random state. A folder that already
            holds a run is refused unless ``resume``.
        checkpoint_every: iterations between checkpoints (>= 1).
        resume: continue the run in ``checkpoint``: finished chains are taken as they
            are, the others go on from their last checkpoint, with the same draws as a
            run never stopped. The settings and data must be those of the run.
        model_kwargs: keyword arguments for the model whose names are also options here
            (``seed=``, ``draws=``) or Pyro's option names (``num_samples=``), which
            ``**kwargs`` refuses.

    Discrete latent sites with finite support are summed out of the density (Pyro's
    enumeration; :mod:`pgen.inference.potential`) and drawn afterwards from their
    conditional at each draw, so the result holds them too; ``config["enumerated"]``
    names them.

    A point where the model's log density or gradient cannot be computed (the model
    raises, or a value is not finite) is rejected as a divergence and sampling goes on
    (Stan's rule); :attr:`MCMCResult.rejections` counts the reasons. Ctrl-C, or a chain
    that fails, returns the chains that had finished, marked ``partial``.

    Returns:
        An :class:`MCMCResult`.

    Raises:
        ValueError, TypeError: bad arguments (Pyro-style option names included), a model
            with discrete latent sites of infinite support, or arguments the model cannot be called with; each
            names the problem.
        KeyboardInterrupt: Ctrl-C before any chain finished.

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
    seed = rng.check_seed("seed", seed)
    check_option_names(kwargs)
    if model_kwargs is not None and not isinstance(model_kwargs, Mapping):
        raise TypeError(f"model_kwargs must be a dict, got {type(model_kwargs).__name__}")
    clash = sorted(set(kwargs) & set(model_kwargs or {}))
    if clash:
        raise TypeError(f"{clash} given both as keyword arguments and in model_kwargs")
    args, kwargs = model_arguments(args, {**kwargs, **(model_kwargs or {})})
    if device is not None:
        device = resolve_device(device)
        args, kwargs = to_device(args, device), to_device(kwargs, device)
        module = getattr(model, "__self__", None)
        if isinstance(module, torch.nn.Module):
            module.to(device)
    parallel = _use_processes(parallel, chains, kernel, device_of(args, kwargs))
    if callable(getattr(init, "posterior", None)) or isinstance(init, VIPosterior):
        init = GuideStart(init)  # a fitted guide: chains start at its draws, metric at its covariance
    checkpoint_every = check_int("checkpoint_every", checkpoint_every, minimum=1)
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=, the folder of the run to continue")
    if checkpoint is not None and current_group() is not None:
        raise ValueError(
            "checkpoint= is not available for chains spread over the ranks of a torch.distributed "
            "job; run pgen.sample with a checkpoint in one process"
        )
    if checkpoint is not None and not (isinstance(kernel, str) or isinstance(kernel, HMC)):
        raise ValueError(
            f"checkpoint= works with pgen's 'nuts' and 'hmc' kernels; kernel {type(kernel).__name__} "
            "cannot save its state"
        )
    k = make_kernel(
        kernel,
        model,
        jit=jit,
        init=init,
        target_accept=target_accept,
        max_tree_depth=max_tree_depth,
        dense_mass=dense_mass,
        metric_init=metric_init,
        step_size=step_size,
        num_steps=num_steps,
    )
    kernel_name = kernel if isinstance(kernel, str) else type(kernel).__name__
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(chains)]
    store = None
    if checkpoint is not None:
        settings = {
            "kernel": kernel_name,
            "chains": chains,
            "warmup": warmup,
            "draws": draws,
            "seed": seed,
            "target_accept": target_accept,
            "max_tree_depth": max_tree_depth,
            "dense_mass": dense_mass,
            "metric_init": metric_init,
            "num_steps": num_steps,
            "jit": bool(jit),
        }
        store = ChainStore(
            checkpoint, every=checkpoint_every, settings=settings, args=args, kwargs=kwargs, resume=resume
        )
    try:
        with rng.forked():
            runs, wall, stopped = _run_chains(
                k, seeds, warmup, draws, args, kwargs, progress=progress, parallel=parallel, store=store
            )
            samples, stats = _collect(runs, k)
            potential = getattr(k, "potential", None)
            enumerated = list(getattr(potential, "enumerated", None) or [])
            if enumerated:  # summed out while sampling; drawn now from their conditional
                samples = {**samples, **discrete_draws(potential, samples, seed + 2)}
                log_likelihood = False  # a pointwise likelihood would depend on the drawn values
            loglik, samples, posterior_predictive_draws, observed = _model_values(
                model,
                samples,
                args,
                kwargs,
                seed,
                log_likelihood=log_likelihood,
                predictive=posterior_predictive,
                trace=getattr(getattr(k, "potential", None), "prototype", None),
            )
    finally:
        if store is not None:
            store.close()
    return _result(
        samples,
        stats,
        runs,
        wall,
        loglik,
        posterior_predictive_draws,
        observed,
        stopped,
        seeds=[run["seed"] for run in runs],
        warn=warn,
        kernel_name=kernel_name,
        kernel=kernel,
        k=k,
        config={
            "kernel": kernel_name,
            "chains": chains,
            "batch_chains": getattr(k, "batch_chains", None),
            "warmup": warmup,
            "draws": draws,
            "seed": seed,
            "jit": bool(jit),
            "compiled": _compiled(k),
            "mode_metric": [run.get("mode_metric") for run in runs],
            "init": init if isinstance(init, str) else ("guide" if isinstance(init, GuideStart) else "dict"),
            "parallel": parallel,
            "target_accept": target_accept,
            "max_tree_depth": max_tree_depth,
            "dense_mass": dense_mass,
            "metric_init": metric_init,
            "enumerated": enumerated,
            "checkpoint": None if checkpoint is None else str(checkpoint),
        },
    )


def _result(
    samples,
    stats,
    runs,
    wall,
    loglik,
    predictive,
    observed,
    stopped,
    *,
    seeds,
    warn,
    kernel_name,
    kernel,
    k,
    config,
):
    """Summary, warnings, ArviZ groups and timings of a run."""
    chains, warmup, draws = len(next(iter(samples.values()))), config["warmup"], config["draws"]
    summary = summarize(samples)
    divergences = int(stats["diverging"].sum()) if "diverging" in stats else 0
    depth = config["max_tree_depth"]
    hits = int((stats["tree_depth"] >= depth).sum()) if "tree_depth" in stats and kernel == "nuts" else 0
    rejections = sum((Counter(r.get("failures", {})) for r in runs), Counter())
    after_warmup = sum(r.get("failures_after_warmup", 0) for r in runs)
    messages = convergence_warnings(summary, divergences, chains, draws, hits)
    messages += rejection_warnings(rejections, after_warmup)
    messages += [
        f"chain {c + 1}: mass-matrix adaptation fell back at {note}"
        for c, run in enumerate(runs)
        for note in run.get("metric_notes", [])
    ]
    if stopped is not None:
        partial = f"the run is partial: {stopped}. The result holds the {chains} chain(s) that finished"
        messages.insert(0, f"{partial} (of {config['chains']}).")
    if warn:
        for message in messages:
            warnings.warn(message, RuntimeWarning, stacklevel=3)
    groups = {"posterior": samples, "sample_stats": dict(stats), "observed_data": observed}
    if loglik:
        groups["log_likelihood"] = loglik
    if predictive:
        groups["posterior_predictive"] = predictive
    with warnings.catch_warnings():
        # batched kernels run thousands of chains with few draws, which ArviZ suspects
        warnings.filterwarnings("ignore", message="More chains .* than draws", category=UserWarning)
        idata = to_inference_data(groups, attrs={"inference_library": "pgen", "kernel": kernel_name})
    ess_values = summary["ess_bulk"].to_numpy() if len(summary) else np.array([])
    min_ess = float(np.nanmin(ess_values)) if np.isfinite(ess_values).any() else float("nan")
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
        partial=stopped is not None,
        stop_reason=stopped,
        rejections=dict(rejections),
    )


def _run_chains(
    k, seeds, warmup, draws, args, kwargs, *, progress: bool, parallel: bool, store=None, spread=True
):
    """Every chain's raw run, the wall time of all of them, and why they stopped early
    (``None`` when every chain finished). Chains that finished are kept when a later one
    fails or Ctrl-C stops the run; if none had finished, the error is raised. In a
    ``torch.distributed`` job (and ``spread``) the chains are spread over the ranks."""
    group = current_group() if spread else None
    if group is not None and getattr(k, "batch_chains", None) is None:
        return _run_chains_over_ranks(
            group, k, seeds, warmup, draws, args, kwargs, progress=progress, parallel=parallel
        )
    bars = Bars(len(seeds), warmup, draws, progress, parallel)
    start = time.perf_counter()
    stopped = None
    try:
        if isinstance(k, HMC) and ((parallel and len(seeds) > 1) or store is not None):
            # trace/compile once, before forking (and for chains resumed as finished)
            k.potential = k._get_potential(args, kwargs)
        if parallel and len(seeds) > 1:
            runs = parallel_chains(k, seeds, warmup, draws, args, kwargs, bars, store)
        else:

            def report(chain, i, kern):
                bars.update(chain, i, kern.logging() if progress else None)

            runs = sequential_chains(k, seeds, warmup, draws, args, kwargs, report, store)
    except ChainsStopped as stop:
        if not stop.runs:
            if isinstance(stop.original, KeyboardInterrupt):
                raise KeyboardInterrupt(f"pgen.sample {stop.reason}; no chain had finished") from None
            raise stop.original from None
        runs, stopped = stop.runs, stop.reason
    finally:
        bars.close()
    return runs, time.perf_counter() - start, stopped


def _run_chains_over_ranks(group, k, seeds, warmup, draws, args, kwargs, *, progress: bool, parallel: bool):
    """Inside a ``torch.distributed`` job: rank ``r`` runs chains ``r, r + W, ...`` (each
    from its own seed, as in one process), and every rank receives all of them, in chain
    order, through one ``all_gather_object``."""
    start = time.perf_counter()
    mine = [seeds[i] for i in range(group.rank, len(seeds), group.world)]
    local, stopped = [], None
    if mine:
        local, _, stopped = _run_chains(
            k,
            mine,
            warmup,
            draws,
            args,
            kwargs,
            progress=progress and group.is_main,
            parallel=parallel,
            spread=False,
        )
    gathered = group.gather((local, stopped))
    runs = []
    for chain in range(len(seeds)):
        rank_runs = gathered[chain % group.world][0]
        if chain // group.world < len(rank_runs):
            runs.append(rank_runs[chain // group.world])
    reasons = [reason for _, reason in gathered if reason is not None]
    return runs, time.perf_counter() - start, reasons[0] if reasons else None


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _use_processes(parallel, chains: int, kernel, device: torch.device) -> bool:
    """Whether to run the chains in forked processes (see ``sample``'s ``parallel``)."""
    fork = "fork" in multiprocessing.get_all_start_methods()
    on_gpu = device.type != "cpu"
    if parallel == "auto":
        cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
        return chains > 1 and isinstance(kernel, str) and fork and _cores() > 1 and not cuda and not on_gpu
    if not isinstance(parallel, bool):
        raise ValueError(f"parallel must be True, False or 'auto'; got {parallel!r}")
    if parallel and not fork:
        raise ValueError("parallel=True needs the 'fork' start method (Linux, macOS); use parallel=False")
    if parallel and on_gpu:
        raise ValueError(
            f"parallel=True forks processes, which cannot share the {device} context; on a GPU the "
            "chains run one after another (parallel=False), or as one batch with a batched kernel"
        )
    return parallel


def _compiled(k) -> bool | None:
    """Whether the kernel's potential ran compiled (``None``: not a pgen HMC kernel)."""
    potential = getattr(k, "potential", None)
    return None if potential is None else potential.compiled is not None


def _collect(runs: list[dict], k) -> tuple[dict, dict]:
    """Constrained draws and statistics, ``(chain, draw, ...)``, over all runs (a batched
    kernel's chains unbatched)."""
    transforms = getattr(k, "transforms", None) or runs[0]["transforms"] or {}
    batch = getattr(k, "batch_chains", None)  # a kernel that runs chains as one batch
    if batch is not None:
        runs = [unbatch(r, batch) for r in runs]
    unconstrained = {name: np.concatenate([r["params"][name] for r in runs]) for name in runs[0]["params"]}
    stats = {key: np.concatenate([r["stats"][key] for r in runs]) for key in runs[0]["stats"]}
    potential = getattr(k, "potential", None)
    return constrain(unconstrained, transforms, getattr(potential, "device", None)), stats


def _model_values(model, latent, args, kwargs, seed, *, log_likelihood: bool, predictive: bool, trace=None):
    """The pointwise log-likelihood, the draws with ``pyro.deterministic`` sites added,
    the posterior predictive draws (if asked) and the observed data."""
    observed, dtypes, deterministic = model_sites(model, args, kwargs, trace)
    names = list(observed)
    loglik, samples = {}, latent
    if (log_likelihood and names) or deterministic:
        loglik, values = pointwise(
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
    draws = {}
    if predictive and names:
        # deterministic sites are conditioned too: unconditioning them would resample them
        draws, _ = pointwise(model, samples, dtypes, args, kwargs, names, [], predictive=True, seed=seed + 1)
    return loglik, samples, draws, {n: v.cpu().numpy() for n, v in observed.items()}


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
