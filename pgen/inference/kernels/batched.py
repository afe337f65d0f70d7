"""The base of the energy-model kernels: many chains held as one batched tensor, run by
:func:`pgen.sample` as one chain that it reports as ``batch_chains`` chains."""

from __future__ import annotations

import torch

from ...checks import check_int
from .base import PgenKernel

__all__ = ["BatchedKernel", "initial_state", "rows"]


class BatchedKernel(PgenKernel):
    """State: ``{site: (chains, ...)}``; statistics of the last transition in
    ``last_stats``; no transforms (the sites are unconstrained)."""

    transforms: dict = {}

    def __init__(self, num_chains: int):
        self.batch_chains = check_int("num_chains", num_chains, minimum=1)
        self.last_stats: dict | None = None
        self._state: dict[str, torch.Tensor] | None = None
        self._warmup = 0
        self._step = 0

    def setup(self, warmup_steps, *args, **kwargs):
        self._warmup, self._step = warmup_steps, 0
        self._setup(args, kwargs)

    def _setup(self, args, kwargs):
        pass

    @property
    def initial_params(self):
        return self._state

    @initial_params.setter
    def initial_params(self, params):
        self._state = {k: torch.as_tensor(v) for k, v in params.items()}

    def logging(self):
        return {k: f"{v:.3g}" for k, v in (self.last_stats or {}).items()}

    def diagnostics(self):
        return dict(self.last_stats or {})

    def sample(self, params):
        self._step += 1
        self._state = self._transition(params)
        return self._state

    def _transition(self, params):  # pragma: no cover - abstract
        raise NotImplementedError


def initial_state(init, num_chains: int, name: str) -> dict[str, torch.Tensor]:
    if callable(init):
        init = init(num_chains)
    if not isinstance(init, dict) or not init:
        raise TypeError(f"{name} must be a dict {{site: (num_chains, ...) tensor}} or a callable giving one")
    out = {}
    for site, value in init.items():
        value = torch.as_tensor(value, dtype=torch.get_default_dtype()).clone()
        if value.dim() < 1 or value.shape[0] != num_chains:
            raise ValueError(
                f"{name}[{site!r}] must have num_chains={num_chains} rows; got shape {tuple(value.shape)}"
            )
        out[site] = value
    return out


def rows(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-chain ``(chains,)`` mask shaped to broadcast against ``like`` ``(chains, ...)``."""
    return mask.reshape(-1, *([1] * (like.dim() - 1)))
