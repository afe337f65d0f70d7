"""Safe checkpoints.

A pgen checkpoint is a PyTorch file holding only tensors and plain data (numbers,
strings, booleans, ``None``, lists, tuples and string-keyed dicts), with a header
giving the format version, the kind of checkpoint and a SHA-256 digest of the
contents.

* **Loading never executes anything**: files are read with
  ``torch.load(..., weights_only=True)``, which refuses pickled code. (Pyro's
  ``ParamStore.load`` unpickles arbitrary objects: never use it on a file you did not
  write yourself.)
* **Corruption is detected**: PyTorch stores tensor bytes uncompressed and unchecked,
  so a damaged file can load as wrong numbers; the digest catches that.
* **Writes are atomic**: the file is written to a temporary file in the same folder,
  flushed to disk, then renamed over the target. A crash or Ctrl-C mid-write leaves
  the previous checkpoint intact.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import tempfile
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = ["save", "load", "save_model", "load_model", "CheckpointError", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_HEADER = "__pgen__"


class CheckpointError(ValueError):
    """A file is missing pieces, truncated, corrupted, foreign, or of another kind."""


def _digest(value: Any, h, where: str) -> None:
    """Feed a canonical encoding of ``value`` to the hash ``h``; reject non-plain data."""
    if torch.is_tensor(value):
        if value.layout != torch.strided or value.is_quantized:
            raise TypeError(f"{where}: only dense tensors can be saved, got layout {value.layout}")
        t = value.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, Mapping):
        h.update(b"D%d" % len(value))
        for key in sorted(value, key=str):
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where}: dict keys must be str or int, got {type(key).__name__}")
            h.update(f"K{type(key).__name__}:{key}".encode())
            _digest(value[key], h, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        h.update(f"{'L' if isinstance(value, list) else 'U'}{len(value)}".encode())
        for i, item in enumerate(value):
            _digest(item, h, f"{where}[{i}]")
    elif value is None or type(value) in (bool, int, float, str):
        # exact types: subclasses (numpy scalars, torch's version string) pickle as
        # classes that a weights-only load refuses
        h.update(f"P{type(value).__name__}:{value!r}".encode())
    else:
        raise TypeError(
            f"{where} is a {type(value).__name__}; a checkpoint holds only tensors, Python "
            "numbers, strings, booleans, None, lists, tuples and dicts"
        )


def _checksum(state: Mapping) -> str:
    h = hashlib.sha256()
    _digest(state, h, "state")
    return h.hexdigest()


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save(path: str | Path, state: Mapping[str, Any], *, kind: str) -> Path:
    """Write ``state`` to ``path`` atomically as a pgen checkpoint.

    Args:
        path: the file to write; its folder is created if needed.
        state: a dict of tensors and plain data (see the module docstring).
        kind: what the checkpoint holds, e.g. ``"svi"`` or ``"model"``; :func:`load`
            can insist on it.

    Returns:
        The path written.

    Raises:
        TypeError: ``state`` holds something other than tensors and plain data.
    """
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    from . import __version__

    header = {
        "format_version": FORMAT_VERSION,
        "kind": str(kind),
        "sha256": _checksum(state),
        "pgen_version": __version__,
        "torch_version": str(torch.__version__),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({_HEADER: header, "state": dict(state)}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def _torch_reason(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if "GLOBAL" in line or "Unsupported" in line:
            return line
    return lines[0] if lines else type(error).__name__


def load(path: str | Path, *, kind: str | None = None) -> dict[str, Any]:
    """Read a pgen checkpoint written by :func:`save`; nothing in the file is executed.

    Args:
        path: the checkpoint file.
        kind: if given, the checkpoint must be of this kind.

    Returns:
        The saved ``state`` dict (tensors on the CPU).

    Raises:
        FileNotFoundError: there is no such file.
        CheckpointError: the file is a directory, truncated, corrupted, not a pgen
            checkpoint (e.g. a pickle with code in it), of a newer format, or of
            another kind. The message names the file and the problem.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory, not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's notes on foreign pickles
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path} is not a pgen checkpoint: it is not a plain tensors-and-data PyTorch file "
            "(it may hold pickled code, or be another or corrupted file); pgen refused to load "
            f"it and ran nothing from it (torch says: {_torch_reason(error)})"
        ) from error
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{path} is truncated or corrupted: {reason}") from error
    if not isinstance(payload, dict) or _HEADER not in payload or "state" not in payload:
        raise CheckpointError(f"{path} is a PyTorch file but not a pgen checkpoint (no pgen header)")
    header, state = payload[_HEADER], payload["state"]
    version = header.get("format_version") if isinstance(header, dict) else None
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version!r}; this pgen reads format "
            f"{FORMAT_VERSION} and older: upgrade pgen"
        )
    if not isinstance(state, dict) or _checksum(state) != header.get("sha256"):
        raise CheckpointError(f"{path} is corrupted: its contents do not match the checksum written with it")
    if kind is not None and header.get("kind") != kind:
        raise CheckpointError(
            f"{path} is a {header.get('kind')!r} checkpoint; a {kind!r} checkpoint was expected"
        )
    return state


def save_model(path: str | Path, model: torch.nn.Module) -> Path:
    """Save a registered pgen model: its constructor arguments and its state dict.

    Args:
        path: the file to write.
        model: an instance of a class in ``pgen.models.registry`` (it has ``config``).

    Example:
        >>> pgen.io.save_model("vae.pt", vae)
        >>> vae2 = pgen.io.load_model("vae.pt")
    """
    from .models import registry

    spec = registry.spec_of(model)
    config = dict(model.config)
    json.dumps(config)  # constructor arguments must be plain data
    return save(
        path,
        {"model": spec.name, "config": config, "state_dict": dict(model.state_dict())},
        kind="model",
    )


def load_model(path: str | Path) -> torch.nn.Module:
    """Rebuild a model saved by :func:`save_model` (in eval mode)."""
    from .models import registry

    state = load(path, kind="model")
    try:
        spec = registry.get(state["model"])
        model = spec.cls(**state["config"])
        model.load_state_dict(state["state_dict"])
    except (KeyError, TypeError, RuntimeError) as error:
        raise CheckpointError(f"{path} does not describe a model this pgen can build: {error}") from error
    return model.eval()
