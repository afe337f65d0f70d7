"""Compiling a function of one flat tensor (the potential's value and gradient) into a
TorchScript graph that behaves as the eager function does.

:func:`compile_function` traces ``fn`` with ``make_fx`` (forward and backward as one graph
of ATen operations) and runs it through ``torch.jit.trace`` and ``freeze``. Two ways in
which such a graph silently differs from the Python it came from are closed here:

* **Value-dependent Python.** A model that reads its latent values (``float(z)``,
  ``z.item()``, an ``if`` on a tensor) is traced along one branch, and the graph then
  stands for every point. :func:`check_value_independent` first traces on a *fake*
  tensor (shapes, no values), where reading a value is impossible, and refuses such a
  model (:class:`DataDependentModel`).
* **Dropped checks.** ``make_fx`` splits ``linalg.cholesky`` (and ``inv``, ``solve``, ...)
  into the factorization, which returns an ``info`` code, and a separate
  ``_linalg_check_errors`` that raises; ``torch.jit.trace`` does not record operations
  that return nothing, so the compiled graph would return a garbage factor of a matrix
  that is not positive definite. The checks are turned into one more output, and the
  compiled function raises ``torch.linalg.LinAlgError`` as the eager one does. Any other
  operation that returns nothing (an assertion) makes the function uncompilable.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

__all__ = ["compile_function", "check_value_independent", "DataDependentModel", "CompiledFunction"]

_aten = torch.ops.aten


class DataDependentModel(RuntimeError):
    """The function's Python code reads the values of its input."""


def check_value_independent(fn: Callable, z0: torch.Tensor) -> None:
    """Trace ``fn`` on a fake tensor shaped like ``z0``; raise :class:`DataDependentModel`
    if its Python code reads values. Other failures of the fake trace (an operation
    with no shape rule) are left to the real trace and the caller's checks."""
    from torch.fx.experimental.proxy_tensor import make_fx

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make_fx(fn, tracing_mode="fake", _allow_non_fake_inputs=True)(z0)
    except Exception as error:  # noqa: BLE001 - classified below
        text = f"{type(error).__name__}: {error}"
        if "DataDependent" in text or "data-dependent" in text.lower():
            raise DataDependentModel(
                "the model's Python code reads the values of its latent variables (float(), "
                ".item(), or an `if` on a tensor), so one compiled graph cannot stand for it"
            ) from error


def _checks_as_output(graph: torch.fx.Graph) -> list[str]:
    """Replace every ``_linalg_check_errors(info, api, ...)`` by one extra output: whether
    any ``info`` is non-zero. Returns the APIs checked (``[]``: nothing changed)."""
    checks = [
        n for n in graph.nodes if n.op == "call_function" and n.target is _aten._linalg_check_errors.default
    ]
    if not checks:
        return []
    output = next(n for n in graph.nodes if n.op == "output")
    with graph.inserting_before(output):
        failed = [
            graph.call_function(_aten.any.default, (graph.call_function(_aten.ne.Scalar, (c.args[0], 0)),))
            for c in checks
        ]
        any_failed = graph.call_function(
            _aten.any.default, (graph.call_function(_aten.stack.default, (failed,)),)
        )
    (results,) = output.args
    output.args = ((*results, any_failed),)
    apis = sorted({str(c.args[1]) for c in checks})
    for c in checks:
        graph.erase_node(c)
    return apis


def _void_operations(graph: torch.fx.Graph) -> list[str]:
    """Operations that return nothing (assertions), which ``torch.jit.trace`` would drop."""
    return sorted(
        {
            str(n.target)
            for n in graph.nodes
            if n.op == "call_function" and n.meta.get("val", 0) is None and not n.users
        }
    )


class CompiledFunction:
    """A compiled ``fn(z) -> (value, grad)``; raises ``torch.linalg.LinAlgError`` where
    a linear-algebra check of the original fails."""

    def __init__(self, scripted, apis: list[str]):
        self.scripted, self.apis = scripted, apis

    def __call__(self, z: torch.Tensor):
        with torch.no_grad():
            out = self.scripted(z)
        if not self.apis:
            return out
        *results, failed = out
        if bool(failed):
            raise torch.linalg.LinAlgError(
                f"{' or '.join(self.apis)}: the factorization could not be completed (the matrix is "
                "not positive-definite, or is singular); found by the compiled potential"
            )
        return tuple(results)


def compile_function(fn: Callable, z0: torch.Tensor) -> CompiledFunction:
    """``fn`` (a function of one tensor returning a tuple of tensors) compiled at ``z0``.

    Raises:
        DataDependentModel: ``fn``'s Python code reads the values of ``z``.
        RuntimeError: ``fn`` holds an operation the compiled graph would drop, or any
            error of tracing.
    """
    from torch.fx.experimental.proxy_tensor import make_fx

    check_value_independent(fn, z0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # values read from constants (``prior_sd.item()``) are constants of the graph;
        # reading the input's values was refused by the fake trace above
        graph = make_fx(fn, _error_on_data_dependent_ops=False)(z0)
    apis = _checks_as_output(graph.graph)
    graph.graph.eliminate_dead_code()
    dropped = _void_operations(graph.graph)
    if dropped:
        raise RuntimeError(f"the model holds checks that a compiled graph would drop: {', '.join(dropped)}")
    graph.recompile()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.freeze(torch.jit.trace(graph, (z0,), check_trace=False).eval())
    return CompiledFunction(scripted, apis)
