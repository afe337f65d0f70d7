r"""The shared SVI engine: :func:`fit` trains any Pyro model/guide pair.

One loop serves every model in pgen (and any model a user writes): it minibatches the
data and scales the per-example sites so each step estimates the full-data objective,
runs the optimizer, shows progress, evaluates a validation bound, stops early, guards
against non-finite losses, checkpoints atomically, survives Ctrl-C and resumes exactly.

Minibatch scaling: the model must put its per-example sites inside
``pyro.plate("data", len(x))`` (the plate name is ``plate_name``). For a minibatch of
``B`` of ``N`` examples, every sample site inside that plate has its log-density
multiplied by ``N / B``, in the model and in the guide, while sites outside the plate
(global latent variables) are left alone. The step's objective is then an unbiased
estimate of the full-data objective, just as with ``pyro.plate(..., subsample=...)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import random
import signal
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import prune_subsample_sites
from tqdm.auto import tqdm

from .. import io
from ..checks import check_choice, check_float, check_int
from ..data.validate import check_data, check_labels, check_same_length
from .elbo import _LossAndSurrogate, make_objective

__all__ = ["fit", "SVIResult", "NonFiniteLossError", "scale_data_plate", "CHECKPOINT_NAME"]

CHECKPOINT_NAME = "checkpoint.pt"

# Settings a resumed run must share with the run that wrote the checkpoint, for the
# resumed loss sequence to equal an uninterrupted one. epochs, steps, patience,
# progress and checkpoint_every may change.
_RESUME_KEYS = (
    "objective",
    "num_particles",
    "alpha",
    "batch_size",
    "lr",
    "lr_final",
    "optimizer",
    "clip_norm",
    "seed",
    "shuffle",
    "plate_name",
    "transform",
    "jit",
    "n_train",
    "data_sha1",
    "n_val",
    "val_sha1",
)


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


@dataclass(frozen=True)
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
        from .guides import vi_posterior

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


class _DataPlateScale(Messenger):
    """Multiply the log-density of every sample site inside the data plate by ``scale``."""

    def __init__(self, plate_name: str, scale: float):
        super().__init__()
        self.plate_name = plate_name
        self.scale = scale

    def _process_message(self, msg):
        if msg["type"] == "sample" and any(
            frame.name == self.plate_name for frame in msg["cond_indep_stack"]
        ):
            msg["scale"] = self.scale * msg["scale"]


def scale_data_plate(fn: Callable, scale: float, plate_name: str = "data") -> Callable:
    """Wrap a model or guide so sites inside ``pyro.plate(plate_name)`` are scaled by ``scale``.

    This is how :func:`fit` turns a minibatch of ``B`` examples into an estimate of the
    objective on all ``N`` (``scale = N / B``).
    """
    return fn if scale == 1.0 else _DataPlateScale(plate_name, float(scale))(fn)


# --------------------------------------------------------------------------- helpers


def _split_data(data, name: str):
    if isinstance(data, (tuple, list)):
        if not 1 <= len(data) <= 2:
            raise ValueError(
                f"{name} must be x, or a pair (x, y); got a {type(data).__name__} of {len(data)} items"
            )
        return data[0], (data[1] if len(data) == 2 else None)
    return data, None


def _without_data(model, guide, args: tuple, kwargs: dict):
    """For ``data=None``: a one-row placeholder data set, and model/guide wrappers that
    drop it and call ``fn(*args, **kwargs)``; also a hash of the arguments for resume."""

    def wrap(fn):
        def called(_placeholder, **_):
            return fn(*args, **kwargs)

        called.__wrapped__ = fn
        called.__qualname__ = getattr(fn, "__qualname__", "fn")
        return called

    values = [v for v in (*args, *kwargs.values()) if torch.is_tensor(v)]
    plain = (int, float, str, bool, type(None))
    others = repr(
        [
            v if isinstance(v, plain) else type(v).__name__
            for v in (*args, *kwargs.values())
            if not torch.is_tensor(v)
        ]
    )
    sha = _sha1(*values) + hashlib.sha1(others.encode()).hexdigest()[:8]
    return wrap(model), wrap(guide), torch.zeros(1, 1), sha


def _owner(fn) -> torch.nn.Module | None:
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, torch.nn.Module):
        return owner
    return fn if isinstance(fn, torch.nn.Module) else None


def _prepare(data, name: str, owner) -> tuple[torch.Tensor, torch.Tensor | None]:
    x, y = _split_data(data, name)
    x = check_data(x, name=name if y is None else f"{name}[0] (x)")
    if y is not None:
        y_name = f"{name}[1] (y)"
        if (torch.is_tensor(y) and y.is_floating_point()) or (
            isinstance(y, np.ndarray) and np.issubdtype(y.dtype, np.floating)
        ):
            y = check_data(y, name=y_name, min_rank=1)
        else:
            # a model with its own validate_data checks the label range itself (the SSVAE
            # allows -1 for "unlabelled")
            classes = None if hasattr(owner, "validate_data") else getattr(owner, "num_classes", None)
            y = check_labels(y, name=y_name, num_classes=classes)
        check_same_length(**{name: x, y_name: y})
    return x, y


def _sha1(*tensors) -> str:
    h = hashlib.sha1()
    for t in tensors:
        if t is not None:
            t = t.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _name_of(obj) -> str | None:
    if obj is None:
        return None
    if isinstance(obj, str):
        return obj
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


def _make_optimizer(optimizer, params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    if isinstance(optimizer, str):
        name = check_choice("optimizer", optimizer, ("adam", "adamw", "sgd", "rmsprop"))
        cls = {
            "adam": torch.optim.Adam,
            "adamw": torch.optim.AdamW,
            "sgd": torch.optim.SGD,
            "rmsprop": torch.optim.RMSprop,
        }[name]
        if name in ("adam", "adamw"):
            # one fused kernel for all parameters: on a CPU the default per-tensor
            # Adam costs about as much as a VAE's forward pass
            try:
                return cls(params, lr=lr, fused=True)
            except (RuntimeError, TypeError):
                return cls(params, lr=lr)
        return cls(params, lr=lr)
    if callable(optimizer):
        opt = optimizer(params)
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError(
                "optimizer must be a name or a callable params -> torch.optim.Optimizer; "
                f"the callable returned {type(opt).__name__}"
            )
        return opt
    raise TypeError(
        f"optimizer must be 'adam', 'adamw', 'sgd', 'rmsprop' or a callable, got {type(optimizer).__name__}"
    )


def _rng_state(generator: torch.Generator) -> dict:
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "shuffle": generator.get_state(),
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "numpy": [
            np_state[0],
            torch.from_numpy(np_state[1].astype(np.int64)),
            int(np_state[2]),
            int(np_state[3]),
            float(np_state[4]),
        ],
    }


def _set_rng_state(state: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["shuffle"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npy = state["numpy"]
    np.random.set_state((npy[0], npy[1].numpy().astype(np.uint32), npy[2], npy[3], npy[4]))


def _unwrap(fn):
    while fn is not None:
        yield fn
        fn = getattr(fn, "base_dist", None)


def _count_nonfinite(t) -> int:
    if torch.is_tensor(t) and t.is_floating_point():
        return int((~torch.isfinite(t)).sum())
    return 0


def _all_finite(tensors: list[torch.Tensor]) -> bool:
    """True unless some tensor holds NaN or inf: one fused norm per tensor (a NaN or inf
    anywhere makes the norm non-finite), far cheaper than an elementwise scan."""
    with torch.no_grad():
        return bool(torch.isfinite(torch.stack(torch._foreach_norm([t.detach() for t in tensors]))).all())


def _site_problem(site) -> str | None:
    for d in _unwrap(site["fn"]):
        for pname in getattr(d, "arg_constraints", {}):
            bad = _count_nonfinite(d.__dict__.get(pname))
            if bad:
                return f"parameter {pname!r} of its {type(d).__name__} has {bad} non-finite value(s)"
    bad = _count_nonfinite(site["value"])
    if bad:
        return f"its value has {bad} non-finite entries"
    try:
        log_p = site["fn"].log_prob(site["value"])
    except (ValueError, RuntimeError) as error:
        return f"log_prob raised {type(error).__name__}: {error}"
    bad = _count_nonfinite(log_p)
    if bad:
        first = log_p[~torch.isfinite(log_p)].reshape(-1)[0].item()
        return (
            f"its log_prob is {first} for {bad} of {log_p.numel()} entries (a value outside "
            "the support, or a degenerate density such as a zero scale)"
        )
    return None


def _diagnose(model, guide, args, kwargs, rng_state, named_params) -> str:
    """Re-run a failed step with its random numbers and say where it went non-finite."""
    bad = [name for name, p in named_params if _count_nonfinite(p.detach())]
    if bad:
        shown = ", ".join(repr(b) for b in bad[:3]) + (" ..." if len(bad) > 3 else "")
        return (
            f"parameter(s) {shown} hold non-finite values (a non-finite gradient at the "
            "step before; clip_norm catches that at its own step)"
        )
    with torch.random.fork_rng(devices=[]), torch.no_grad(), pyro.validation_enabled(False):
        torch.set_rng_state(rng_state)
        try:
            guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
            model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
        except Exception as error:  # report whatever re-running the step raised
            return f"re-running the step raised {type(error).__name__}: {error}"
    for where, trace in (("guide", guide_trace), ("model", model_trace)):
        for name, site in prune_subsample_sites(trace).nodes.items():
            if site["type"] == "sample":
                problem = _site_problem(site)
                if problem:
                    return f"{where} site {name!r}: {problem}"
    return "no single site holds a non-finite value; it arose in the loss arithmetic"


class _CompiledObjective:
    """The objective compiled by ``torch.jit.trace``, one trace per minibatch shape.

    The parameters are inputs of the traced function, so gradients reach them. Each new
    trace is checked against the eager objective with the same random numbers; a model
    whose structure depends on its values cannot be traced and is refused. So is one that
    draws a value the loss never uses (a closed-form KL's site) before other draws: the
    trace drops that draw, which shifts the later ones.
    """

    def __init__(self, objective, params: list[torch.Tensor]):
        if not hasattr(torch.jit, "trace"):
            raise RuntimeError("jit=True needs torch.jit.trace, which this torch lacks")
        self.objective = objective
        self.params = tuple(params)
        self.cache: dict = {}

    def __call__(self, model, guide, x, kwargs):
        key = (id(model), tuple(x.shape)) + tuple(
            (k, tuple(v.shape)) if torch.is_tensor(v) else (k, repr(v)) for k, v in kwargs.items()
        )
        traced = self.cache.get(key)
        if traced is None:
            traced = self.cache[key] = self._trace(model, guide, x, kwargs)
        return traced(*self.params, x, *[v for v in kwargs.values() if torch.is_tensor(v)])

    def _trace(self, model, guide, x, kwargs):
        n = len(self.params)
        tensor_keys = [k for k, v in kwargs.items() if torch.is_tensor(v)]
        objective = self.objective

        def f(*inputs):
            kw = dict(kwargs)
            kw.update(zip(tensor_keys, inputs[n + 1 :], strict=True))
            return objective.loss_and_surrogate(model, guide, inputs[n], **kw)

        inputs = (*self.params, x, *[kwargs[k] for k in tensor_keys])
        rng = torch.get_rng_state()
        with (
            torch.random.fork_rng(devices=[]),
            pyro.validation_enabled(False),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")  # tracer warnings and the deprecation notice
            traced = torch.jit.trace(f, inputs, check_trace=False)
            with torch.no_grad():
                torch.set_rng_state(rng)
                eager = f(*inputs)[0]
                torch.set_rng_state(rng)
                compiled = traced(*inputs)[0]
        if not torch.allclose(eager, compiled, rtol=1e-4, atol=1e-4):
            raise ValueError(
                f"jit=True: the compiled objective gives {compiled.item():.6g} where the model "
                f"gives {eager.item():.6g} with the same random numbers: either the model's "
                "structure depends on its values, which a trace cannot follow, or a random draw "
                "whose value is never used comes before others (the trace drops it, shifting "
                "the later draws; draw such values last). Use jit=False."
            )
        return traced


# --------------------------------------------------------------------------- the engine


@dataclass
class _State:
    step: int = 0
    epoch: int = 0
    pos: int = 0
    perm: torch.Tensor | None = None
    epoch_loss: float = 0.0
    losses: list = field(default_factory=list)
    step_times: list = field(default_factory=list)
    history: dict = field(
        default_factory=lambda: {k: [] for k in ("epoch", "step", "train_elbo", "val_elbo", "seconds")}
    )
    best_val: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    best_params: list | None = None
    seconds: float = 0.0


class _Fit:
    def __init__(self, model, guide, x, y, val, objective, *, opts: dict):
        self.model, self.guide = model, guide
        self.x, self.y = x, y
        self.val = val
        self.objective = objective
        self.pgen_objective = isinstance(objective, _LossAndSurrogate)
        self.o = opts
        self.n = len(x)
        self.batch = self.n if opts["batch_size"] is None else min(opts["batch_size"], self.n)
        self.batches_per_epoch = math.ceil(self.n / self.batch)
        self.kwargs = dict(opts["model_kwargs"])
        self.generator = torch.Generator().manual_seed(opts["seed"])
        self.state = _State()
        self._scaled: dict = {}
        self._interrupted = False
        self.checkpoint_path: Path | None = None
        self.ckpt_file = Path(opts["checkpoint_dir"]) / CHECKPOINT_NAME if opts["checkpoint_dir"] else None

    # -- model call plumbing
    def scaled(self, batch: int, n: int | None = None):
        key = (batch, n or self.n)
        pair = self._scaled.get(key)
        if pair is None:
            scale = (n or self.n) / batch
            pair = self._scaled[key] = (
                scale_data_plate(self.model, scale, self.o["plate_name"]),
                scale_data_plate(self.guide, scale, self.o["plate_name"]),
            )
        return pair

    def call_kwargs(self, y):
        return self.kwargs if y is None else {**self.kwargs, "y": y}

    # -- setup
    def setup(self):
        xb = self.x[: self.batch]
        yb = None if self.y is None else self.y[: self.batch]
        if self.o["transform"] is not None:  # check what training will see
            xb = self.o["transform"](xb, generator=torch.Generator().manual_seed(self.o["seed"]))
        kwargs = self.call_kwargs(yb)
        with torch.random.fork_rng(devices=[]), pyro.validation_enabled(True):
            guide_trace = poutine.trace(self.guide).get_trace(xb, **kwargs)
            model_trace = poutine.trace(poutine.replay(self.model, trace=guide_trace)).get_trace(xb, **kwargs)
            self._check_plates(prune_subsample_sites(model_trace), prune_subsample_sites(guide_trace))
            model_s, guide_s = self.scaled(self.batch)
            # runs any lazy set-up of the objective (e.g. guessing max_plate_nesting)
            # here, where it cannot shift the training random numbers
            self.objective.loss(model_s, guide_s, xb, **kwargs)
        store = pyro.get_param_store()
        self.named_params, seen = [], set()
        for name, p in sorted(store.named_parameters(), key=lambda kv: kv[0]):
            if id(p) not in seen:  # one tensor registered under two names is fitted once
                seen.add(id(p))
                self.named_params.append((name, p))
        if not self.named_params:
            raise ValueError(
                "the model and guide have no parameters to fit: register networks with "
                "pyro.module or create parameters with pyro.param"
            )
        self.params = [p for _, p in self.named_params]
        self.optimizer = _make_optimizer(self.o["optimizer"], self.params, self.o["lr"])
        self.modules = {}
        for role, fn in (("model", self.model), ("guide", self.guide)):
            owner = _owner(fn)
            if owner is not None and all(owner is not m for m in self.modules.values()):
                self.modules[role] = owner
        self.compiled = _CompiledObjective(self.objective, self.params) if self.o["jit"] else None
        self.epoch_snapshot = [p.detach().clone() for p in self.params]

    def _check_plates(self, model_trace, guide_trace):
        if self.batch == self.n:
            return
        plate = self.o["plate_name"]
        sizes = {
            frame.size
            for trace in (model_trace, guide_trace)
            for site in trace.nodes.values()
            if site["type"] == "sample"
            for frame in site["cond_indep_stack"]
            if frame.name == plate
        }
        if not sizes:
            raise ValueError(
                f"batch_size={self.batch} < {self.n} examples needs the model's per-example sites "
                f"inside pyro.plate({plate!r}, len(x)) so each minibatch is scaled to the full "
                f"data; this model has no plate named {plate!r}. Name its data plate "
                f"{plate!r}, pass plate_name=, or use batch_size=None (full batch)"
            )
        if sizes != {self.batch}:
            raise ValueError(
                f"pyro.plate({plate!r}) has size {sorted(sizes)} but the minibatch has "
                f"{self.batch} examples: the engine minibatches for you, so write "
                f"pyro.plate({plate!r}, len(x)) without subsample_size"
            )
        outside = [
            name
            for name, site in model_trace.nodes.items()
            if site["type"] == "sample"
            and site["is_observed"]
            and not any(f.name == plate for f in site["cond_indep_stack"])
        ]
        if outside:
            raise ValueError(
                f"observed site(s) {outside} lie outside pyro.plate({plate!r}), so minibatching "
                "would not scale them; put them inside the data plate or use batch_size=None"
            )

    # -- resume and checkpoints
    def checkpoint_state(self) -> dict:
        s = self.state
        return {
            "config": self.o["config"],
            "step": s.step,
            "epoch": s.epoch,
            "pos": s.pos,
            "perm": s.perm,
            "epoch_loss": s.epoch_loss,
            "param_names": [name for name, _ in self.named_params],
            "params": {name: p.detach() for name, p in self.named_params},
            "buffers": {role: dict(m.named_buffers()) for role, m in self.modules.items()},
            "optimizer": self.optimizer.state_dict(),
            "rng": _rng_state(self.generator),
            "losses": torch.tensor(s.losses, dtype=torch.float64),
            "step_times": torch.tensor(s.step_times, dtype=torch.float64),
            "history": s.history,
            "early": {
                "best_val": s.best_val,
                "best_epoch": s.best_epoch,
                "bad_epochs": s.bad_epochs,
                "best_params": s.best_params,
            },
            "seconds": s.seconds,
            # an objective with state of its own (contrastive divergence's persistent chains)
            "objective": self.objective.state_dict() if hasattr(self.objective, "state_dict") else {},
        }

    def save_checkpoint(self) -> None:
        if self.ckpt_file is not None:
            self.checkpoint_path = io.save(self.ckpt_file, self.checkpoint_state(), kind="svi")

    def resume(self) -> None:
        if self.ckpt_file is None:
            raise ValueError("resume=True needs checkpoint_dir, the folder of the checkpoint")
        saved = io.load(self.ckpt_file, kind="svi")
        old, new = saved["config"], self.o["config"]
        changed = [
            f"{k}: checkpoint {old.get(k)!r}, now {new.get(k)!r}"
            for k in _RESUME_KEYS
            if old.get(k) != new.get(k)
        ]
        if changed:
            raise ValueError(
                f"cannot resume from {self.ckpt_file}: these settings differ from the run "
                "that wrote it (a resumed run must repeat them to continue the same "
                "trajectory): " + "; ".join(changed)
            )
        names = [name for name, _ in self.named_params]
        if saved["param_names"] != names:
            missing = sorted(set(saved["param_names"]) - set(names))
            extra = sorted(set(names) - set(saved["param_names"]))
            raise ValueError(
                f"cannot resume from {self.ckpt_file}: the model's parameters differ from the "
                f"checkpoint's (only in the checkpoint: {missing[:5]}; "
                f"only in the model: {extra[:5]})"
            )
        with torch.no_grad():
            for name, p in self.named_params:
                value = saved["params"][name]
                if value.shape != p.shape:
                    raise ValueError(
                        f"cannot resume from {self.ckpt_file}: parameter {name!r} has shape "
                        f"{tuple(value.shape)} in the checkpoint but {tuple(p.shape)} in the model"
                    )
                p.copy_(value)
            for role, module in self.modules.items():
                buffers = dict(module.named_buffers())
                for bname, value in saved["buffers"].get(role, {}).items():
                    buffers[bname].copy_(value)
        self.optimizer.load_state_dict(saved["optimizer"])
        s = self.state
        s.step, s.epoch, s.pos = saved["step"], saved["epoch"], saved["pos"]
        s.perm, s.epoch_loss = saved["perm"], saved["epoch_loss"]
        s.losses = saved["losses"].tolist()
        s.step_times = saved["step_times"].tolist()
        s.history = saved["history"]
        early = saved["early"]
        s.best_val, s.best_epoch = early["best_val"], early["best_epoch"]
        s.bad_epochs, s.best_params = early["bad_epochs"], early["best_params"]
        s.seconds = saved["seconds"]
        if hasattr(self.objective, "load_state_dict") and saved.get("objective"):
            self.objective.load_state_dict(saved["objective"])
        self.epoch_snapshot = [p.detach().clone() for p in self.params]
        _set_rng_state(saved["rng"], self.generator)
        self.checkpoint_path = self.ckpt_file

    # -- one step
    def step(self, xb, yb) -> float:
        model_s, guide_s = self.scaled(len(xb))
        kwargs = self.call_kwargs(yb)
        self.optimizer.zero_grad(set_to_none=True)
        if self.compiled is not None:
            loss, surrogate = self.compiled(model_s, guide_s, xb, kwargs)
        elif self.pgen_objective:
            loss, surrogate = self.objective.loss_and_surrogate(model_s, guide_s, xb, **kwargs)
        else:
            return float(self.objective.loss_and_grads(model_s, guide_s, xb, **kwargs))
        if surrogate.requires_grad:
            surrogate.backward()
        return loss.item()

    def validate(self) -> float | None:
        if self.val is None:
            return None
        vx, vy = self.val
        n = len(vx)
        total = 0.0
        with torch.random.fork_rng(devices=[]), torch.no_grad(), pyro.validation_enabled(False):
            torch.manual_seed(self.o["seed"] + 1)  # the same random numbers every epoch
            for i in range(0, n, self.batch):
                xb = vx[i : i + self.batch]
                yb = None if vy is None else vy[i : i + self.batch]
                model_s, guide_s = self.scaled(len(xb), n)
                total += self.objective.loss(model_s, guide_s, xb, **self.call_kwargs(yb)) * len(xb) / n
        return -total / n

    # -- the loop
    def run(self, progress: bool) -> tuple[str, str]:
        o, s = self.o, self.state
        total = o["steps"] if o["steps"] is not None else o["epochs"] * self.batches_per_epoch
        bar = tqdm(total=total, initial=min(s.step, total), disable=not progress, desc="fit", unit="step")
        last_postfix = 0.0
        start = time.perf_counter()
        base_seconds = s.seconds
        try:
            with pyro.validation_enabled(False):
                while not self._done():
                    if s.pos == 0:
                        if s.perm is None:
                            s.perm = (
                                torch.randperm(self.n, generator=self.generator)
                                if o["shuffle"]
                                else torch.arange(self.n)
                            )
                    while s.pos < self.batches_per_epoch and not self._done():
                        if self._interrupted:
                            s.seconds = base_seconds + time.perf_counter() - start
                            self._interrupt()
                        idx = s.perm[s.pos * self.batch : (s.pos + 1) * self.batch]
                        xb = self.x.index_select(0, idx)
                        yb = None if self.y is None else self.y.index_select(0, idx)
                        if o["transform"] is not None:
                            xb = o["transform"](xb, generator=self.generator)
                        rng_before = torch.get_rng_state()
                        t0 = time.perf_counter()
                        loss = self.step(xb, yb)
                        if not math.isfinite(loss):
                            return self._nonfinite(f"loss {loss}", xb, yb, rng_before)
                        if o["clip_norm"] is not None:
                            norm = torch.nn.utils.clip_grad_norm_(self.params, o["clip_norm"])
                            if not torch.isfinite(norm):
                                return self._nonfinite("gradient norm non-finite", xb, yb, rng_before)
                        if o["lr_final"] is not None:
                            self._set_lr(s.step / max(total - 1, 1))
                        self.optimizer.step()
                        s.step_times.append(time.perf_counter() - t0)
                        s.losses.append(loss)
                        s.epoch_loss += loss * len(idx) / self.n
                        s.step += 1
                        s.pos += 1
                        bar.update(1)
                        now = time.perf_counter()
                        if progress and now - last_postfix > 0.5:
                            bar.set_postfix(elbo=f"{-loss / self.n:.4g}", refresh=False)
                            last_postfix = now
                    if s.pos < self.batches_per_epoch:
                        break  # steps exhausted mid-epoch
                    s.seconds = base_seconds + time.perf_counter() - start
                    reason = self._end_epoch(bar)
                    if reason is not None:
                        return reason
            if s.pos > 0:
                s.seconds = base_seconds + time.perf_counter() - start
                self.save_checkpoint()  # stopped mid-epoch: keep the exact position
            return "completed", f"trained {s.step} steps ({s.epoch} full epochs)"
        finally:
            s.seconds = base_seconds + time.perf_counter() - start
            bar.close()

    def _set_lr(self, fraction: float) -> None:
        lr = self.o["lr"] * (self.o["lr_final"] / self.o["lr"]) ** min(fraction, 1.0)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _done(self) -> bool:
        s, o = self.state, self.o
        if o["steps"] is not None:
            return s.step >= o["steps"]
        return s.epoch >= o["epochs"]

    def _end_epoch(self, bar):
        s, o = self.state, self.o
        if not _all_finite(self.params):
            return self._nonfinite("parameters became non-finite", None, None, None)
        val = self.validate()
        train = -s.epoch_loss / self.n
        s.epoch += 1
        h = s.history
        h["epoch"].append(s.epoch)
        h["step"].append(s.step)
        h["train_elbo"].append(train)
        h["val_elbo"].append(val)
        h["seconds"].append(s.seconds)
        s.pos, s.perm, s.epoch_loss = 0, None, 0.0
        torch._foreach_copy_(self.epoch_snapshot, [p.detach() for p in self.params])
        postfix = {"elbo": f"{train:.4g}"}
        if val is not None:
            postfix["val"] = f"{val:.4g}"
        bar.set_postfix(postfix, refresh=False)
        stop = None
        if o["patience"] is not None and val is not None:
            if s.best_val is None or val > s.best_val:
                s.best_val, s.best_epoch, s.bad_epochs = val, s.epoch, 0
                s.best_params = [p.detach().clone() for p in self.params]
            else:
                s.bad_epochs += 1
                if s.bad_epochs >= o["patience"]:
                    stop = (
                        "early_stopping",
                        f"validation bound did not improve for {o['patience']} epochs; best "
                        f"{s.best_val:.4f} nats at epoch {s.best_epoch}",
                    )
        if stop is not None or s.epoch % o["checkpoint_every"] == 0 or self._done():
            self.save_checkpoint()
        return stop

    def _interrupt(self):
        self.save_checkpoint()
        where = (
            f"checkpoint saved to {self.checkpoint_path}; continue with resume=True"
            if self.ckpt_file is not None
            else "no checkpoint_dir was given, so nothing was saved"
        )
        raise KeyboardInterrupt(f"fit interrupted at step {self.state.step}; {where}")

    def _nonfinite(self, what, xb, yb, rng_before):
        s = self.state
        if xb is not None:
            model_s, guide_s = self.scaled(len(xb))
            site = _diagnose(model_s, guide_s, (xb,), self.call_kwargs(yb), rng_before, self.named_params)
        else:
            site = _diagnose(None, None, (), {}, None, self.named_params)
        with torch.no_grad():
            torch._foreach_copy_(self.params, self.epoch_snapshot)
        kept = f"; the last checkpoint ({self.checkpoint_path}) is untouched" if self.checkpoint_path else ""
        self.nonfinite_site = site
        message = (
            f"{what} at step {s.step} (epoch {s.epoch + 1}, minibatch {s.pos + 1}): {site}. "
            f"Training stopped and the parameters were restored to the start of epoch "
            f"{s.epoch + 1}, the last state all of whose steps were finite{kept}. A smaller "
            "lr or clip_norm may help."
        )
        return "nonfinite", message

    def result(self, stop_reason: str, message: str, param_state: dict) -> SVIResult:
        s = self.state
        if self.o["patience"] is not None and s.best_params is not None and stop_reason != "nonfinite":
            with torch.no_grad():
                torch._foreach_copy_(self.params, s.best_params)
        history = {k: list(v) for k, v in s.history.items()}
        if s.pos > 0:
            done = s.pos * self.batch / self.n
            history["epoch"].append(s.epoch + min(done, 1.0))
            history["step"].append(s.step)
            history["train_elbo"].append(-s.epoch_loss / self.n / min(done, 1.0))
            history["val_elbo"].append(None)
            history["seconds"].append(s.seconds)
            history["partial"] = [False] * (len(history["epoch"]) - 1) + [True]
        store = pyro.get_param_store()
        params = {name: store[name].detach().clone() for name, _ in self.named_params}
        return SVIResult(
            losses=np.asarray(s.losses, dtype=np.float64),
            history=history,
            wall_time=s.seconds,
            steps_per_second=s.step / s.seconds if s.seconds > 0 else float("nan"),
            params=params,
            checkpoint_path=self.checkpoint_path,
            num_steps=s.step,
            epochs_completed=s.epoch,
            stop_reason=stop_reason,
            message=message,
            best_epoch=s.best_epoch if self.o["patience"] is not None else None,
            best_val_elbo=s.best_val if self.o["patience"] is not None else None,
            step_times=np.asarray(s.step_times, dtype=np.float64),
            config=dict(self.o["config"]),
            param_state=param_state,
        )


@contextlib.contextmanager
def _sigint_sets_flag(fitter: _Fit):
    """First Ctrl-C: finish the step, checkpoint, raise. A second one acts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        fitter._interrupted = True
        signal.signal(signal.SIGINT, previous if callable(previous) else signal.default_int_handler)

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


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
) -> SVIResult:
    r"""Fit a Pyro model/guide pair by stochastic variational inference.

    Maximizes a variational bound on :math:`\sum_i \log p(x_i)` with minibatches of
    ``batch_size`` examples. ``model`` and ``guide`` are called as
    ``model(x_batch, y=y_batch, **model_kwargs)`` (``y`` only when ``data`` has it).
    Each fit has its own Pyro param store: two fits in one process never share or
    overwrite each other's parameters.

    Args:
        model: the generative model, e.g. ``vae.model`` or a user's function.
        guide: the variational family, e.g. ``vae.guide``.
        data: ``x``, or a pair ``(x, y)``; tensors or numpy arrays with examples along
            the first dimension. Validated: floating point, finite, non-empty; integer
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
            first step to ``lr_final`` at the last (set by ``steps``, or ``epochs``):
            Bayesian fits then settle on the optimum instead of jittering around it.
        optimizer: ``"adam"`` (fused), ``"adamw"``, ``"sgd"``, ``"rmsprop"``, or a
            callable ``params -> torch.optim.Optimizer``.
        clip_norm: clip the gradient's total norm to this; also catches non-finite
            gradients at their own step.
        val_data: ``x`` or ``(x, y)`` to evaluate the bound on after each epoch
            (no ``transform`` is applied to it).
        seed: seeds Pyro, torch, numpy and the shuffling; the same seed gives the same run.
        checkpoint_dir: folder for ``checkpoint.pt``, written atomically every
            ``checkpoint_every`` epochs, at the end, on early stopping and on Ctrl-C.
        checkpoint_every: epochs between checkpoints.
        resume: continue from ``checkpoint_dir/checkpoint.pt``. The continued run gives
            the same losses as an uninterrupted one; ``epochs``/``steps`` may be raised
            to train longer, but the settings that shape the trajectory must match.
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
        plate_name: name of the model's data plate (see the module docstring).
        jit: compile the objective with ``torch.jit.trace`` (pgen objectives only), one
            trace per minibatch shape. For models whose structure does not depend on
            their values: a trace records the path taken on the minibatch it was made
            with, and is checked against the eager objective on that minibatch with the
            same random numbers. Measured on an MLP VAE at batch 128 (one thread): 1.03x
            a hand-written PyTorch loop, against 1.25x eager (``bench/svi_overhead.py``).
        on_nonfinite: on a non-finite loss or gradient, ``"raise"``
            :class:`NonFiniteLossError` or ``"warn"`` and return; either way training
            stops, the step is not applied and the parameters go back to the start of
            the epoch.

    Returns:
        An :class:`SVIResult`.

    Raises:
        ValueError, TypeError: bad arguments or data, naming the argument.
        NonFiniteLossError: see ``on_nonfinite``.
        KeyboardInterrupt: on Ctrl-C, after writing a checkpoint if ``checkpoint_dir``.

    Example:
        >>> vae = pgen.models.VAE(data_dim=64, latent_dim=2)
        >>> x, _ = pgen.data.load("digits", binarize="threshold")
        >>> result = pgen.fit(vae.model, vae.guide, x, epochs=20, seed=0)
        >>> result.history["train_elbo"][-1]   # nats per example
    """
    if not callable(model) or not callable(guide):
        raise TypeError("model and guide must be callables, e.g. vae.model and vae.guide")
    if (epochs is None) == (steps is None):
        raise ValueError(f"give exactly one of epochs= or steps= (got epochs={epochs!r}, steps={steps!r})")
    epochs = None if epochs is None else check_int("epochs", epochs, minimum=1)
    steps = None if steps is None else check_int("steps", steps, minimum=1)
    batch_size = None if batch_size is None else check_int("batch_size", batch_size, minimum=1)
    lr = check_float("lr", lr, positive=True)
    lr_final = None if lr_final is None else check_float("lr_final", lr_final, positive=True)
    clip_norm = None if clip_norm is None else check_float("clip_norm", clip_norm, positive=True)
    seed = check_int("seed", seed, minimum=0)
    checkpoint_every = check_int("checkpoint_every", checkpoint_every, minimum=1)
    patience = None if patience is None else check_int("patience", patience, minimum=1)
    on_nonfinite = check_choice("on_nonfinite", on_nonfinite, ("raise", "warn"))
    if patience is not None and val_data is None:
        raise ValueError("patience needs val_data: early stopping watches the validation bound")
    if transform is not None and not callable(transform):
        raise TypeError(f"transform must be callable, got {type(transform).__name__}")
    if not isinstance(plate_name, str) or not plate_name:
        raise TypeError(f"plate_name must be a non-empty string, got {plate_name!r}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir, the folder of the checkpoint")
    if model_kwargs is not None and not isinstance(model_kwargs, Mapping):
        raise TypeError(f"model_kwargs must be a dict, got {type(model_kwargs).__name__}")
    model_kwargs = dict(model_kwargs or {})
    if not isinstance(model_args, tuple):
        raise TypeError(f"model_args must be a tuple, got {type(model_args).__name__}")
    called = (model, guide, model_args, dict(model_kwargs))
    data_given = data is not None
    if data is None:
        if val_data is not None or transform is not None:
            raise ValueError("val_data and transform need data=; with data=None the model takes model_args")
        model, guide, data, args_sha = _without_data(model, guide, model_args, model_kwargs)
        model_kwargs, batch_size = {}, None
    else:
        if model_args:
            raise ValueError(
                "model_args is for data=None (a model called as model(*model_args)); with data= "
                "the model is called as model(x_batch, y=y_batch, **model_kwargs)"
            )
        if "y" in model_kwargs:
            raise ValueError("pass y as part of data=(x, y), not in model_kwargs")
        args_sha = None

    owner = _owner(model)
    x, y = _prepare(data, "data", owner)
    val = None if val_data is None else _prepare(val_data, "val_data", owner)
    validate_data = getattr(owner, "validate_data", None)
    if validate_data is not None:
        checked = x if transform is None else transform(x, generator=torch.Generator().manual_seed(0))
        validate_data(checked, y, name="data")
        if val is not None:
            validate_data(val[0], val[1], name="val_data")
    objective_obj = make_objective(objective, num_particles=num_particles, alpha=alpha)
    if jit and not isinstance(objective_obj, _LossAndSurrogate):
        raise ValueError(
            "jit=True needs one of pgen's objectives ('elbo', 'meanfield', 'iwae', 'renyi'), "
            f"not {type(objective_obj).__name__}"
        )
    config = {
        "objective": objective if isinstance(objective, str) else _name_of(type(objective)),
        "num_particles": getattr(objective_obj, "num_particles", None),
        "alpha": getattr(objective_obj, "alpha", None),
        "batch_size": batch_size,
        "lr": lr,
        "lr_final": lr_final,
        "optimizer": _name_of(optimizer),
        "clip_norm": clip_norm,
        "seed": seed,
        "shuffle": bool(shuffle),
        "plate_name": plate_name,
        "transform": _name_of(transform),
        "jit": bool(jit),
        "epochs": epochs,
        "steps": steps,
        "patience": patience,
        "n_train": len(x),
        "data_sha1": args_sha or _sha1(x, y),
        "n_val": None if val is None else len(val[0]),
        "val_sha1": None if val is None else _sha1(*val),
    }
    # what the engine uses: the recorded settings, with the objects the record only names
    opts = {
        **config,
        "optimizer": optimizer,
        "transform": transform,
        "model_kwargs": model_kwargs,
        "checkpoint_dir": checkpoint_dir,
        "checkpoint_every": checkpoint_every,
        "config": config,
    }
    pyro.set_rng_seed(seed)
    fitter = _Fit(model, guide, x, y, val, objective_obj, opts=opts)
    with pyro.get_param_store().scope() as param_state:
        fitter.setup()
        if resume:
            fitter.resume()
        with _sigint_sets_flag(fitter):
            stop_reason, message = fitter.run(progress)
        # the scope fills param_state in place when it closes
        result = fitter.result(stop_reason, message, param_state)
    if data_given:
        called = (called[0], called[1], (x,), {**called[3], **({} if y is None else {"y": y})})
    result = dataclasses.replace(
        result, model=called[0], guide=called[1], model_args=called[2], model_kwargs=called[3]
    )
    if stop_reason == "nonfinite":
        if on_nonfinite == "raise":
            raise NonFiniteLossError(
                message,
                step=fitter.state.step,
                epoch=fitter.state.epoch,
                site=fitter.nonfinite_site,
                result=result,
            )
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    return result
