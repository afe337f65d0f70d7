"""``pgen.fit``: check the arguments and the data, build the engine, run the loop."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyro
import torch

from ... import rng
from ...data.files import ImageFiles
from ...devices import resolve_device, to_device
from ..elbo import _LossAndSurrogate, make_objective
from .checkpoint import Checkpoints
from .config import FitConfig
from .data import owner, prepare, sha1, without_data
from .diagnose import check_callables
from .distributed import current_group
from .loop import FitLoop
from .result import NonFiniteLossError, SVIResult
from .step import SVIEngine

__all__ = ["fit"]


def fit(
    model: Callable,
    guide: Callable,
    data=None,
    *,
    objective="elbo",
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int | None = 128,
    lr: float = 1e-3,
    lr_final: float | None = None,
    optimizer="adam",
    clip_norm: float | None = None,
    val_data=None,
    seed: int = 0,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 1,
    resume: bool = False,
    patience: int | None = None,
    progress: bool = True,
    num_particles: int | None = None,
    alpha: float | None = None,
    transform: Callable | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    model_args: tuple = (),
    shuffle: bool = True,
    plate_name: str = "data",
    jit: bool = False,
    on_nonfinite: str = "raise",
    device=None,
) -> SVIResult:
    r"""Fit a Pyro model/guide pair by stochastic variational inference.

    Maximizes a variational bound on :math:`\sum_i \log p(x_i)` with minibatches of
    ``batch_size`` examples. ``model`` and ``guide`` are called as
    ``model(x_batch, y=y_batch, **model_kwargs)`` (``y`` only when ``data`` has it).
    Each fit has its own Pyro param store: two fits in one process never share or
    overwrite each other's parameters. The caller's random streams (torch, Python,
    NumPy) are left as they were: the fit draws from its own, seeded with ``seed``.

    Args:
        model: the generative model, e.g. ``vae.model`` or a user's function. Its own
            parameters (``pyro.param``, ``pyro.module`` networks, a ``PyroModule``'s
            ``PyroParam`` such as a GP's noise) are fitted too, as Pyro's SVI fits them
            (a VAE's decoder; type-II maximum likelihood for a GP's hyperparameters), and
            a module's are changed in place. To hold them at their values, fit
            ``pyro.poutine.substitute(model, data={name: value})`` (as
            :func:`pgen.compare` does).
        guide: the variational family, e.g. ``vae.guide``. Every latent site of the
            model needs a guide site of the same name; a mismatch is named before
            training starts.
        data: ``x``, or a pair ``(x, y)``; tensors or numpy arrays with examples along
            the first dimension, or images on disk (:func:`pgen.data.open_images`: each
            minibatch is read when it is needed, and the model's ``validate_data`` sees
            the first 1,024 images). Validated: floating point, finite, non-empty; integer
            ``y`` must be valid labels. ``None`` for a model that takes its data (if
            any) in ``model_args``/``model_kwargs``, as Bayesian models written as
            ``model(X, y)`` do: then every step uses all of it (no minibatches) and an
            epoch is one step.
        objective: ``"elbo"`` (Monte Carlo KL), ``"meanfield"`` (closed-form KL),
            ``"iwae"``, ``"renyi"``, ``"enum"``, or a ``pyro.infer.ELBO`` object; see
            :func:`pgen.inference.elbo.make_objective`. A KL weight (beta) belongs to
            the model, not here.
        epochs: number of passes over the data. Give ``epochs`` or ``steps``.
        steps: number of optimizer steps.
        batch_size: examples per step; ``None`` for the full data each step.
        lr: learning rate.
        lr_final: with it, the learning rate decays exponentially from ``lr`` at the
            first step to ``lr_final`` at the last (set by ``steps``, or ``epochs``).
        optimizer: ``"adam"`` (fused), ``"adamw"``, ``"sgd"``, ``"rmsprop"``, or a
            callable ``params -> torch.optim.Optimizer``.
        clip_norm: clip the gradient's total norm to this; also catches non-finite
            gradients at their own step, naming the parameters.
        val_data: ``x`` or ``(x, y)`` to evaluate the bound on after each epoch
            (no ``transform`` is applied to it).
        seed: seeds the fit's random streams and the shuffling; the same seed gives the
            same run.
        checkpoint_dir: folder for ``checkpoint.pt``, written atomically every
            ``checkpoint_every`` epochs, at the end, on early stopping and on Ctrl-C or
            SIGTERM. The folder must be writable (checked before training) and is
            locked against a second fit; a folder that already holds a checkpoint is
            refused unless ``resume=True``.
        checkpoint_every: epochs between checkpoints.
        resume: continue from ``checkpoint_dir/checkpoint.pt``. The continued run gives
            the same losses as an uninterrupted one; ``epochs``/``steps`` may be raised
            to train longer, but the settings that shape the trajectory must match
            (:meth:`FitConfig.resume_fields`).
        patience: stop after this many epochs without a better validation bound and
            restore the best parameters (needs ``val_data``).
        progress: show a tqdm progress bar.
        num_particles: samples per step (default 1; 5 for ``iwae``/``renyi``).
        alpha: the Rényi alpha for ``objective="renyi"``.
        transform: ``f(x_batch, generator=...) -> x_batch`` applied to each training
            minibatch, e.g. ``pgen.data.dynamic_binarize``; it must draw its random
            numbers from ``generator``.
        model_kwargs: extra keyword arguments for model and guide at every step.
        model_args: positional arguments for model and guide; only with ``data=None``
            (``model(*model_args, **model_kwargs)``).
        shuffle: reshuffle the data each epoch.
        plate_name: name of the model's data plate (:mod:`pgen.inference.svi.minibatch`).
        jit: compile the objective with ``torch.jit.trace`` (pgen objectives only), one
            trace per minibatch shape, for models whose structure does not depend on
            their values; :mod:`pgen.inference.svi.compile` says how compiled and eager
            are kept from disagreeing. Measured on an MLP VAE at batch 128 (one thread):
            1.04x a hand-written PyTorch loop per step, against 1.19x eager (README).
        on_nonfinite: on a non-finite loss or gradient, ``"raise"``
            :class:`NonFiniteLossError` or ``"warn"`` and return; either way training
            stops, the step is not applied and the parameters go back to the start of
            the epoch.

        device: where to train: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or
            ``"auto"`` (a GPU where there is one; :func:`pgen.devices.resolve_device`).
            The data, ``model_args``/``model_kwargs`` tensors and the modules the model
            and guide belong to are moved there first; parameters a guide creates follow
            the data. ``None`` (default) leaves everything where it is. A model that
            builds tensors of its own should make them on its data's device
            (``x.new_zeros(...)``, not ``torch.zeros(...)``). Resuming on another device
            is allowed: checkpoints hold CPU tensors and load anywhere.

    Returns:
        An :class:`SVIResult`.

    Raises:
        ValueError, TypeError: bad arguments, data, or a model/guide mismatch, naming them.
        OSError: ``checkpoint_dir`` cannot be written (checked before training).
        NonFiniteLossError: see ``on_nonfinite``.
        KeyboardInterrupt: on Ctrl-C or SIGTERM (:class:`~pgen.inference.svi.Interrupted`),
            after writing a checkpoint if ``checkpoint_dir``.

    Example:
        >>> vae = pgen.models.VAE(data_dim=64, latent_dim=2)
        >>> x, _ = pgen.data.load("digits", binarize="threshold")
        >>> result = pgen.fit(vae.model, vae.guide, x, epochs=20, seed=0)
        >>> result.history["train_elbo"][-1]   # nats per example
    """
    given = dict(locals())
    check_callables(model, guide)
    if device is not None:
        device = resolve_device(device)
        model_args, model_kwargs = to_device(model_args, device), to_device(model_kwargs, device)
        data, val_data = _data_to(data, device), _data_to(val_data, device)
        for fn in (model, guide):
            module = owner(fn)
            if module is not None:
                module.to(device)
    config = FitConfig(**{f.name: given[f.name] for f in dataclasses.fields(FitConfig)})
    if config.patience is not None and val_data is None:
        raise ValueError("patience needs val_data: early stopping watches the validation bound")
    model_kwargs = _check_arguments(model_kwargs, model_args, data, val_data, transform)
    called = (model, guide, model_args, dict(model_kwargs))
    fingerprint = None
    if data is None:
        model, guide, data, fingerprint = without_data(model, guide, model_args, model_kwargs)
        model_kwargs, config = {}, config.replace(batch_size=None)
    x, y, val = _checked_data(model, data, val_data, config.transform)
    objective_obj = make_objective(config.objective, num_particles=num_particles, alpha=alpha)
    if config.jit and not isinstance(objective_obj, _LossAndSurrogate):
        raise ValueError(
            "jit=True needs one of pgen's objectives ('elbo', 'meanfield', 'iwae', 'renyi'), "
            f"not {type(objective_obj).__name__}"
        )
    record = {
        **config.record(objective_obj),
        "n_train": len(x),
        "data_sha1": fingerprint or sha1(x, y),
        "n_val": None if val is None else len(val[0]),
        "val_sha1": None if val is None else sha1(*val),
    }
    group = current_group()
    with rng.forked(config.seed):
        engine = SVIEngine(
            model,
            guide,
            x,
            y,
            val,
            objective_obj,
            config,
            model_kwargs,
            record,
            group=group,
            split=fingerprint is None,
        )
        loop, param_state = _run(engine, config, has_data=fingerprint is None)
    if fingerprint is None:
        called = (called[0], called[1], (x,), {**called[3], **({} if y is None else {"y": y})})
    result = loop.result
    result = dataclasses.replace(
        result, model=called[0], guide=called[1], model_args=called[2], model_kwargs=called[3]
    )
    return _finish(result, loop, config)


def _check_arguments(model_kwargs, model_args, data, val_data, transform) -> dict:
    if model_kwargs is not None and not isinstance(model_kwargs, Mapping):
        raise TypeError(f"model_kwargs must be a dict, got {type(model_kwargs).__name__}")
    model_kwargs = dict(model_kwargs or {})
    if not isinstance(model_args, tuple):
        raise TypeError(f"model_args must be a tuple, got {type(model_args).__name__}")
    if data is None:
        if val_data is not None or transform is not None:
            raise ValueError("val_data and transform need data=; with data=None the model takes model_args")
    else:
        if model_args:
            raise ValueError(
                "model_args is for data=None (a model called as model(*model_args)); with data= "
                "the model is called as model(x_batch, y=y_batch, **model_kwargs)"
            )
        if "y" in model_kwargs:
            raise ValueError("pass y as part of data=(x, y), not in model_kwargs")
    return model_kwargs


def _checked_data(model, data, val_data, transform):
    """Data and validation data checked by the engine and by the model's own
    ``validate_data(x, y, *, name)`` when it has one."""
    module = owner(model)
    validate_data = getattr(module, "validate_data", None)
    classes = None if validate_data is not None else getattr(module, "num_classes", None)
    x, y = prepare(data, "data", classes)
    val = None if val_data is None else prepare(val_data, "val_data", classes)
    if validate_data is not None:
        checked, checked_y = _sample_of(x, y)
        if transform is not None:
            checked = transform(checked, generator=torch.Generator().manual_seed(0))
        validate_data(checked, checked_y, name="data")
        if val is not None:
            validate_data(*_sample_of(*val), name="val_data")
    return x, y, val


def _data_to(data, device):
    """``x`` or ``(x, y)`` (tensors, arrays or :class:`ImageFiles`) on ``device``."""
    if data is None:
        return None
    if isinstance(data, (tuple, list)):
        return type(data)(_data_to(d, device) for d in data)
    if isinstance(data, ImageFiles):
        return data.to(device)
    if isinstance(data, np.ndarray):
        data = torch.as_tensor(data)
    return data.to(device) if torch.is_tensor(data) else data


SAMPLE_CHECKED = 1024  # images of a data set on disk that the model's own checks see


def _sample_of(x, y):
    """All of ``x`` in memory; the first ``SAMPLE_CHECKED`` images of a set on disk
    (reading all of it would defeat reading on demand)."""
    if isinstance(x, ImageFiles):
        k = min(len(x), SAMPLE_CHECKED)
        return x[:k], None if y is None else y[:k]
    return x, y


def _run(engine: SVIEngine, config: FitConfig, *, has_data: bool):
    """Initialize and run the loop in a param-store scope of its own."""
    shuffle = torch.Generator().manual_seed(config.seed)
    checkpoints = Checkpoints(config.checkpoint_dir, resume=config.resume, main=engine.is_main)
    try:
        with pyro.get_param_store().scope() as param_state:
            engine.init(has_data)
            loop = FitLoop(engine, checkpoints, shuffle)
            if config.resume:
                loop.resume()
            stop_reason, message = loop.run()
            # the scope fills param_state in place when it closes
            loop.result = _result(loop, stop_reason, message, param_state)
    finally:
        checkpoints.release()
    return loop, param_state


def _result(loop: FitLoop, stop_reason: str, message: str, param_state: dict) -> SVIResult:
    s, e, c = loop.state, loop.engine, loop.config
    if c.patience is not None and s.best_params is not None and stop_reason != "nonfinite":
        with torch.no_grad():
            torch._foreach_copy_(e.params, s.best_params)
    store = pyro.get_param_store()
    return SVIResult(
        losses=np.asarray(s.losses, dtype="float64"),
        history=s.history_with_partial(e.batch, e.n),
        wall_time=s.seconds,
        steps_per_second=s.step / s.seconds if s.seconds > 0 else float("nan"),
        params={name: store[name].detach().clone() for name, _ in e.named_params},
        checkpoint_path=loop.checkpoints.written,
        num_steps=s.step,
        epochs_completed=s.epoch,
        stop_reason=stop_reason,
        message=message,
        best_epoch=s.best_epoch if c.patience is not None else None,
        best_val_elbo=s.best_val if c.patience is not None else None,
        step_times=np.asarray(s.step_times, dtype="float64"),
        config=dict(e.record),
        param_state=param_state,
    )


def _finish(result: SVIResult, loop: FitLoop, config: FitConfig) -> SVIResult:
    if result.stop_reason != "nonfinite":
        return result
    if config.on_nonfinite == "raise":
        raise NonFiniteLossError(
            result.message,
            step=loop.state.step,
            epoch=loop.state.epoch,
            site=loop.nonfinite_site,
            result=result,
        )
    warnings.warn(result.message, RuntimeWarning, stacklevel=3)
    return result
