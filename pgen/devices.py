"""Where a computation runs: ``device=`` of pgen's engines, checked in one place.

``"cpu"``, ``"cuda"`` (the current GPU), ``"cuda:1"``, ``"mps"`` (Apple GPUs), a
``torch.device``, or ``"auto"``: the first GPU when one is usable, else the CPU. A GPU
that is asked for and absent is an error that says what this machine has, never a silent
fall back to the CPU. :func:`to_device` moves the tensors of nested arguments (tuples,
lists, dicts) and leaves everything else alone.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = ["resolve_device", "to_device", "available", "device_of"]


def available() -> list[str]:
    """The devices this machine has, e.g. ``["cpu", "cuda:0", "cuda:1"]``."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def resolve_device(device, name: str = "device") -> torch.device:
    """``device`` as a ``torch.device`` that exists here, or a ``ValueError`` naming
    ``name``, the value and the devices this machine has."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(
            f"{name} must be a string such as 'cpu', 'cuda', 'cuda:1' or 'auto', got {type(device).__name__}"
        )
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as error:
        raise ValueError(
            f"{name}={device!r} is not a device: use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto' "
            f"(this machine has {', '.join(available())})"
        ) from error
    here = available()
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"{name}={device!r} asks for a GPU, but torch sees none here (torch {torch.__version__}, "
                f"CUDA build: {torch.version.cuda or 'no'}); this machine has {', '.join(here)}. "
                "Use device='cpu', or 'auto' to take a GPU only where there is one"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{name}={device!r}: this machine has {', '.join(here)}")
    elif dev.type == "mps" and "mps" not in here:
        raise ValueError(f"{name}={device!r}: MPS is not available here; this machine has {', '.join(here)}")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(
            f"{name}={device!r}: pgen runs on 'cpu', 'cuda' or 'mps' (this machine has {', '.join(here)})"
        )
    return dev


def to_device(value, device: torch.device):
    """``value`` with every tensor in it (through tuples, lists and dicts) on ``device``."""
    if torch.is_tensor(value):
        return value.to(device)
    if isinstance(value, tuple):
        return (
            type(value)(*(to_device(v, device) for v in value))
            if hasattr(value, "_fields")
            else tuple(to_device(v, device) for v in value)
        )
    if isinstance(value, list):
        return [to_device(v, device) for v in value]
    if isinstance(value, Mapping):
        return {k: to_device(v, device) for k, v in value.items()}
    return value


def device_of(*values) -> torch.device:
    """The device of the first tensor in ``values`` (through tuples, lists and dicts);
    the CPU if there is none: where a model's data, and so its draws, live."""
    for value in values:
        if torch.is_tensor(value):
            return value.device
        inner = (
            value.values()
            if isinstance(value, Mapping)
            else value
            if isinstance(value, (tuple, list))
            else ()
        )
        for v in inner:
            found = device_of(v)
            if found.type != "cpu":
                return found
    return torch.device("cpu")
