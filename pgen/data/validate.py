"""Validation of data given to any pgen entry point.

Every check raises ``ValueError`` (``TypeError`` for a wrong type) naming the argument,
what it received and what is allowed. Floating-point data of any precision is accepted
and returned in torch's default dtype; nothing else is converted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["check_data", "check_labels", "check_same_length", "check_unit_interval"]


def _as_tensor(name: str, value) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f"{name} is a numpy array of Python objects; pgen needs a numeric array")
        return torch.from_numpy(value)
    if torch.is_tensor(value):
        return value
    raise TypeError(f"{name} must be a torch.Tensor or a numpy array, got {type(value).__name__}")


def _first_index(mask: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(i) for i in mask.nonzero()[0])


def check_data(
    x,
    *,
    name: str = "x",
    event_shape: Sequence[int] | None = None,
    min_rank: int = 2,
) -> torch.Tensor:
    """Check a data array and return it as a tensor of torch's default float dtype.

    Args:
        x: array of shape ``(N, *event_shape)``.
        name: the argument name used in error messages.
        event_shape: the shape of one example the model expects, e.g. ``(784,)``;
            ``None`` accepts any.
        min_rank: the smallest number of dimensions allowed (2: examples x features).

    Returns:
        ``x`` as a float tensor (``torch.get_default_dtype()``).

    Raises:
        TypeError: ``x`` is not a tensor or array.
        ValueError: ``x`` is not floating point, is empty, has the wrong rank or shape,
            or holds NaN or infinite values (the message gives how many and the first).
    """
    x = _as_tensor(name, x)
    if not x.is_floating_point():
        hint = ""
        if x.dtype in (torch.uint8, torch.int16, torch.int32, torch.int64):
            hint = " (for 8-bit images scale first, e.g. x.float() / 255)"
        raise ValueError(f"{name} has dtype {x.dtype}; pgen needs floating-point data{hint}")
    if x.dim() < min_rank:
        raise ValueError(
            f"{name} has shape {tuple(x.shape)} ({x.dim()} dimension(s)); expected at least "
            f"{min_rank} dimensions: examples along the first"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}); it needs at least one example")
    if event_shape is not None and tuple(x.shape[1:]) != tuple(event_shape):
        expected = ", ".join(str(int(d)) for d in event_shape)
        hint = ""
        if x[0].numel() == int(np.prod(event_shape)) and len(event_shape) == 1:
            hint = f"; flatten it with {name}.reshape(len({name}), -1)"
        raise ValueError(f"{name} has shape {tuple(x.shape)}, but the model expects (N, {expected}){hint}")
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        bad = ~finite
        first = _first_index(bad)
        raise ValueError(
            f"{name} contains {int(bad.sum())} non-finite value(s) (NaN or inf); the first is "
            f"{name}[{', '.join(map(str, first))}] = {x[first].item()}. Remove or impute them."
        )
    out = x.to(torch.get_default_dtype())
    if out.dtype != x.dtype and not bool(torch.isfinite(out).all()):
        worst = float(x.abs().max())
        limit = torch.finfo(out.dtype).max
        raise ValueError(
            f"{name} has values up to {worst:.3g} in magnitude, beyond the range of {out.dtype} "
            f"(about {limit:.3g}), torch's default dtype that pgen computes in; rescale the data "
            "(or set torch.set_default_dtype(torch.float64))"
        )
    return out


def check_labels(
    y,
    *,
    name: str = "y",
    num_classes: int | None = None,
    n: int | None = None,
) -> torch.Tensor:
    """Check integer class labels and return them as an int64 tensor.

    Args:
        y: 1-D array of labels.
        name: the argument name used in error messages.
        num_classes: labels must lie in ``[0, num_classes)``; ``None`` skips the range check.
        n: the number of examples the labels must match.

    Raises:
        TypeError: ``y`` is not a tensor or array.
        ValueError: ``y`` is not integer, not 1-D, of the wrong length, or out of range.
    """
    y = _as_tensor(name, y)
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"{name} has dtype {y.dtype}; class labels must be integers")
    if y.dim() != 1:
        raise ValueError(f"{name} has shape {tuple(y.shape)}; class labels must be 1-D")
    if n is not None and y.shape[0] != n:
        raise ValueError(f"{name} has {y.shape[0]} labels but there are {n} examples")
    if y.shape[0] == 0:
        raise ValueError(f"{name} is empty; it needs at least one label")
    if num_classes is not None:
        bad = (y < 0) | (y >= num_classes)
        if bool(bad.any()):
            first = _first_index(bad)[0]
            raise ValueError(
                f"{name} has {int(bad.sum())} label(s) outside [0, {num_classes - 1}]; the first "
                f"is {name}[{first}] = {int(y[first])}"
            )
    return y.long()


def check_same_length(**arrays) -> None:
    """Raise ``ValueError`` unless all given arrays have the same first dimension."""
    lengths = {k: int(v.shape[0]) for k, v in arrays.items() if v is not None}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k} has {v}" for k, v in lengths.items())
        raise ValueError(f"the arrays must have one example per row and the same length: {shown}")


def check_unit_interval(x: torch.Tensor, *, name: str = "x", binary: bool = False) -> None:
    """Raise ``ValueError`` unless ``x`` lies in [0, 1] (or is exactly 0/1 if ``binary``)."""
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        raise ValueError(
            f"{name} has values in [{lo:g}, {hi:g}]; expected values in [0, 1] "
            "(scale with pgen.data.scale_to_unit)"
        )
    if binary:
        nonbinary = (x != 0) & (x != 1)
        if bool(nonbinary.any()):
            first = _first_index(nonbinary)
            raise ValueError(
                f"{name} must be binary (0 or 1) for a Bernoulli likelihood, but "
                f"{int(nonbinary.sum())} value(s) are not; the first is "
                f"{name}[{', '.join(map(str, first))}] = {x[first].item():g}. Binarize it "
                "(pgen.data.binarize, static_binarize, or fit(transform=dynamic_binarize)) "
                "or use a Gaussian likelihood"
            )
