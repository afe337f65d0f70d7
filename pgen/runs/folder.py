"""A run folder: its files, its state, its lock, and atomic reads and writes.

A run folder holds

* ``config.json``: the model, its constructor arguments (those not read off the data),
  the data and the ``pgen.fit`` arguments; written only once every argument has been
  checked and the model built;
* ``checkpoint.pt``: the training state, for ``pgen train --resume``;
* ``model.pt``: the trained model (:func:`pgen.models.load_model`);
* ``history.json``, ``training.png`` and the other figures;
* ``metrics.json``: written by ``pgen evaluate``;
* ``.pgen.lock``: held by the process working in the folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import io

__all__ = ["RunFolder", "CONFIG", "CHECKPOINT", "MODEL", "HISTORY", "METRICS"]

CONFIG, CHECKPOINT, MODEL, HISTORY, METRICS = (
    "config.json",
    "checkpoint.pt",
    "model.pt",
    "history.json",
    "metrics.json",
)
_REQUIRED = {"model": str, "model_args": dict, "data": dict, "fit": dict}


class RunFolder:
    """The files of one run folder.

    States (:attr:`state`): ``"empty"`` (no run), ``"configured"`` (a config but no
    checkpoint: the run stopped before its first checkpoint, so it can be started again),
    ``"interrupted"`` (a checkpoint, no trained model) and ``"finished"``.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = io.FolderLock(self.path, purpose="a pgen run folder")

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r}, state={self.state!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def state(self) -> str:
        if self.file(MODEL).is_file():
            return "finished"
        if self.file(CHECKPOINT).is_file():
            return "interrupted"
        if self.file(CONFIG).exists():
            return "configured"
        return "empty"

    # ------------------------------------------------------------------ locking

    def lock(self) -> io.FolderLock:
        """Hold the folder against other processes (a context manager)."""
        return self._lock

    def check_writable(self, what: str = "run folder") -> None:
        io.check_writable(self.path, what=what)

    # ------------------------------------------------------------------ files

    def read_config(self) -> dict:
        """``config.json``, checked for the keys every run has."""
        if not self.file(CONFIG).is_file():
            raise FileNotFoundError(f"{self.path} is not a pgen run folder: it has no {CONFIG}")
        cfg = io.read_json(self.file(CONFIG))
        if not isinstance(cfg, dict):
            raise ValueError(f"{self.file(CONFIG)} is not a pgen run configuration (not a JSON object)")
        for key, kind in _REQUIRED.items():
            if not isinstance(cfg.get(key), kind):
                raise ValueError(
                    f"{self.file(CONFIG)} is not a complete pgen run configuration: it has no {key!r} "
                    f"{kind.__name__} (keys: {sorted(cfg)}); it was not written by this pgen, or was edited"
                )
        return cfg

    def write_json(self, name: str, obj: Any) -> Path:
        return io.write_json(self.file(name), obj)

    def read_metrics(self) -> dict:
        if not self.file(METRICS).is_file():
            raise FileNotFoundError(f"{self.path} has no {METRICS}; run `pgen evaluate {self.path}` first")
        return io.read_json(self.file(METRICS))

    def clear_unstarted(self) -> None:
        """Remove the files of a run that never wrote a checkpoint (``"configured"``)."""
        for name in (CONFIG, HISTORY):
            self.file(name).unlink(missing_ok=True)

    def claim(self) -> None:
        """Make the folder ready for a new run: refuse one that holds a run (started or
        finished); clear one whose run never reached its first checkpoint."""
        for name in (CONFIG, CHECKPOINT, MODEL):
            if self.file(name).is_dir():
                where = self.file(name)
                raise IsADirectoryError(
                    f"{where} is a folder where pgen keeps a file: remove it, or choose another --out"
                )
        state = self.state
        if state in ("interrupted", "finished"):
            raise FileExistsError(
                f"{self.path} already holds a run ({state}); continue it with `pgen train --resume "
                f"{self.path}` or choose another --out"
            )
        if state == "configured":
            self.clear_unstarted()
