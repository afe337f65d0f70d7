"""Checkpoints of a :func:`pgen.sample` run, one file per chain, so that a run stopped
by Ctrl-C, a failing chain or a killed process continues where it was.

Each chain writes ``chain-<k>.pt`` in the checkpoint folder every ``every`` iterations
and when it finishes, through :func:`pgen.io.save` (atomic: a write that is killed
leaves the previous file). The file holds the draws and statistics so far and the
kernel's :meth:`~pgen.inference.kernels.hmc.HMC.state_dict` (adapted step size and
dual-averaging state, mass matrix, window estimate, last point, random state), with
the run's settings and a digest of its data. ``resume=True`` checks both against the
new call, takes finished chains as they are, and continues the others from their last
checkpoint; the continued run gives the same draws as one that was never stopped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ... import io

__all__ = ["ChainStore"]

KIND = "mcmc-chain"


def _digest(args, kwargs) -> str | None:
    """A digest of the model's arguments (``None`` where they are not tensors and plain
    data, e.g. a module passed as an argument: then they are not checked)."""
    try:
        return io._checksum({"args": list(args), "kwargs": dict(kwargs)})
    except (TypeError, ValueError):
        return None


class ChainStore:
    """Where a run's chains are checkpointed.

    Args:
        folder: the checkpoint folder (created if needed).
        every: iterations between checkpoints (>= 1).
        settings: the run's settings that a resumed run must share (JSON-able).
        args, kwargs: the model's arguments (their digest is kept and checked).
        resume: continue the chains found in ``folder``; without it, a folder that
            already holds chains is refused rather than overwritten.
    """

    def __init__(self, folder, *, every: int, settings: dict, args, kwargs, resume: bool):
        self.folder = io.check_writable(Path(folder), what="checkpoint folder")
        self.lock = io.FolderLock(self.folder, purpose="a pgen.sample checkpoint folder").acquire()
        for stale in self.folder.glob("chain-*.pt"):
            io.remove_stale_temporaries(stale)
        self.every, self.settings, self.resume = every, dict(settings), resume
        self.data = _digest(args, kwargs)
        found = sorted(p for p in self.folder.glob("chain-*.pt") if p.stem[6:].isdigit())
        self.saved: dict[int, dict] = {}
        try:
            if found and not resume:
                raise ValueError(
                    f"checkpoint folder {self.folder} already holds a run "
                    f"({', '.join(p.name for p in found)}); pass resume=True to continue it, or give "
                    "another folder"
                )
            for path in found:  # every chain's file is read and checked before anything runs
                self.saved[int(path.stem.split("-")[1])] = self._read(path)
        except BaseException:
            self.lock.release()
            raise

    def close(self) -> None:
        self.lock.release()

    def path(self, chain: int) -> Path:
        return self.folder / f"chain-{chain}.pt"

    def _read(self, path: Path) -> dict:
        state = io.load(path, kind=KIND)
        differ = sorted(
            k
            for k in set(self.settings) | set(state["settings"])
            if self.settings.get(k) != state["settings"].get(k)
        )
        if differ:
            shown = "; ".join(
                f"{k}: {state['settings'].get(k)!r} then, {self.settings.get(k)!r} now" for k in differ
            )
            raise ValueError(
                f"{path} was written by a run with other settings ({shown}); resume with the same ones"
            )
        if self.data is not None and state["data"] is not None and state["data"] != self.data:
            raise ValueError(
                f"{path} was written for other data: the model's arguments differ from that run's"
            )
        return state

    def load(self, chain: int) -> dict | None:
        """The chain's checkpoint (read and checked when the store was opened), or
        ``None``: not resuming, or not written yet."""
        return self.saved.get(chain)

    def save(self, chain: int, *, i: int, kept: dict, stats: dict, kernel_state: dict, extra: dict) -> None:
        state = {
            "settings": self.settings,
            "data": self.data,
            "i": i,
            "kept": {k: torch.stack(v) if v else torch.zeros(0) for k, v in kept.items()},
            "stats": {k: torch.as_tensor(np.asarray(v)) for k, v in stats.items()},
            "kernel": kernel_state,
            **extra,
        }
        io.save(self.path(chain), state, kind=KIND)
