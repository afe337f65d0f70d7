r"""Variational inference and MCMC on the same model, side by side, against a reference.

:func:`compare` fits one model with several methods (NUTS through :func:`pgen.sample`;
guides from :func:`pgen.inference.guides.make_guide` through :func:`pgen.fit`), and
measures each against a reference posterior (the exact one where known, else a long
independent NUTS run, or draws the user gives):

* time (whole run), ESS per second (MCMC), final ELBO and PSIS :math:`\hat k` (VI);
* per parameter: standardized mean error :math:`(\bar\theta_m - \bar\theta_{ref})/sd_{ref}`,
  sd ratio :math:`sd_m / sd_{ref}` (mean field's variance underestimate shows here),
  Wasserstein-1 distance between the marginals in reference sds
  :math:`\int_0^1 |F_m^{-1}(u) - F_{ref}^{-1}(u)|\,du / sd_{ref}`, and the share of the
  method's draws inside the reference's central 50% and 90% intervals (0.5 and 0.9
  when they agree);
* jointly: the energy distance (Székely & Rizzo 2013) between the method's and the
  reference's draws, both standardized by the reference, which sees wrong
  correlations that the marginals miss.
"""

from __future__ import annotations

import inspect
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checks import check_choice, check_float, check_int
from ..devices import resolve_device, to_device
from ..eval.arviz import flat_parameters
from ..eval.posterior import against_reference, energy_distance, wasserstein1
from .arguments import check_option_names, model_arguments
from .guide_init import INITS
from .guides import GUIDES, make_guide, vi_posterior
from .mcmc import KERNELS, sample
from .svi import fit

__all__ = ["compare", "Comparison", "METHODS", "energy_distance", "wasserstein1"]

METHODS = KERNELS + GUIDES


@dataclass
class Comparison:
    """What :func:`compare` returns.

    Attributes:
        table: ``pandas.DataFrame``, one row per method: ``kind``, ``seconds``,
            ``ess_per_second``, ``divergences``, ``elbo``, ``khat``, ``mean_abs_sme``,
            ``max_abs_sme``, ``mean_sd_ratio``, ``min_sd_ratio``, ``mean_w1``,
            ``energy``, ``coverage50``, ``coverage90`` (``error`` if a method failed).
        parameters: ``pandas.DataFrame``, one row per (method, parameter) with ``sme``,
            ``sd_ratio``, ``w1``, ``coverage50``, ``coverage90``, ``mean``, ``sd``,
            ``ref_mean``, ``ref_sd``.
        draws: ``{method: {parameter: (n,)}}`` pooled scalar draws (and ``"reference"``).
        inference_data: ``{method: arviz.InferenceData}``.
        results: ``{method: MCMCResult or (SVIResult, VIPosterior)}``.
        reference: how the reference was made.
    """

    table: Any
    parameters: Any
    draws: dict[str, dict[str, np.ndarray]]
    inference_data: dict[str, Any]
    results: dict[str, Any]
    reference: str
    errors: dict[str, str] = field(default_factory=dict)

    def to_markdown(self, digits: int = 3) -> str:
        """The method table as a GitHub markdown table."""
        return _markdown(self.table, digits)

    def to_csv(self, path: str | Path) -> Path:
        """Write the method table to ``path`` and the per-parameter table beside it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.table.to_csv(path)
        self.parameters.to_csv(path.with_name(path.stem + "_parameters.csv"), index=False)
        return path

    def __str__(self) -> str:
        return f"reference: {self.reference}\n" + self.table.to_string(float_format=lambda v: f"{v:.3g}")


def _markdown(frame, digits: int) -> str:
    cols = [frame.index.name or "method", *frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for index, row in frame.iterrows():
        cells = [str(index)]
        for value in row:
            if isinstance(value, float):
                cells.append("" if math.isnan(value) else f"{value:.{digits}g}")
            else:
                cells.append("" if value is None else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _pooled(samples: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{site: (chain, draw, ...)}`` -> ``{parameter: (chain * draw,)}``."""
    return {k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in flat_parameters(samples).items()}


def _reference_draws(reference, model, args, kwargs, *, seed, exact, ref_options, progress):
    if isinstance(reference, Mapping):
        draws = {k: np.asarray(v, dtype=np.float64)[None] for k, v in reference.items()}
        return _pooled(draws), "draws given by the user"
    if reference == "exact":
        posterior = exact
        if posterior is None:
            owner = getattr(model, "__self__", None)
            if owner is None or not hasattr(owner, "exact_posterior"):
                raise ValueError(
                    "reference='exact' needs the exact posterior: pass exact= (a "
                    "GaussianPosterior or a dict of draws), or use a pgen model with "
                    "exact_posterior (LinearRegression, RandomWalk, CorrelatedGaussian)"
                )
            posterior = owner.exact_posterior(*args, **kwargs)
        if isinstance(posterior, Mapping):
            return _pooled({k: np.asarray(v)[None] for k, v in posterior.items()}), "exact draws given"
        draws = posterior.sample(20000, seed=seed + 7)
        return _pooled({k: v[None] for k, v in draws.items()}), "exact posterior (20,000 draws)"
    if reference == "nuts":
        options = {"chains": 4, "warmup": 1000, "draws": 2500, "jit": True, **ref_options}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            run = sample(
                model,
                *args,
                seed=seed + 1000,
                progress=progress,
                log_likelihood=False,
                warn=False,
                **options,
                **kwargs,
            )
        text = (
            f"NUTS, {options['chains']} chains x {options['draws']} draws (independent run, min bulk "
            f"ESS {run.min_ess_bulk:.0f}, {run.divergences} divergences)"
        )
        return _pooled(run.samples), text
    raise ValueError(f"reference must be 'nuts', 'exact' or a dict of draws; got {reference!r}")


def _check_reference_options(options) -> dict:
    """``reference_options`` checked before the reference run: a dict of
    :func:`pgen.sample` options."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        kind = type(options).__name__
        raise TypeError(f"reference_options must be a dict of pgen.sample options, got {kind}")
    allowed = set(inspect.signature(sample).parameters) - {"model", "args", "kwargs", "model_kwargs"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        check_option_names(dict.fromkeys(unknown), "reference_options")
        allowed_text = ", ".join(sorted(allowed))
        raise ValueError(f"reference_options has unknown option(s) {unknown}; allowed: {allowed_text}")
    for name in ("chains", "draws"):
        if name in options:
            check_int(f"reference_options[{name!r}]", options[name], minimum=1)
    if "warmup" in options:
        check_int("reference_options['warmup']", options["warmup"], minimum=0)
    return dict(options)


def _check_methods(methods) -> list[str]:
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    methods = list(methods)
    if not methods:
        raise ValueError(f"methods is empty; choose from {', '.join(METHODS)}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; allowed: {', '.join(METHODS)}")
    if len(set(methods)) != len(methods):
        raise ValueError(f"methods lists a method twice: {methods}")
    return methods


def _run_mcmc(method, model, args, kwargs, settings) -> tuple[dict, Any, Any, dict]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        run = sample(model, *args, kernel=method, **settings["mcmc"], **kwargs)
    row = {"ess_per_second": run.ess_per_second, "divergences": run.divergences}
    return run.samples, run.inference_data, run, row


def _model_parameters(model, args, kwargs) -> dict:
    """The model's own parameters (``pyro.param``, a ``PyroModule``'s ``PyroParam``) at
    their current values: ``{name: constrained value}``, detached copies."""
    import torch
    from pyro import poutine

    with torch.random.fork_rng(devices=[]), torch.no_grad():
        trace = poutine.trace(model, param_only=True).get_trace(*args, **kwargs)
    return {
        name: site["value"].detach().clone() for name, site in trace.nodes.items() if site["type"] == "param"
    }


def _run_vi(method, model, args, kwargs, settings) -> tuple[dict, Any, Any, dict]:
    # The model's own parameters stay at their values, as they do for MCMC: a fit would
    # otherwise learn them too (type-II maximum likelihood; a GP's noise went from 1.0 to
    # 0.043) and compare VI on one model against NUTS on another.
    from pyro import poutine

    if settings["model_params"]:
        model = poutine.substitute(model, data=settings["model_params"])
    init = "median" if method == "flow" else settings["guide_init"]
    guide = make_guide(method, model, init=init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        svi = fit(
            model, guide, None, model_args=tuple(args), model_kwargs=kwargs, jit=False, **settings["svi"]
        )
    post = vi_posterior(model, guide, tuple(args), kwargs, param_state=svi.param_state, **settings["draws"])
    return post.samples, post.inference_data, (svi, post), {"elbo": post.elbo, "khat": post.khat}


_COLUMNS = [
    "kind",
    "seconds",
    "ess_per_second",
    "divergences",
    "elbo",
    "khat",
    "mean_abs_sme",
    "max_abs_sme",
    "mean_sd_ratio",
    "min_sd_ratio",
    "mean_w1",
    "energy",
    "coverage50",
    "coverage90",
]


def _summary_row(per_param: list[dict], joint: dict) -> dict:
    import pandas as pd

    frame = pd.DataFrame(per_param)
    return {
        "mean_abs_sme": float(frame["sme"].abs().mean()),
        "max_abs_sme": float(frame["sme"].abs().max()),
        "mean_sd_ratio": float(frame["sd_ratio"].mean()),
        "min_sd_ratio": float(frame["sd_ratio"].min()),
        "mean_w1": float(frame["w1"].mean()),
        "energy": joint["energy"],
        "coverage50": float(frame["coverage50"].mean()),
        "coverage90": float(frame["coverage90"].mean()),
    }


class _Table:
    """The rows so far, as a :class:`Comparison` at any moment."""

    def __init__(self, ref, ref_text):
        self.rows, self.param_rows, self.pooled = [], [], {"reference": ref}
        self.idatas, self.results, self.errors, self.ref_text = {}, {}, {}, ref_text

    def comparison(self) -> Comparison:
        import pandas as pd

        columns = _COLUMNS + (["error"] if self.errors else [])
        table = pd.DataFrame(self.rows).set_index("method").reindex(columns=columns)
        return Comparison(
            table,
            pd.DataFrame(self.param_rows),
            self.pooled,
            self.idatas,
            self.results,
            self.ref_text,
            self.errors,
        )


def compare(
    model: Callable,
    *args,
    methods: Sequence[str] = ("nuts", "meanfield", "fullrank", "flow"),
    reference="nuts",
    seed: int = 0,
    exact=None,
    chains: int = 4,
    warmup: int = 500,
    draws: int = 1000,
    jit: bool = True,
    steps: int = 3000,
    lr: float = 0.02,
    lr_final: float = 0.001,
    num_particles: int = 1,
    guide_init: str = "mode",
    num_draws: int = 2000,
    reference_options: Mapping | None = None,
    progress: bool = True,
    on_result: Callable[[Comparison], None] | None = None,
    device=None,
    **kwargs,
) -> Comparison:
    """Run several inference methods on ``model(*args, **kwargs)`` and compare them.

    Args:
        model: a Pyro model with continuous latent sites (pgen's or the user's own).
        *args, **kwargs: its arguments (the data).
        methods: names from ``"nuts"``, ``"hmc"`` and the guide families
            (:data:`pgen.inference.guides.GUIDES`).
        reference: ``"nuts"`` (an independent long run: 4 chains x 2,500 draws, seed
            ``seed + 1000``), ``"exact"`` (the model's exact posterior, or ``exact=``), or
            a dict ``{site: draws (n, *shape)}``.
        seed: seeds every method.
        exact: the exact posterior for ``reference="exact"`` (a
            :class:`pgen.models.bayes.GaussianPosterior` or a dict of draws).
        chains, warmup, draws, jit: MCMC settings (``jit=True``: compiled potential).
        steps, lr, lr_final, num_particles: SVI settings (full-batch Adam, learning rate
            decaying from ``lr`` to ``lr_final``).
        guide_init: where the guides start, ``"mode"`` (the posterior mode; mean field
            and full rank also with their curvature there, :mod:`pgen.inference.guide_init`)
            or ``"median"`` (the prior medians, Pyro's default). ``flow`` always starts as
            a standard Normal.
        num_draws: draws from each fitted guide (and for its k-hat).
        reference_options: overrides for the reference NUTS run (e.g. ``{"draws": 5000}``).
        progress: progress bars.
        on_result: called with the comparison so far after each method, e.g. to write
            the table as it grows (a long comparison stopped midway keeps its rows).
        device: where every method runs (``"cpu"``, ``"cuda"``, ``"auto"``, ...): the
            model's tensor arguments move there first, and the potentials, guides and
            reference run follow them. ``None``: where they are.

    Every argument is checked before the reference run starts. The model's own
    parameters (``pyro.param``, a ``PyroModule``'s ``PyroParam``: a GP's kernel and noise)
    are held at their values for every method, so that all of them target the same
    posterior: MCMC cannot learn them, and the guides are not let to either.

    Returns:
        A :class:`Comparison`. A method that fails (e.g. Laplace at a degenerate mode)
        gets a row with its error instead of stopping the others.

    Example:
        >>> cmp = pgen.compare(model, X, y=y, methods=["nuts", "meanfield", "fullrank"])
        >>> print(cmp.to_markdown())
    """
    methods = _check_methods(methods)
    seed = check_int("seed", seed, minimum=0)
    check_option_names(kwargs, "pgen.compare")
    args, kwargs = model_arguments(args, kwargs)
    if device is not None:
        device = resolve_device(device)
        args, kwargs = to_device(args, device), to_device(kwargs, device)
        module = getattr(model, "__self__", None)
        if isinstance(module, torch.nn.Module):
            module.to(device)
    reference_options = _check_reference_options(reference_options)
    settings = {
        "mcmc": {
            "chains": check_int("chains", chains, minimum=1),
            "warmup": check_int("warmup", warmup, minimum=0),
            "draws": check_int("draws", draws, minimum=1),
            "seed": seed,
            "jit": bool(jit),
            "progress": progress,
        },
        "svi": {
            "steps": check_int("steps", steps, minimum=1),
            "lr": check_float("lr", lr, positive=True),
            "lr_final": check_float("lr_final", lr_final, positive=True),
            "num_particles": check_int("num_particles", num_particles, minimum=1),
            "seed": seed,
            "progress": progress,
        },
        "guide_init": check_choice("guide_init", guide_init, INITS),
        "draws": {"num_draws": check_int("num_draws", num_draws, minimum=2), "seed": seed},
        "model_params": _model_parameters(model, args, kwargs),
    }
    rng = np.random.default_rng(seed)
    ref, ref_text = _reference_draws(
        reference,
        model,
        args,
        kwargs,
        seed=seed,
        exact=exact,
        ref_options=reference_options,
        progress=progress,
    )
    table = _Table(ref, ref_text)
    for method in methods:
        row = {"method": method, "kind": "mcmc" if method in KERNELS else "vi"}
        start = time.perf_counter()
        try:
            run = _run_mcmc if method in KERNELS else _run_vi
            samples, table.idatas[method], table.results[method], extra = run(
                method, model, args, kwargs, settings
            )
        except Exception as error:  # one failing method must not stop the comparison
            table.errors[method] = row["error"] = f"{type(error).__name__}: {error}"
        else:
            row.update(seconds=time.perf_counter() - start, **extra)
            table.pooled[method] = _pooled(samples)
            per_param, joint = against_reference(table.pooled[method], ref, rng)
            table.param_rows.extend({"method": method, **r} for r in per_param)
            row.update(_summary_row(per_param, joint))
        table.rows.append(row)
        if on_result is not None:
            on_result(table.comparison())
    return table.comparison()
