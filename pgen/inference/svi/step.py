"""One model/guide pair being fitted: :meth:`SVIEngine.init` once, then
:meth:`SVIEngine.update` per minibatch (as NumPyro's ``SVI.init``/``SVI.update``; here the
parameters and optimizer moments live in their torch objects)."""

from __future__ import annotations

import math

import pyro
import torch
from pyro import poutine
from pyro.poutine.util import prune_subsample_sites

from ..elbo import _LossAndSurrogate
from .compile import CompiledObjective
from .config import FitConfig
from .data import owner
from .diagnose import check_pair, explain_site_shape
from .minibatch import ScaledPair, check_plates

__all__ = ["SVIEngine", "make_optimizer"]

_OPTIMIZER_CLASSES = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}


def make_optimizer(optimizer, params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    """An optimizer by name (Adam and AdamW fused: on a CPU the default per-tensor Adam
    costs about as much as a VAE's forward pass), or from a ``params -> Optimizer`` callable."""
    if isinstance(optimizer, str):
        cls = _OPTIMIZER_CLASSES[optimizer]
        if optimizer in ("adam", "adamw"):
            try:
                return cls(params, lr=lr, fused=True)
            except (RuntimeError, TypeError):
                return cls(params, lr=lr)
        return cls(params, lr=lr)
    opt = optimizer(params)
    if not isinstance(opt, torch.optim.Optimizer):
        raise TypeError(
            "optimizer must be a name or a callable params -> torch.optim.Optimizer; "
            f"the callable returned {type(opt).__name__}"
        )
    return opt


def _clip(params: list[torch.Tensor], max_norm: float) -> bool:
    """Clip the gradients' total norm to ``max_norm`` as ``clip_grad_norm_`` does; False
    (gradients untouched, so a report can name them) if the norm is not finite."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return True
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    if not torch.isfinite(total):
        return False
    torch._foreach_mul_(grads, (max_norm / (total + 1e-6)).clamp(max=1.0))
    return True


def _all_finite(tensors: list[torch.Tensor]) -> bool:
    """True unless some tensor holds NaN or inf (one fused norm per tensor)."""
    with torch.no_grad():
        return bool(torch.isfinite(torch.stack(torch._foreach_norm([t.detach() for t in tensors]))).all())


class SVIEngine:
    """The pair, its data and objective, and what :meth:`init` builds: the parameters by
    name, the optimizer, the modules whose buffers a checkpoint keeps and, with ``jit``,
    the compiled objective."""

    def __init__(
        self,
        model,
        guide,
        x,
        y,
        val,
        objective,
        config: FitConfig,
        model_kwargs: dict,
        record,
        group=None,
        split=False,
    ):
        self.model, self.guide = model, guide
        # a torch.distributed job: ``group`` (rank, world); ``split`` when each global
        # minibatch is split over the ranks (with data=None every rank runs the same fit)
        self.group, self.split = group, bool(split and group is not None)
        self.x, self.y, self.val = x, y, val
        self.objective, self.config, self.record = objective, config, record
        self.kwargs = dict(model_kwargs)
        self.n = len(x)
        self.batch = self.n if config.batch_size is None else min(config.batch_size, self.n)
        self.batches_per_epoch = math.ceil(self.n / self.batch)
        self.scaled = ScaledPair(model, guide, self.n, config.plate_name, group.world if self.split else 1)
        self.pgen_objective = isinstance(objective, _LossAndSurrogate)

    def call_kwargs(self, y):
        return self.kwargs if y is None else {**self.kwargs, "y": y}

    # ------------------------------------------------------------------ init

    def init(self, has_data: bool) -> None:
        """Trace the pair once on the first minibatch (in a forked random state, so it
        shifts no training draw), check it, and build parameters and optimizer."""
        xb = self.x[: self.batch]
        yb = None if self.y is None else self.y[: self.batch]
        if self.config.transform is not None:  # check what training will see
            xb = self.config.transform(xb, generator=torch.Generator().manual_seed(self.config.seed))
        kwargs = self.call_kwargs(yb)
        with torch.random.fork_rng(devices=[]), pyro.validation_enabled(True):
            guide_trace = poutine.trace(self.guide).get_trace(xb, **kwargs)
            model_trace = poutine.trace(poutine.replay(self.model, trace=guide_trace)).get_trace(xb, **kwargs)
            enumerates = isinstance(self.objective, pyro.infer.TraceEnum_ELBO)
            if getattr(self.objective, "traces_guide", True):  # not an adversarial game's generator
                check_pair(model_trace, guide_trace, has_data=has_data, enumerates=enumerates)
            check_plates(
                prune_subsample_sites(model_trace),
                prune_subsample_sites(guide_trace),
                batch=self.batch,
                n=self.n,
                plate=self.config.plate_name,
            )
            model_s, guide_s = self.scaled(self.batch)
            # any lazy set-up of the objective (e.g. guessing max_plate_nesting) runs here,
            # where it cannot shift the training random numbers
            try:
                self.objective.loss(model_s, guide_s, xb, **kwargs)
            except ValueError as error:
                words = "invalid log_prob shape" in str(error) and explain_site_shape(
                    model_trace, guide_trace
                )
                if words:
                    raise ValueError(words) from error
                raise
        self._collect_parameters()
        self.optimizer = make_optimizer(self.config.optimizer, self.params, self.config.lr)
        self.modules = {}
        for role, fn in (("model", self.model), ("guide", self.guide)):
            module = owner(fn)
            if module is not None and all(module is not m for m in self.modules.values()):
                self.modules[role] = module
        self.compiled = CompiledObjective(self.objective, self.params) if self.config.jit else None
        if self.split:
            self.group.check_batches(self.n, self.batch)
            self.group.broadcast(self.params)  # one starting point on every rank
            if not self.group.is_main:  # rank 0 keeps the one-process random stream
                torch.manual_seed((self.config.seed * 1_000_003 + self.group.rank) % 2**63)
        self.snapshot()

    @property
    def is_main(self) -> bool:
        """The process that writes checkpoints and shows progress."""
        return self.group is None or self.group.is_main

    def _collect_parameters(self) -> None:
        self.named_params, seen = [], set()
        for name, p in sorted(pyro.get_param_store().named_parameters(), key=lambda kv: kv[0]):
            if id(p) not in seen:  # one tensor registered under two names is fitted once
                seen.add(id(p))
                self.named_params.append((name, p))
        if not self.named_params:
            raise ValueError(
                "the model and guide have no parameters to fit: register networks with "
                "pyro.module or create parameters with pyro.param"
            )
        self.params = [p for _, p in self.named_params]

    # ------------------------------------------------------------------ a step

    def update(
        self,
        xb,
        yb,
        *,
        step: int,
        total: int,
        rng_before,
        check_trace: bool,
        batch: int | None = None,
        stop=False,
    ) -> tuple[float, str | None, bool]:
        """One optimizer step on a minibatch: ``(loss, problem, stop)``, ``problem``
        naming what went non-finite (then nothing was applied). In a data-parallel fit
        ``xb`` is this rank's piece of a global minibatch of ``batch`` examples; the loss
        is summed over the ranks, and ``stop`` is true when any rank asked to stop."""
        model_s, guide_s = self.scaled(batch or len(xb), training=True)
        kwargs = self.call_kwargs(yb)
        self.optimizer.zero_grad(set_to_none=True)
        if self.compiled is not None:
            loss_t, surrogate = self.compiled(model_s, guide_s, xb, kwargs)
        elif self.pgen_objective:
            loss_t, surrogate = self.objective.loss_and_surrogate(model_s, guide_s, xb, **kwargs)
        else:
            loss_t, surrogate = float(self.objective.loss_and_grads(model_s, guide_s, xb, **kwargs)), None
        if surrogate is not None and surrogate.requires_grad:
            surrogate.backward()
        loss = loss_t.item() if torch.is_tensor(loss_t) else loss_t
        if check_trace and self.compiled is not None and math.isfinite(loss):
            self.compiled.check(model_s, guide_s, xb, kwargs, loss, rng_before, step)
        if self.group is not None:  # every rank agrees on the loss and on stopping
            local = loss
            loss, stop = self.group.sum_and_flag(loss if self.split else 0.0, bool(stop))
            if not self.split:
                loss = local
            elif math.isfinite(loss):
                self.group.all_reduce_gradients(self.params)
        if not math.isfinite(loss):
            return loss, f"loss {loss}", stop
        if self.config.clip_norm is not None and not _clip(self.params, self.config.clip_norm):
            return loss, "gradient norm non-finite", stop
        if self.config.lr_final is not None:
            self._set_lr(step / max(total - 1, 1))
        self.optimizer.step()
        return loss, None, stop

    def _set_lr(self, fraction: float) -> None:
        c = self.config
        lr = c.lr * (c.lr_final / c.lr) ** min(fraction, 1.0)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def snapshot(self) -> None:
        """Keep the parameters as they are now (the start of an epoch), to go back to."""
        self.epoch_snapshot = [p.detach().clone() for p in self.params]

    def restore_snapshot(self) -> None:
        with torch.no_grad():
            torch._foreach_copy_(self.params, self.epoch_snapshot)

    def parameters_finite(self) -> bool:
        return _all_finite(self.params)

    def validate(self) -> float | None:
        """The bound on the validation data (nats per example), with the same random
        numbers every epoch."""
        if self.val is None:
            return None
        vx, vy = self.val
        n = len(vx)
        total = 0.0
        with torch.random.fork_rng(devices=[]), torch.no_grad(), pyro.validation_enabled(False):
            torch.manual_seed((self.config.seed + 1) % 2**63)
            for i in range(0, n, self.batch):
                xb = vx[i : i + self.batch]
                yb = None if vy is None else vy[i : i + self.batch]
                model_s, guide_s = self.scaled(len(xb), n)
                total += self.objective.loss(model_s, guide_s, xb, **self.call_kwargs(yb)) * len(xb) / n
        return -total / n

    # ------------------------------------------------------------------ the objective's own state

    def objective_state(self) -> dict:
        """An objective with state of its own (contrastive divergence's persistent chains)."""
        state_dict = getattr(self.objective, "state_dict", None)
        return state_dict() if state_dict is not None else {}

    def load_objective_state(self, saved: dict | None) -> None:
        load = getattr(self.objective, "load_state_dict", None)
        if load is not None and saved:
            load(saved)
