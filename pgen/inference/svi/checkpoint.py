"""The fit's checkpoint: what it holds, where it goes, and the checks before a fit
writes one or resumes from one.

``checkpoint.pt`` holds the :class:`~pgen.inference.svi.state.SVIState`, the parameters
by name, the buffers of the model's and guide's modules, the optimizer state, every
random stream (torch, Python, NumPy and the shuffling generator), the objective's own
state (contrastive divergence's persistent chains) and the run's settings. It is written
atomically by :func:`pgen.io.save` every ``checkpoint_every`` epochs, at the end, on
early stopping and on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ... import io
from ...rng import get_state, set_state
from .config import FitConfig
from .state import SVIState

__all__ = ["CHECKPOINT_NAME", "Checkpoints"]

CHECKPOINT_NAME = "checkpoint.pt"
# what a resumed run must share besides the FitConfig fields marked ``resume``
_DATA_KEYS = ("n_train", "data_sha1", "n_val", "val_sha1")


class Checkpoints:
    """The checkpoint file of one fit (``None`` folder: no checkpoints)."""

    def __init__(self, folder: str | Path | None, *, resume: bool, main: bool = True):
        self.folder = None if folder is None else Path(folder)
        self.file = None if folder is None else self.folder / CHECKPOINT_NAME
        self.written: Path | None = None
        self.lock = None
        self.main = main  # in a data-parallel job only rank 0 writes; every rank reads
        if self.folder is not None:
            if main:
                self._prepare(resume)
            else:
                self._check_only(resume)

    def _check_only(self, resume: bool) -> None:
        """What another rank can check without writing: the same refusals as rank 0's."""
        if resume and not self.file.exists():
            raise FileNotFoundError(f"checkpoint {self.file} does not exist: there is nothing to resume")
        if not resume and self.file.exists():
            raise FileExistsError(
                f"checkpoint_dir {self.folder} already holds {CHECKPOINT_NAME} from an earlier fit; "
                "continue that fit with resume=True"
            )

    def _prepare(self, resume: bool) -> None:
        """Before any work: the folder is writable, this process holds it, stale
        temporary files of an interrupted write are gone, and a checkpoint is overwritten
        only by the run that wrote it (``resume=True``)."""
        if resume and not self.file.exists():
            raise FileNotFoundError(f"checkpoint {self.file} does not exist: there is nothing to resume")
        io.check_writable(self.folder, what="checkpoint_dir")
        self.lock = io.FolderLock(self.folder, purpose="a pgen.fit checkpoint_dir")
        self.lock.acquire()
        try:
            io.remove_stale_temporaries(self.file)
            if self.file.is_dir():
                raise io.CheckpointError(
                    f"checkpoint {self.file} is a directory; remove it or choose another checkpoint_dir"
                )
            if not resume and self.file.exists():
                raise FileExistsError(
                    f"checkpoint_dir {self.folder} already holds {CHECKPOINT_NAME} from an earlier "
                    "fit; continue that fit with resume=True, or choose another checkpoint_dir "
                    "(or delete the file) to start a new one"
                )
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def save(self, engine, state: SVIState, shuffle: torch.Generator) -> None:
        if self.file is None:
            return
        # a data-parallel job: every rank's random streams, gathered (all ranks call save)
        ranks = None if engine.group is None else engine.group.gather(get_state())
        if not self.main:
            return
        payload = {
            "config": engine.record,
            **state.to_checkpoint(),
            "param_names": [name for name, _ in engine.named_params],
            "params": {name: p.detach() for name, p in engine.named_params},
            "buffers": {role: dict(m.named_buffers()) for role, m in engine.modules.items()},
            "optimizer": engine.optimizer.state_dict(),
            "rng": {**get_state(), "shuffle": shuffle.get_state()},
            "objective": engine.objective_state(),
            **({} if ranks is None else {"rank_rng": ranks, "world_size": engine.group.world}),
        }
        try:
            self.written = io.save(self.file, payload, kind="svi")
        except OSError as error:
            kept = f"; the last checkpoint ({self.written}) is intact" if self.written else ""
            raise OSError(
                error.errno, f"could not write checkpoint {self.file}: {error.strerror or error}{kept}"
            ) from error

    def load(self, engine, shuffle: torch.Generator) -> SVIState:
        """Restore parameters, buffers, optimizer, objective and random streams into
        ``engine`` and return the state; refuse a checkpoint of other settings or shapes."""
        saved = io.load(self.file, kind="svi")
        keys = (*FitConfig.resume_fields(), *_DATA_KEYS)
        changed = FitConfig.differences(saved["config"], engine.record, keys)
        if changed:
            raise ValueError(
                f"cannot resume from {self.file}: these settings differ from the run "
                "that wrote it (a resumed run must repeat them to continue the same "
                "trajectory): " + "; ".join(changed)
            )
        world = 1 if engine.group is None else engine.group.world
        if saved.get("world_size", 1) != world:
            raise ValueError(
                f"cannot resume from {self.file}: it was written by a job of {saved.get('world_size', 1)} "
                f"process(es) and this one has {world}; resume with the same number of ranks to "
                "continue the same trajectory"
            )
        self._restore_parameters(engine, saved)
        engine.optimizer.load_state_dict(saved["optimizer"])
        engine.load_objective_state(saved.get("objective"))
        set_state(saved["rng"] if engine.group is None else saved["rank_rng"][engine.group.rank])
        shuffle.set_state(saved["rng"]["shuffle"])
        self.written = self.file
        return SVIState.from_checkpoint(saved)

    def _restore_parameters(self, engine, saved: dict) -> None:
        names = [name for name, _ in engine.named_params]
        if saved["param_names"] != names:
            missing = sorted(set(saved["param_names"]) - set(names))
            extra = sorted(set(names) - set(saved["param_names"]))
            raise ValueError(
                f"cannot resume from {self.file}: the model's parameters differ from the "
                f"checkpoint's (only in the checkpoint: {missing[:5]}; "
                f"only in the model: {extra[:5]})"
            )
        with torch.no_grad():
            for name, p in engine.named_params:
                value = saved["params"][name]
                if value.shape != p.shape:
                    raise ValueError(
                        f"cannot resume from {self.file}: parameter {name!r} has shape "
                        f"{tuple(value.shape)} in the checkpoint but {tuple(p.shape)} in the model"
                    )
                p.copy_(value)
            for role, module in engine.modules.items():
                buffers = dict(module.named_buffers())
                for bname, value in saved["buffers"].get(role, {}).items():
                    buffers[bname].copy_(value)


def restore_parameters(model, guide, x, kwargs: dict, path: str | Path) -> dict:
    """Load a fit's parameters (and buffers) from its checkpoint into the modules that
    ``model`` and ``guide`` register, e.g. to look at an interrupted run. The pair is
    run once on ``x`` to learn its Pyro parameter names; returns the checkpoint's
    ``{"step", "epoch"}``."""
    import pyro
    from pyro import poutine

    from .data import owner

    saved = io.load(path, kind="svi")
    with pyro.get_param_store().scope(), torch.random.fork_rng(devices=[]), torch.no_grad():
        trace = poutine.trace(guide).get_trace(x, **kwargs)
        poutine.trace(poutine.replay(model, trace=trace)).get_trace(x, **kwargs)
        params = dict(pyro.get_param_store().named_parameters())
        missing = sorted(set(saved["params"]) - set(params))
        if missing:
            raise io.CheckpointError(f"{path} holds parameters this model does not have: {missing[:5]}")
        for name, value in saved["params"].items():
            params[name].copy_(value)
        for role, fn in (("model", model), ("guide", guide)):
            module = owner(fn)
            if module is not None:
                buffers = dict(module.named_buffers())
                for bname, value in saved["buffers"].get(role, {}).items():
                    buffers[bname].copy_(value)
    return {"step": saved["step"], "epoch": saved["epoch"]}
