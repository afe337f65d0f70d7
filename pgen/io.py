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
  the previous checkpoint intact, and :func:`remove_stale_temporaries` clears what a
  killed write left behind.

Also the file helpers the engines and run folders share: atomic JSON, a check that a
folder can be written before any work starts, and :class:`FolderLock`, which keeps two
processes out of one folder. This module is a leaf: it imports nothing from pgen
(models are saved by :func:`pgen.models.save_model`, next to the registry).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import pickle
import sys
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "save",
    "load",
    "CheckpointError",
    "FORMAT_VERSION",
    "write_json",
    "read_json",
    "check_writable",
    "remove_stale_temporaries",
    "FolderLock",
    "FolderLockedError",
]

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


def _on_cpu(value: Any) -> Any:
    """``value`` with every tensor in it (through dicts, lists and tuples) on the CPU."""
    if torch.is_tensor(value):
        return value.detach().cpu() if value.device.type != "cpu" else value
    if isinstance(value, Mapping):
        return {k: _on_cpu(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_on_cpu(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_on_cpu(v) for v in value)
    return value


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
    header = {
        "format_version": FORMAT_VERSION,
        "kind": str(kind),
        "sha256": _checksum(state),
        "pgen_version": _pgen_version(),
        "torch_version": str(torch.__version__),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = _on_cpu(dict(state))  # a checkpoint written on a GPU loads anywhere
    _atomic(path, lambda f: torch.save({_HEADER: header, "state": state}, f))
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
    except MemoryError:
        raise
    except Exception as error:  # any other failure of a damaged file: truncated, flipped bytes, ...
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(
            f"{path} is truncated, corrupted or not a PyTorch file ({type(error).__name__}: {reason})"
        ) from error
    if not isinstance(payload, dict) or _HEADER not in payload or "state" not in payload:
        raise CheckpointError(f"{path} is a PyTorch file but not a pgen checkpoint (no pgen header)")
    header, state = payload[_HEADER], payload["state"]
    version = header.get("format_version") if isinstance(header, dict) else None
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version!r}; this pgen reads format "
            f"{FORMAT_VERSION} and older: upgrade pgen"
        )
    try:
        intact = isinstance(state, dict) and _checksum(state) == header.get("sha256")
    except (TypeError, ValueError, RuntimeError):
        intact = False
    if not intact:
        raise CheckpointError(f"{path} is corrupted: its contents do not match the checksum written with it")
    if kind is not None and header.get("kind") != kind:
        raise CheckpointError(
            f"{path} is a {header.get('kind')!r} checkpoint; a {kind!r} checkpoint was expected"
        )
    return state


def _pgen_version() -> str:
    package = sys.modules.get(__name__.rpartition(".")[0])
    return str(getattr(package, "__version__", "unknown"))


def _atomic(path: Path, write) -> None:
    """``write(file)`` into a temporary file beside ``path``, flushed to disk, then renamed
    over it; on any failure (a full disk, Ctrl-C) the temporary file is removed and
    ``path`` is as it was."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    text = (json.dumps(obj, indent=2) + "\n").encode()
    _atomic(path, lambda f: f.write(text))
    return path


def read_json(path: str | Path, *, what: str = "file") -> Any:
    """Read a JSON file; a missing file is ``FileNotFoundError``, invalid JSON a
    ``ValueError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error


def check_writable(folder: str | Path, *, what: str = "folder") -> Path:
    """Create ``folder`` if needed and check that files can be written in it, before any
    work is done; raise an ``OSError`` that names the folder and the reason."""
    folder = Path(folder)
    try:
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "it exists and is not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".pgen-write-test.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise type(error)(
            error.errno, f"{what} {folder} cannot be written: {error.strerror or error}"
        ) from error
    return folder


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete the temporary files that interrupted atomic writes of ``path`` left behind
    (``.NAME.*.tmp`` beside it). Call it only while holding the folder's lock."""
    path = Path(path)
    removed = []
    if path.parent.is_dir():
        for tmp in path.parent.glob(f".{path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed


class FolderLockedError(OSError):
    """Another process holds the folder."""


class FolderLock:
    """An exclusive lock on a folder (``fcntl.flock`` on ``FOLDER/.pgen.lock``), held by
    one process at a time and re-entrant within it: a run folder locked by ``pgen train``
    can be locked again by the ``pgen.fit`` it calls. The lock file stays (it is empty
    apart from the holder's pid); the lock itself ends with the process.
    """

    _held: dict[str, list] = {}  # resolved path -> [file object, count]

    def __init__(self, folder: str | Path, *, purpose: str = "a pgen run folder"):
        self.folder, self.purpose = Path(folder), purpose
        self.path = self.folder / ".pgen.lock"
        self.acquired = False

    def acquire(self) -> FolderLock:
        key = str(self.path.resolve())
        held = self._held.get(key)
        if held is not None:
            held[1] += 1
            self.acquired = True
            return self
        handle = open(self.path, "a+")  # noqa: SIM115 - kept open while the lock is held
        try:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # no flock on this platform: no protection, but no failure
            pass
        except OSError as error:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise FolderLockedError(
                errno.EBUSY,
                f"{self.folder} is in use by another pgen process (pid {holder}), as "
                f"{self.purpose}; wait for it to finish, or choose another folder",
            ) from error
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._held[key] = [handle, 1]
        self.acquired = True
        return self

    def release(self) -> None:
        if not self.acquired:
            return
        self.acquired = False
        key = str(self.path.resolve())
        held = self._held.get(key)
        if held is None:
            return
        held[1] -= 1
        if held[1] == 0:
            del self._held[key]
            held[0].close()  # closing the file releases the flock

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
