"""The data a fit sees: checks, the ``data=None`` form, and fingerprints for resume."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import torch

from ...data.files import ImageFiles
from ...data.validate import check_data, check_labels, check_same_length

__all__ = ["split_data", "prepare", "without_data", "sha1", "owner"]


def split_data(data, name: str):
    """``x`` or ``(x, y)`` -> ``(x, y or None)``."""
    if isinstance(data, (tuple, list)):
        if not 1 <= len(data) <= 2:
            raise ValueError(
                f"{name} must be x, or a pair (x, y); got a {type(data).__name__} of {len(data)} items"
            )
        return data[0], (data[1] if len(data) == 2 else None)
    return data, None


def owner(fn) -> torch.nn.Module | None:
    """The module a model or guide method belongs to (``vae`` for ``vae.model``)."""
    found = getattr(fn, "__self__", None)
    if isinstance(found, torch.nn.Module):
        return found
    return fn if isinstance(fn, torch.nn.Module) else None


def prepare(data, name: str, num_classes: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Check ``x`` (and ``y``): floating point, finite, non-empty; integer ``y`` must be
    labels, in ``[0, num_classes)`` when that is given (``None``: the model checks the
    range itself, in its ``validate_data``)."""
    x, y = split_data(data, name)
    if isinstance(x, ImageFiles):  # read on demand; 8-bit pixels are finite by construction
        if len(x) == 0:
            raise ValueError(f"{name} ({x.source}) holds no images")
    else:
        x = check_data(x, name=name if y is None else f"{name}[0] (x)")
    if y is not None:
        y_name = f"{name}[1] (y)"
        if (torch.is_tensor(y) and y.is_floating_point()) or (
            isinstance(y, np.ndarray) and np.issubdtype(y.dtype, np.floating)
        ):
            y = check_data(y, name=y_name, min_rank=1)
        else:
            y = check_labels(y, name=y_name, num_classes=num_classes)
        check_same_length(**{name: x, y_name: y})
    return x, y


def sha1(*tensors) -> str:
    """A fingerprint of tensors (dtype, shape and bytes); of image files, their own
    (:meth:`ImageFiles.fingerprint`)."""
    h = hashlib.sha1()
    for t in tensors:
        if isinstance(t, ImageFiles):
            h.update(t.fingerprint().encode())
        elif t is not None:
            t = t.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def without_data(model: Callable, guide: Callable, args: tuple, kwargs: dict):
    """For ``data=None``: a one-row placeholder data set, and model/guide wrappers that
    drop it and call ``fn(*args, **kwargs)``; also a fingerprint of the arguments."""

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
    fingerprint = sha1(*values) + hashlib.sha1(others.encode()).hexdigest()[:8]
    return wrap(model), wrap(guide), torch.zeros(1, 1), fingerprint
