"""The arguments a model is called with by :func:`pgen.sample` and :func:`pgen.compare`:
checked and converted before anything runs.

``sample(model, *args, **kwargs)`` passes ``args`` and ``kwargs`` on to the model, so two
things go wrong silently in Pyro-style code: an engine option spelt the Pyro way
(``num_samples=``) reaches the model, and data in a form the model cannot use (a numpy
array, a pandas column, a list, an array holding NaN) fails deep inside it. Here:

* Pyro's option names are answered with pgen's (a model that really takes such an
  argument receives it through ``model_kwargs=``);
* numpy arrays and pandas objects become tensors, as do lists of numbers that hold a
  float (floats in torch's default dtype, integers as int64); a list of integers only
  is left alone, since it may be a size or a list of indices;
* a floating-point array holding NaN or infinity, and an empty array, are refused with
  the argument's name, how many values and the first one.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np
import torch

__all__ = ["PYRO_NAMES", "check_option_names", "model_arguments", "describe_arguments"]

# Pyro's (and NumPyro's) names for sample()'s options, and pgen's.
PYRO_NAMES = {
    "num_samples": "draws",
    "warmup_steps": "warmup",
    "num_warmup": "warmup",
    "num_chains": "chains",
    "jit_compile": "jit",
    "initial_params": "init",
    "init_strategy": "init",
    "disable_progbar": "progress (its opposite)",
    "progress_bar": "progress",
    "mp_context": "parallel",
    "rng_seed": "seed",
    "rng_key": "seed",
    "adapt_step_size": "step_size (None: adapted)",
    "full_mass": "dense_mass",
    "target_accept_prob": "target_accept",
}


def check_option_names(kwargs: Mapping, entry: str = "pgen.sample") -> None:
    """Raise ``TypeError`` for a Pyro-style option name among the model's keyword
    arguments, naming pgen's option."""
    found = [name for name in kwargs if name in PYRO_NAMES]
    if found:
        said = "; ".join(f"{name}= is pgen's {PYRO_NAMES[name]}=" for name in found)
        raise TypeError(
            f"{entry} got {', '.join(f'{n}=' for n in found)}, Pyro's name(s) for its options: {said}. "
            "Keyword arguments that are not options go to the model; if the model itself takes "
            f"such an argument, pass it as model_kwargs={{{found[0]!r}: ...}}"
        )


def _is_pandas(value) -> bool:
    return type(value).__module__.split(".")[0] == "pandas" and hasattr(value, "to_numpy")


def _numbers(value) -> tuple[bool, bool]:
    """(every leaf of a nested list is a real number, some leaf is a float)."""
    stack, has_float = [value], False
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, bool) or not isinstance(item, numbers.Real):
            return False, False
        elif not isinstance(item, numbers.Integral):
            has_float = True
    return True, has_float


def _to_tensor(name: str, value):
    """A tensor for numpy/pandas/float-list arguments; anything else unchanged."""
    if _is_pandas(value):
        value = value.to_numpy()
    if isinstance(value, list) and value:
        all_numbers, has_float = _numbers(value)
        if not (all_numbers and has_float):
            return value
        try:
            value = np.asarray(value, dtype=np.float64)
        except ValueError as error:  # ragged nesting
            raise ValueError(f"{name} is a list that is not rectangular ({error}); pass a tensor") from None
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f"{name} is a numpy array of Python objects; pass a numeric array or a tensor")
        value = np.ascontiguousarray(value)  # a copy in C order (pandas gives column order)
        if value.dtype == bool:
            return torch.tensor(value)
        if np.issubdtype(value.dtype, np.floating):
            return torch.tensor(value, dtype=torch.get_default_dtype())
        if np.issubdtype(value.dtype, np.integer):
            return torch.tensor(value, dtype=torch.int64)
        raise TypeError(f"{name} has numpy dtype {value.dtype}; pass a real-valued array")
    return value


def _check_tensor(name: str, value: torch.Tensor) -> None:
    if value.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(value.shape)}); the model needs data in it")
    if value.is_floating_point():
        finite = torch.isfinite(value)
        if not bool(finite.all()):
            bad = ~finite
            first = tuple(int(i) for i in bad.nonzero()[0]) if value.dim() else ()
            where = f"{name}[{', '.join(map(str, first))}]" if first else name
            raise ValueError(
                f"{name} holds {int(bad.sum())} non-finite value(s) (NaN or inf); the first is "
                f"{where} = {value[first].item()}. Remove or impute them; if the model masks them "
                "out (obs_mask, poutine.mask), fill them with any finite value."
            )


def model_arguments(args: tuple, kwargs: Mapping) -> tuple[tuple, dict]:
    """The model's arguments converted and checked (see the module docstring)."""
    out_args = []
    for i, value in enumerate(args):
        out_args.append(_checked(f"argument {i + 1} after the model", value))
    out_kwargs = {key: _checked(f"{key}=", value) for key, value in kwargs.items()}
    return tuple(out_args), out_kwargs


def _checked(name: str, value):
    value = _to_tensor(name, value)
    if torch.is_tensor(value):
        _check_tensor(name, value)
    return value


def describe_arguments(args: tuple, kwargs: Mapping) -> str:
    """One line per argument: its type, shape and dtype, with hints for integer
    covariates and lists; used in the error for a model that cannot be called."""
    lines, hints = [], []
    for name, value in [*((f"#{i + 1}", v) for i, v in enumerate(args)), *kwargs.items()]:
        if torch.is_tensor(value):
            lines.append(f"{name}: tensor {tuple(value.shape)} {value.dtype}")
            if not value.is_floating_point() and value.dtype != torch.bool and value.dim() >= 2:
                hints.append(f"{name} is an integer matrix; if it holds covariates pass it as float")
        else:
            lines.append(f"{name}: {type(value).__name__}")
    text = "; ".join(lines) if lines else "none"
    return f"arguments given: {text}" + (f" ({'; '.join(hints)})" if hints else "")
