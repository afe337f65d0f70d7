"""What :func:`pgen.fit` returns, and the error it raises on a non-finite step."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyro
import torch

__all__ = ["SVIResult", "NonFiniteLossError"]


class NonFiniteLossError(FloatingPointError):
    """A training step produced a non-finite loss or gradient.

    Attributes:
        step: the global step (0-based) that failed.
        epoch: the epoch (0-based) it belonged to.
        site: what the engine found when it re-ran the step: the first site whose
            value, distribution parameters or log-density is non-finite, or the
            parameter holding non-finite values.
        result: the :class:`SVIResult` up to the failure, with the restored parameters.
    """

    def __init__(self, message: str, *, step: int, epoch: int, site: str, result: SVIResult):
        super().__init__(message)
        self.step, self.epoch, self.site, self.result = step, epoch, site, result


@dataclass(frozen=True, repr=False)
class SVIResult:
    """What :func:`fit` returns.

    Attributes:
        losses: the objective of every step: the negative bound estimated on the
            minibatch and scaled to the full data (nats), shape ``(num_steps,)``.
        history: per completed epoch: ``epoch`` (1-based), ``step`` (steps so far),
            ``train_elbo`` (mean over the epoch's minibatches of the bound, in nats per
            example; for ``iwae``/``renyi`` the importance-weighted bound), ``val_elbo``
            (the same bound on ``val_data``, ``None`` without it) and ``seconds``
            (training time so far). A run that stops mid-epoch adds a final row with
            ``partial=True``.
        wall_time: seconds spent training, summed over resumed runs.
        steps_per_second: ``num_steps / wall_time``.
        params: the fitted parameters by Pyro name, constrained, detached copies. For
            pgen's models they are also in the model object itself.
        checkpoint_path: the last checkpoint written, or ``None``.
        num_steps: optimizer steps taken in total.
        epochs_completed: full passes over the data.
        stop_reason: ``"completed"``, ``"early_stopping"`` or ``"nonfinite"``.
        message: a sentence saying why training stopped.
        best_epoch: with ``patience``: the epoch (1-based) of the best validation bound,
            whose parameters were restored at the end.
        best_val_elbo: that best validation bound (nats per example).
        step_times: wall seconds of each step, shape ``(num_steps,)``.
        config: the settings of the run (JSON-able).
    """

    losses: np.ndarray
    history: dict[str, list]
    wall_time: float
    steps_per_second: float
    params: dict[str, torch.Tensor]
    checkpoint_path: Path | None
    num_steps: int
    epochs_completed: int
    stop_reason: str
    message: str
    best_epoch: int | None
    best_val_elbo: float | None
    step_times: np.ndarray
    config: dict[str, Any]
    param_state: dict = field(repr=False, default_factory=dict)
    model: Callable | None = field(repr=False, default=None)
    guide: Callable | None = field(repr=False, default=None)
    model_args: tuple = field(repr=False, default=())
    model_kwargs: dict = field(repr=False, default_factory=dict)

    def __repr__(self) -> str:
        h = self.history
        last = h["train_elbo"][-1] if h.get("train_elbo") else None
        val = h["val_elbo"][-1] if h.get("val_elbo") else None
        parts = [
            f"{self.num_steps} steps",
            f"{self.epochs_completed} epochs",
            f"stop_reason={self.stop_reason!r}",
            f"train_elbo={last:.4g}" if last is not None else None,
            f"val_elbo={val:.4g}" if val is not None else None,
            f"{self.wall_time:.1f} s",
            f"{len(self.params)} parameter tensors",
        ]
        return "SVIResult(" + ", ".join(p for p in parts if p) + ")"

    def posterior(self, num_draws: int = 1000, seed: int = 0, vectorize: bool = True):
        """Draws from the fitted guide as ``InferenceData``, with the PSIS k-hat of the
        importance ratios log p - log q (how far to trust the fit): a
        :class:`pgen.inference.guides.VIPosterior`. For models of global parameters
        (Bayesian models fitted with ``data=None`` or full-batch data). ``vectorize``:
        as in :func:`~pgen.inference.guides.vi_posterior`.

        Example:
            >>> post = pgen.fit(model, guide, None, model_args=(X, y), steps=2000).posterior()
            >>> post.khat, arviz.summary(post.inference_data)
        """
        from ..guides import vi_posterior

        if self.model is None:
            raise ValueError("this SVIResult does not hold its model and guide")
        return vi_posterior(
            self.model,
            self.guide,
            self.model_args,
            self.model_kwargs,
            num_draws=num_draws,
            seed=seed,
            param_state=self.param_state,
            vectorize=vectorize,
        )

    @contextlib.contextmanager
    def param_scope(self):
        """Make this fit's parameters the active Pyro param store (for function-style
        models that use ``pyro.param``; pgen's models hold their parameters themselves).

        Example:
            >>> with result.param_scope():
            ...     samples = pyro.infer.Predictive(model, guide=guide, num_samples=100)(x)
        """
        with pyro.get_param_store().scope(self.param_state):
            yield
