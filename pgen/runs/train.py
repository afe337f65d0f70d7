"""``pgen train``: a new run, checked completely before anything is written; and
``pgen train --resume``: a run continued from its checkpoint.

Every default of a run is defined once: :data:`~pgen.runs.options.RUN_EPOCHS` and the
engine's own defaults (:class:`pgen.inference.svi.FitConfig`); a family adds its
objective and its treatment of image data.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__, data, families, io
from ..devices import resolve_device
from ..inference import fit
from ..inference.elbo import OBJECTIVES, make_objective
from ..inference.svi import FitConfig, Interrupted
from ..inference.svi.distributed import current_group
from ..models import registry
from .figures import make_figures
from .folder import CHECKPOINT, CONFIG, HISTORY, MODEL, RunFolder
from .model import build_model
from .options import FIT_KEYS, RUN_EPOCHS

__all__ = ["train", "resume", "ensure"]


@dataclass
class _Plan:
    """A checked run: configuration, model, data; nothing written yet."""

    cfg: dict
    family: families.Family
    model: Any
    train: tuple
    val: tuple | None
    transform: Any


def _fit_record(fit_args: dict | None, family, model_name: str) -> dict:
    given = dict(fit_args or {})
    unknown = sorted(set(given) - set(FIT_KEYS))
    if unknown:
        raise ValueError(f"unknown fit arguments {unknown}; a run takes {list(FIT_KEYS)}")
    given["objective"] = family.check_objective(model_name, given.get("objective"))
    record = {"seed": 0, "batch_size": FitConfig.batch_size, **given}
    if "epochs" not in record and "steps" not in record:
        record["epochs"] = RUN_EPOCHS
    # every setting checked now, by the engine's own checks, before anything is written
    FitConfig(**record)
    if record["objective"] in OBJECTIVES:
        make_objective(
            record["objective"], num_particles=record.get("num_particles"), alpha=record.get("alpha")
        )
    return record


def _plan(cfg: dict) -> _Plan:
    """Load the data, build the model and check everything ``cfg`` asks for."""
    family = families.of_model(cfg["model"])
    d = cfg["data"]
    split = data.load_split(d, "train", stream=family.streams_data)
    if split.transform is not None and not family.redraws_data:
        raise ValueError(
            f"binarize={d['binarize']!r} re-draws the images of each minibatch, which {cfg['model']} does "
            "not see whole (its data are made from whole images); use binarize='threshold' or 'static'"
        )
    (x, y), val = data.split_validation(split, d["val_fraction"], d["seed"])
    if cfg.get("monitor_test"):
        if val is not None or cfg["fit"].get("patience") is not None:
            raise ValueError(
                "monitor_test draws the test curve only; it cannot be combined with a "
                "validation split or patience (that would select on test data)"
            )
        test = data.load_split(d, "test")
        val = (test.x, test.y)
    if val is None and cfg["fit"].get("patience") is not None:
        raise ValueError(
            "patience needs val_data: early stopping watches the validation bound; hold out a validation "
            "split with val_fraction (--val-fraction)"
        )
    m = build_model(cfg, x, y)
    x, y = family.prepare(m, x, y, train=True)
    if val is not None:
        val = family.prepare(m, *val, train=False)
    return _Plan(cfg, family, m, (x, y), val, split.transform)


def _new_config(model, model_args, data_cfg, fit_args, objective_args, monitor_test) -> dict:
    spec = registry.get(model)  # an unknown model name fails here, before anything is written
    family = families.get(spec.family)
    cfg = {
        "pgen_version": __version__,
        "model": model,
        "model_args": dict(model_args or {}),
        "data": data_cfg or data.data_config("digits", default_binarize=family.image_data),
        "monitor_test": bool(monitor_test),
        "fit": _fit_record(fit_args, family, model),
    }
    completed = family.complete_objective_args(model, dict(objective_args or {}))
    if completed is not None:
        cfg["objective_args"] = completed
    return cfg


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
    device=None,
):
    """Train a registered model into a new run folder.

    Everything is checked (arguments, data, the model built, the fit settings, the
    folder writable and free) before ``config.json`` is written; a folder whose run
    stopped before its first checkpoint is taken over.

    Args:
        run_dir: the folder; it must not hold a started run (continue one with :func:`resume`).
        model: registered model name (``pgen.models.registry.names()``).
        model_args: constructor arguments, except those read off the data.
        data_cfg: from :func:`pgen.data.data_config` (default: digits, as the family treats images).
        fit_args: ``pgen.fit`` keyword arguments (:data:`FIT_KEYS`).
        objective_args: options of the family's objective (energy models:
            ``contrastive_divergence``'s ``method``, ``k``, ...).
        monitor_test: draw the test split's bound after each epoch in the training
            curve; a monitor only (it cannot be combined with ``patience``).
        progress: show progress bars.
        figures: write the figures.
        device: where to train (``pgen.fit``'s ``device``); not part of the run's
            configuration, so a run may be resumed elsewhere. The trained model comes
            back to the CPU for its figures and ``model.pt``.

    Returns:
        ``(model, SVIResult)``.
    """
    folder = RunFolder(run_dir)
    if device is not None:
        resolve_device(device)  # a GPU that is not here is refused before the folder is touched
    cfg = _new_config(model, model_args, data_cfg, fit_args, objective_args, monitor_test)
    plan = _plan(cfg)
    group = current_group()
    if group is not None and not group.is_main:  # rank 0 owns the folder; the others train
        group.any(False)  # wait for rank 0 to have claimed it and written config.json
        return _run(folder, plan, resume=False, progress=progress, figures=figures, device=device)
    folder.check_writable()
    with folder.lock():
        folder.claim()
        spec = registry.get(model)
        cfg["model_args"] = {k: v for k, v in plan.model.config.items() if k not in spec.reads}
        folder.write_json(CONFIG, cfg)
        if group is not None:
            group.any(False)
        return _run(folder, plan, resume=False, progress=progress, figures=figures, device=device)


def _budget(folder: RunFolder, cfg: dict, epochs: int | None, steps: int | None) -> dict:
    """The fit record with a new budget, checked against what the checkpoint has done."""
    from ..checks import check_int

    if epochs is not None and steps is not None:
        raise ValueError("give at most one of epochs and steps")
    if epochs is None and steps is None:
        return cfg["fit"]
    key, value = ("epochs", epochs) if epochs is not None else ("steps", steps)
    value = check_int(key, value, minimum=1)
    if folder.file(CHECKPOINT).exists():
        saved = io.load(folder.file(CHECKPOINT), kind="svi")
        done = saved["epoch"] if key == "epochs" else saved["step"]
        if value <= done:
            raise ValueError(
                f"{folder.path} has already trained {done} {key}; --{key} is the total to train to, "
                f"so it must be more than {done} to train further (got {value})"
            )
    record = {k: v for k, v in cfg["fit"].items() if k not in ("epochs", "steps")}
    return {**record, key: value}


def resume(
    run_dir: str | Path,
    *,
    epochs: int | None = None,
    steps: int | None = None,
    progress: bool = True,
    figures: bool = True,
    device=None,
):
    """Continue a run from its checkpoint, optionally to more epochs or steps in total,
    on ``device`` (any: checkpoints hold CPU tensors).

    A run that stopped before its first checkpoint starts again from its configuration.
    """
    folder = RunFolder(run_dir)
    if device is not None:
        resolve_device(device)
    group = current_group()
    main = group is None or group.is_main
    if main:
        folder.check_writable()
    with folder.lock() if main else contextlib.nullcontext():
        cfg = folder.read_config()
        cfg["fit"] = _budget(folder, cfg, epochs, steps)
        plan = _plan(cfg)
        resume = folder.file(CHECKPOINT).exists()
        if group is not None:
            group.any(False)  # every rank has read the folder before rank 0 writes to it
        if main:
            folder.write_json(CONFIG, cfg)
        return _run(folder, plan, resume=resume, progress=progress, figures=figures, device=device)


def _run(folder: RunFolder, plan: _Plan, *, resume: bool, progress: bool, figures: bool, device=None):
    cfg, family, m = plan.cfg, plan.family, plan.model
    fit_kw = dict(cfg["fit"])
    fit_kw["objective"] = family.build_objective(m, cfg)
    try:
        result = fit(
            m.model,
            m.guide,
            family.fit_data(*plan.train),
            val_data=None if plan.val is None else family.fit_data(*plan.val),
            transform=plan.transform,
            checkpoint_dir=folder.path,
            resume=resume,
            progress=progress,
            device=device,
            **fit_kw,
        )
    except Interrupted as stop:
        saved = (
            f"checkpoint saved in {folder.path}" if folder.file(CHECKPOINT).exists() else "no checkpoint yet"
        )
        raise Interrupted(
            f"training interrupted ({stop.signal_name}) at step {stop.step}; {saved}: continue with "
            f"`pgen train --resume {folder.path}`",
            stop.signal,
            stop.step,
        ) from None
    if device is not None:
        m.to("cpu")  # figures and model.pt on the CPU, where the run's data are
    group = current_group()
    if group is not None and not group.is_main:
        return m, result  # rank 0 writes the run's files
    registry.save_model(folder.file(MODEL), m)
    folder.write_json(HISTORY, _history(result))
    if figures:
        make_figures(folder.path, m, cfg, result.history)
    return m, result


def _history(result) -> dict:
    return {
        **result.history,
        "stop_reason": result.stop_reason,
        "message": result.message,
        "best_epoch": result.best_epoch,
        "wall_time": result.wall_time,
        "steps_per_second": result.steps_per_second,
    }


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
    it if it was interrupted, and with ``num_samples`` evaluate it unless
    ``metrics.json`` exists. For scripts that fill a table from several runs and may be
    stopped and started again.

    Returns:
        ``(model, metrics)``, ``metrics`` being ``None`` without ``num_samples``.
    """
    from .evaluate import evaluate
    from .model import load_run_model

    folder = RunFolder(run_dir)
    if folder.state == "finished":
        m = load_run_model(run_dir)
    elif folder.state in ("interrupted", "configured"):
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
    if not folder.file("metrics.json").exists():
        evaluate(run_dir, num_samples=num_samples, progress=progress)
    return m, folder.read_metrics()
