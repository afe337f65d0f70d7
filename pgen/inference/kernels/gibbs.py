r"""Gibbs kernels for binary energy models: block Gibbs of a restricted Boltzmann
machine (:math:`h \mid v` then :math:`v \mid h`), and Gibbs of a binary pairwise model
(Boltzmann machine, Ising) over spins :math:`y \in \{-1, 1\}^d`, one site or one
independent block (a checkerboard colour) at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ...checks import check_int
from .batched import BatchedKernel

__all__ = ["RBMGibbs", "PairwiseGibbs", "rbm_sweep", "spin_block_update", "checkerboard"]


def rbm_sweep(v, weight, visible_bias, hidden_bias, u_hidden, u_visible):
    r"""One block Gibbs sweep of an RBM with :math:`E(v, h) = -v^\top W h - b^\top v - c^\top h`:
    :math:`h_j \sim \mathrm{Bernoulli}(\sigma(v^\top W_{:j} + c_j))`, then
    :math:`v_i \sim \mathrm{Bernoulli}(\sigma(W_{i:} h + b_i))`, each a uniform draw
    compared with its probability. Returns ``(v, h)``."""
    h = (u_hidden < torch.sigmoid(v @ weight + hidden_bias)).to(v.dtype)
    v = (u_visible < torch.sigmoid(h @ weight.T + visible_bias)).to(v.dtype)
    return v, h


def spin_block_update(y, weight, bias, block, u):
    r"""Resample the spins ``block`` (an independent set of the coupling graph) of
    :math:`E(y) = -\tfrac12 y^\top W y - b^\top y` (W symmetric, zero diagonal) given the
    rest: :math:`P(y_i = 1\mid y_{-i}) = \sigma(2(W_{i:}y + b_i))`. Returns the new ``y``."""
    field = y @ weight[:, block] + bias[block]
    y = y.clone()
    y[:, block] = torch.where(u < torch.sigmoid(2.0 * field), 1.0, -1.0).to(y.dtype)
    return y


def checkerboard(rows: int, cols: int) -> list[torch.Tensor]:
    """The two colour classes of a ``rows x cols`` grid (flattened row-major): the
    independent blocks of a nearest-neighbour Ising model."""
    rows, cols = check_int("rows", rows, minimum=1), check_int("cols", cols, minimum=1)
    idx = torch.arange(rows * cols)
    parity = (idx // cols + idx % cols) % 2
    return [idx[parity == 0], idx[parity == 1]]


class RBMGibbs(BatchedKernel):
    r"""Block Gibbs sampling of an RBM (:func:`rbm_sweep`); the state is
    ``{"v": (chains, visible)}`` of 0/1 values.

    Args:
        weight, visible_bias, hidden_bias: :math:`W` ``(visible, hidden)``, b, c; tensors
            (parameters are read at every sweep, so training updates are seen).
        num_chains: chains run together.
        init: initial visible units ``(chains, visible)`` (default: uniform 0/1 draws).
        sweeps: sweeps per transition (k of CD-k).
    """

    def __init__(self, weight, visible_bias, hidden_bias, *, num_chains: int = 1, init=None, sweeps: int = 1):
        super().__init__(num_chains)
        if (
            weight.dim() != 2
            or visible_bias.shape != weight.shape[:1]
            or hidden_bias.shape != weight.shape[1:]
        ):
            raise ValueError(
                "weight must be (visible, hidden) with visible_bias (visible,) and hidden_bias (hidden,); "
                f"got {tuple(weight.shape)}, {tuple(visible_bias.shape)}, {tuple(hidden_bias.shape)}"
            )
        self.weight, self.visible_bias, self.hidden_bias = weight, visible_bias, hidden_bias
        self.sweeps = check_int("sweeps", sweeps, minimum=1)
        self.init = init

    def _setup(self, args, kwargs):
        n, d = self.batch_chains, self.weight.shape[0]
        if self.init is None:
            v = torch.randint(0, 2, (n, d), device=self.weight.device).to(self.weight.dtype)
        else:
            v = torch.as_tensor(self.init, dtype=self.weight.dtype, device=self.weight.device)
            if v.shape != (n, d) or not ((v == 0) | (v == 1)).all():
                raise ValueError(f"init must be ({n}, {d}) of 0/1 values; got shape {tuple(v.shape)}")
        self._state = {"v": v}

    @torch.no_grad()
    def _transition(self, params):
        v = params["v"]
        w, b, c = self.weight.detach(), self.visible_bias.detach(), self.hidden_bias.detach()
        for _ in range(self.sweeps):
            u_h = torch.rand(v.shape[0], w.shape[1], device=v.device)
            v, h = rbm_sweep(v, w, b, c, u_h, torch.rand(v.shape, device=v.device))
        self.last_stats = {"mean_visible": float(v.mean())}
        return {"v": v}


class PairwiseGibbs(BatchedKernel):
    r"""Gibbs sampling of :math:`p(y) \propto \exp(\tfrac12 y^\top W y + b^\top y)`,
    :math:`y \in \{-1, 1\}^d`; the state is ``{"y": (chains, d)}``.

    Args:
        weight: symmetric ``(d, d)`` couplings with a zero diagonal.
        bias: ``(d,)``.
        blocks: ``None`` for a systematic scan one site at a time, or a list of index
            tensors covering every site once, each an independent set of the coupling
            graph (e.g. :func:`checkerboard` for a grid), updated as one block.
        num_chains: chains run together.
        init: initial spins ``(chains, d)`` of -1/1 (default: uniform).
    """

    def __init__(self, weight, bias, *, blocks: Sequence | None = None, num_chains: int = 1, init=None):
        super().__init__(num_chains)
        d = weight.shape[0]
        if weight.shape != (d, d) or bias.shape != (d,):
            raise ValueError(
                f"weight must be (d, d) and bias (d,); got {tuple(weight.shape)}, {tuple(bias.shape)}"
            )
        if not torch.allclose(weight, weight.T) or bool(weight.diagonal().abs().max() > 0):
            raise ValueError("weight must be symmetric with a zero diagonal (E(y) = -1/2 y^T W y - b^T y)")
        if blocks is None:
            blocks = [torch.tensor([i]) for i in range(d)]
        blocks = [torch.as_tensor(b, dtype=torch.long).reshape(-1) for b in blocks]
        covered = torch.cat(blocks).sort().values
        if not torch.equal(covered, torch.arange(d)):
            raise ValueError(f"blocks must cover each of the {d} sites exactly once")
        for i, block in enumerate(blocks):
            if bool(weight[block][:, block].abs().max() > 0):
                raise ValueError(
                    f"block {i} is not an independent set: some of its sites are coupled, so they "
                    "cannot be resampled together"
                )
        self.weight, self.bias, self.blocks, self.init = weight, bias, blocks, init

    def _setup(self, args, kwargs):
        n, d = self.batch_chains, self.weight.shape[0]
        if self.init is None:
            y = torch.randint(0, 2, (n, d), device=self.weight.device).to(self.weight.dtype) * 2 - 1
        else:
            y = torch.as_tensor(self.init, dtype=self.weight.dtype, device=self.weight.device)
            if y.shape != (n, d) or not ((y == -1) | (y == 1)).all():
                raise ValueError(f"init must be ({n}, {d}) of -1/1 spins; got shape {tuple(y.shape)}")
        self._state = {"y": y}

    @torch.no_grad()
    def _transition(self, params):
        y = params["y"]
        w, b = self.weight.detach(), self.bias.detach()
        for block in self.blocks:
            block = block.to(y.device)
            y = spin_block_update(y, w, b, block, torch.rand(y.shape[0], len(block), device=y.device))
        self.last_stats = {"magnetization": float(y.mean())}
        return {"y": y}
