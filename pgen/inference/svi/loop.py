"""The fit loop: epochs of minibatches, validation, early stopping, checkpoints, and
stopping cleanly on a non-finite step, Ctrl-C or SIGTERM."""

from __future__ import annotations

import contextlib
import signal
import threading
import time

import pyro
import torch
from tqdm.auto import tqdm

from .checkpoint import Checkpoints
from .diagnose import diagnose_nonfinite
from .state import SVIState
from .step import SVIEngine

__all__ = ["FitLoop", "Interrupted", "catch_signals"]


class Interrupted(KeyboardInterrupt):
    """A fit (or a run) was stopped by Ctrl-C or SIGTERM at a step boundary, after saving.

    Attributes:
        signal: the signal number (``signal.SIGINT`` or ``signal.SIGTERM``).
        step: the steps taken when it stopped.
    """

    def __init__(self, message: str, signum: int = signal.SIGINT, step: int | None = None):
        super().__init__(message)
        self.signal, self.step = signum, step

    @property
    def signal_name(self) -> str:
        return "SIGTERM" if self.signal == signal.SIGTERM else "Ctrl-C"


@contextlib.contextmanager
def catch_signals(flag: dict):
    """The first Ctrl-C or SIGTERM sets ``flag["signal"]`` (the loop then finishes its
    step, checkpoints and raises :class:`Interrupted`); a second one acts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, frame):
        flag["signal"] = signum
        old = previous[signum]
        fallback = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
        signal.signal(signum, old if callable(old) else fallback)

    for s in previous:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, old in previous.items():
            default = signal.default_int_handler if s == signal.SIGINT else signal.SIG_DFL
            signal.signal(s, old if old is not None else default)


class FitLoop:
    """Runs an initialized :class:`SVIEngine` to its budget of epochs or steps."""

    def __init__(self, engine: SVIEngine, checkpoints: Checkpoints, shuffle: torch.Generator):
        self.engine, self.checkpoints, self.shuffle = engine, checkpoints, shuffle
        self.config = engine.config
        self.state = SVIState()
        self.flag: dict = {}
        self.nonfinite_site: str | None = None

    @property
    def total(self) -> int:
        c = self.config
        return c.steps if c.steps is not None else c.epochs * self.engine.batches_per_epoch

    def done(self) -> bool:
        c, s = self.config, self.state
        return s.step >= c.steps if c.steps is not None else s.epoch >= c.epochs

    def save(self) -> None:
        self.checkpoints.save(self.engine, self.state, self.shuffle)

    def resume(self) -> None:
        self.state = self.checkpoints.load(self.engine, self.shuffle)
        self.engine.snapshot()

    def run(self) -> tuple[str, str]:
        """``(stop_reason, message)``."""
        s = self.state
        bar = tqdm(
            total=self.total,
            initial=min(s.step, self.total),
            disable=not (self.config.progress and self.engine.is_main),
            desc="fit",
            unit="step",
        )
        self._start, self._base, self._postfix_at = time.perf_counter(), s.seconds, 0.0
        try:
            with catch_signals(self.flag), pyro.validation_enabled(False):
                while not self.done():
                    outcome = self._epoch(bar)
                    if outcome is not None:
                        return outcome
            if s.pos > 0:
                self._clock()
                self.save()  # stopped mid-epoch: keep the exact position
            return "completed", f"trained {s.step} steps ({s.epoch} full epochs)"
        finally:
            self._clock()
            bar.close()

    def _clock(self) -> None:
        self.state.seconds = self._base + time.perf_counter() - self._start

    def _epoch(self, bar):
        """The rest of the current epoch; a ``(stop_reason, message)`` to stop, else None."""
        s, e = self.state, self.engine
        if s.pos == 0 and s.perm is None:
            s.perm = torch.randperm(e.n, generator=self.shuffle) if self.config.shuffle else torch.arange(e.n)
        while s.pos < e.batches_per_epoch and not self.done():
            if self.flag.get("signal") and e.group is None:
                self._interrupt()
            global_idx = s.perm[s.pos * e.batch : (s.pos + 1) * e.batch]
            idx = e.group.shard(global_idx) if e.split else global_idx
            xb = e.x.index_select(0, idx.to(getattr(e.x, "device", None) or idx.device))
            yb = None if e.y is None else e.y.index_select(0, idx.to(e.y.device))
            if self.config.transform is not None:
                xb = self.config.transform(xb, generator=self.shuffle)
            rng_before = torch.get_rng_state()
            t0 = time.perf_counter()
            check = s.pos == 0 or (s.step & (s.step - 1)) == 0  # epoch starts and steps 1, 2, 4, ...
            loss, problem, stop = e.update(
                xb,
                yb,
                step=s.step,
                total=self.total,
                rng_before=rng_before,
                check_trace=check,
                batch=len(global_idx),
                stop=bool(self.flag.get("signal")),
            )
            if problem is not None:
                return self._nonfinite(problem, xb, yb, rng_before)
            s.record_step(loss, time.perf_counter() - t0, len(global_idx), e.n)
            if stop:  # a data-parallel job stops after the same step on every rank
                self.flag.setdefault("signal", signal.SIGTERM)
                self._interrupt()
            bar.update(1)
            now = time.perf_counter()
            if self.config.progress and now - self._postfix_at > 0.5:
                bar.set_postfix(elbo=f"{-loss / e.n:.4g}", refresh=False)
                self._postfix_at = now
        if s.pos < e.batches_per_epoch:
            return None  # steps exhausted mid-epoch
        self._clock()
        return self._end_epoch(bar)

    def _end_epoch(self, bar):
        s, e, c = self.state, self.engine, self.config
        if not e.parameters_finite():
            return self._nonfinite("parameters became non-finite", None, None, None)
        val = e.validate()
        s.end_epoch(-s.epoch_loss / e.n, val)
        e.snapshot()
        postfix = {"elbo": f"{s.history['train_elbo'][-1]:.4g}"}
        if val is not None:
            postfix["val"] = f"{val:.4g}"
        bar.set_postfix(postfix, refresh=False)
        stop = None
        if c.patience is not None and val is not None and not s.improved(val, e.params):
            if s.bad_epochs >= c.patience:
                stop = (
                    "early_stopping",
                    f"validation bound did not improve for {c.patience} epochs; best "
                    f"{s.best_val:.4f} nats at epoch {s.best_epoch}",
                )
        if stop is not None or s.epoch % c.checkpoint_every == 0 or self.done():
            self.save()
        return stop

    def _interrupt(self):
        self._clock()
        self.save()
        signum = self.flag["signal"]
        where = (
            f"checkpoint saved to {self.checkpoints.written}; continue with resume=True"
            if self.checkpoints.file is not None
            else "no checkpoint_dir was given, so nothing was saved"
        )
        stop = Interrupted("", signum, self.state.step)
        message = f"fit interrupted ({stop.signal_name}) at step {self.state.step}; {where}"
        raise Interrupted(message, signum, self.state.step)

    def _nonfinite(self, what, xb, yb, rng_before):
        s, e = self.state, self.engine
        if xb is not None:
            model_s, guide_s = e.scaled(len(xb))
            site = diagnose_nonfinite(model_s, guide_s, (xb,), e.call_kwargs(yb), rng_before, e.named_params)
        else:
            site = diagnose_nonfinite(None, None, (), {}, None, e.named_params)
        e.restore_snapshot()
        written = self.checkpoints.written
        kept = f"; the last checkpoint ({written}) is untouched" if written else ""
        self.nonfinite_site = site
        message = (
            f"{what} at step {s.step} (epoch {s.epoch + 1}, minibatch {s.pos + 1}): {site}. "
            f"Training stopped and the parameters were restored to the start of epoch "
            f"{s.epoch + 1}, the last state all of whose steps were finite{kept}. A smaller "
            "lr or clip_norm may help."
        )
        return "nonfinite", message
