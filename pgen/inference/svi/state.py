"""The state a fit carries from one step to the next.

Parameters and the optimizer's moments live in their torch objects; everything else
that the next step, the next epoch or a resumed run needs is here, and a checkpoint
holds exactly this (with the parameters, the optimizer state and the random streams).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["SVIState", "HISTORY_KEYS"]

HISTORY_KEYS = ("epoch", "step", "train_elbo", "val_elbo", "seconds")


@dataclass
class SVIState:
    """Attributes:
    step: optimizer steps taken.
    epoch: full passes over the data completed.
    pos: minibatches done in the current epoch.
    perm: the current epoch's order of the examples (``None`` between epochs).
    epoch_loss: the current epoch's losses, each weighted by its minibatch's share.
    losses, step_times: every step's loss (nats, full-data scale) and wall seconds.
    history: per completed epoch, :data:`HISTORY_KEYS`.
    best_val, best_epoch, bad_epochs, best_params: early stopping's record.
    seconds: training time so far, over resumed runs.
    """

    step: int = 0
    epoch: int = 0
    pos: int = 0
    perm: torch.Tensor | None = None
    epoch_loss: float = 0.0
    losses: list = field(default_factory=list)
    step_times: list = field(default_factory=list)
    history: dict = field(default_factory=lambda: {k: [] for k in HISTORY_KEYS})
    best_val: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    best_params: list | None = None
    seconds: float = 0.0

    def record_step(self, loss: float, seconds: float, size: int, n: int) -> None:
        """One step's loss on a minibatch of ``size`` of the ``n`` examples."""
        self.losses.append(loss)
        self.step_times.append(seconds)
        self.epoch_loss += loss * size / n
        self.step += 1
        self.pos += 1

    def end_epoch(self, train: float, val: float | None) -> None:
        """Close the epoch: one row of history, and the next epoch starts at its first batch."""
        self.epoch += 1
        for key, value in zip(HISTORY_KEYS, (self.epoch, self.step, train, val, self.seconds), strict=True):
            self.history[key].append(value)
        self.pos, self.perm, self.epoch_loss = 0, None, 0.0

    def improved(self, val: float, params: list[torch.Tensor]) -> bool:
        """Early stopping's bookkeeping after an epoch; True if ``val`` is the best yet."""
        if self.best_val is None or val > self.best_val:
            self.best_val, self.best_epoch, self.bad_epochs = val, self.epoch, 0
            self.best_params = [p.detach().clone() for p in params]
            return True
        self.bad_epochs += 1
        return False

    def history_with_partial(self, batch: int, n: int) -> dict:
        """The history, with a final ``partial=True`` row if the run stopped mid-epoch."""
        history = {k: list(v) for k, v in self.history.items()}
        if self.pos > 0:
            done = min(self.pos * batch / n, 1.0)
            history["epoch"].append(self.epoch + done)
            history["step"].append(self.step)
            history["train_elbo"].append(-self.epoch_loss / n / done)
            history["val_elbo"].append(None)
            history["seconds"].append(self.seconds)
            history["partial"] = [False] * (len(history["epoch"]) - 1) + [True]
        return history

    def to_checkpoint(self) -> dict:
        return {
            "step": self.step,
            "epoch": self.epoch,
            "pos": self.pos,
            "perm": self.perm,
            "epoch_loss": self.epoch_loss,
            "losses": torch.tensor(self.losses, dtype=torch.float64),
            "step_times": torch.tensor(self.step_times, dtype=torch.float64),
            "history": self.history,
            "early": {
                "best_val": self.best_val,
                "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs,
                "best_params": self.best_params,
            },
            "seconds": self.seconds,
        }

    @classmethod
    def from_checkpoint(cls, saved: dict) -> SVIState:
        early = saved["early"]
        return cls(
            step=saved["step"],
            epoch=saved["epoch"],
            pos=saved["pos"],
            perm=saved["perm"],
            epoch_loss=saved["epoch_loss"],
            losses=saved["losses"].tolist(),
            step_times=saved["step_times"].tolist(),
            history=saved["history"],
            best_val=early["best_val"],
            best_epoch=early["best_epoch"],
            bad_epochs=early["bad_epochs"],
            best_params=early["best_params"],
            seconds=saved["seconds"],
        )
