"""``jit=True``: the objective compiled by ``torch.jit.trace``, checked so that compiled
and eager never silently disagree.

A trace records the path the model took on the minibatch it was made with. Three checks
guard it:

1. While tracing, a model that turns a tensor into a Python value (``if x.sum() > 0:``,
   ``float(x.mean())``) makes the tracer warn; such a warning from the model's own code
   (not from torch's or Pyro's internals, which do it harmlessly) refuses the trace and
   names the line.
2. Each new trace is compared with the eager objective on the same minibatch with the
   same random numbers.
3. During training, the compiled loss is compared with the eager one at the first step of
   every epoch and at steps 1, 2, 4, 8, ..., so a branch that the first minibatch did not
   take is caught when another takes it. Measured on an MLP VAE with 36 steps an epoch,
   this costs 3.7% of a 10-epoch fit (README, Benchmarks).
"""

from __future__ import annotations

import os
import warnings

import pyro
import torch

__all__ = ["CompiledObjective", "TraceMismatch"]

_LIBRARIES = tuple(os.path.dirname(module.__file__) + os.sep for module in (torch, pyro))


class TraceMismatch(ValueError):
    """The compiled objective disagrees with the eager one."""


def _value_conversions(caught) -> list[str]:
    """``file:line`` of each place outside torch and Pyro that turned a traced tensor into
    a Python value."""
    found = []
    for w in caught:
        if not issubclass(w.category, torch.jit.TracerWarning):
            continue
        if "Converting a tensor to a Python" not in str(w.message):
            continue
        if os.path.abspath(w.filename).startswith(_LIBRARIES):
            continue
        found.append(f"{w.filename}:{w.lineno}")
    return sorted(set(found))


def _mismatch(eager: float, compiled: float, where: str) -> TraceMismatch:
    return TraceMismatch(
        f"jit=True: {where} the compiled objective gives {compiled:.6g} where the model gives "
        f"{eager:.6g} with the same random numbers: either the model's structure depends on "
        "its values, which a trace cannot follow, or a random draw whose value is never used "
        "comes before others (the trace drops it, shifting the later draws; draw such values "
        "last). Use jit=False."
    )


class CompiledObjective:
    """The objective compiled by ``torch.jit.trace``, one trace per minibatch shape.

    The parameters are inputs of the traced function, so gradients reach them.
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

    def check(self, model, guide, x, kwargs, compiled_loss: float, rng_state: torch.Tensor, step: int):
        """Compare a compiled step's loss with the eager objective at the same random
        state (``rng_state``, the state before the step); raise :class:`TraceMismatch`."""
        with torch.random.fork_rng(devices=[]), torch.no_grad(), pyro.validation_enabled(False):
            torch.set_rng_state(rng_state)
            eager = self.objective.loss_and_surrogate(model, guide, x, **kwargs)[0].item()
        if abs(eager - compiled_loss) > 1e-4 + 1e-4 * abs(eager):
            raise _mismatch(eager, compiled_loss, f"at step {step}")

    def _function(self, model, guide, kwargs):
        n = len(self.params)
        tensor_keys = [k for k, v in kwargs.items() if torch.is_tensor(v)]
        objective = self.objective

        def f(*inputs):
            kw = dict(kwargs)
            kw.update(zip(tensor_keys, inputs[n + 1 :], strict=True))
            return objective.loss_and_surrogate(model, guide, inputs[n], **kw)

        return f, tensor_keys

    def _trace(self, model, guide, x, kwargs):
        f, tensor_keys = self._function(model, guide, kwargs)
        inputs = (*self.params, x, *[kwargs[k] for k in tensor_keys])
        rng = torch.get_rng_state()
        with torch.random.fork_rng(devices=[]), pyro.validation_enabled(False):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")  # tracer warnings and the deprecation notice
                traced = torch.jit.trace(f, inputs, check_trace=False)
            places = _value_conversions(caught)
            if places:
                raise TraceMismatch(
                    "jit=True: the model turns a tensor into a Python value (a branch or a number "
                    f"that depends on the data) at {', '.join(places)}; a trace would freeze the "
                    "path taken on the first minibatch and be silently wrong on others. Use "
                    "jit=False, or write the computation with tensor operations (torch.where)."
                )
            with torch.no_grad():
                torch.set_rng_state(rng)
                eager = f(*inputs)[0]
                torch.set_rng_state(rng)
                compiled = traced(*inputs)[0]
        if not torch.allclose(eager, compiled, rtol=1e-4, atol=1e-4):
            raise _mismatch(eager.item(), compiled.item(), "on its first minibatch")
        return traced
