r"""Energy-based models :math:`p(x) = e^{-E(x)}/Z`.

:class:`BoltzmannMachine`: the fully visible Boltzmann machine over spins
:math:`y \in \{-1, 1\}^d` with :math:`E(y) = -\tfrac12 y^\top W y - b^\top y` (W symmetric,
zero diagonal). Its log-likelihood gradient is the difference of two moments,

.. math::
    \frac{\partial}{\partial W_{ij}} \frac1N\sum_n \log p(y_n)
    = \langle y_i y_j\rangle_{\text{data}} - \langle y_i y_j\rangle_{p},\qquad
    \frac{\partial}{\partial b_i} = \langle y_i\rangle_{\text{data}} - \langle y_i\rangle_{p},

the model moments estimated by Gibbs samples (the notes' derivation); for small d,
:math:`\log Z` by enumeration gives the exact likelihood, the tests' oracle.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from torch import nn
from tqdm.auto import tqdm

from ..checks import check_float, check_int
from ..inference.kernels.energy import PairwiseGibbs, spin_block_update

__all__ = ["BoltzmannMachine", "check_spins"]

_MAX_ENUMERATED = 20


def check_spins(y: torch.Tensor, dim: int, name: str = "y") -> torch.Tensor:
    """Data for a Boltzmann machine: ``(examples, dim)`` of -1/1 spins, or a clear error."""
    y = torch.as_tensor(y)
    if y.dim() != 2 or y.shape[1] != dim:
        raise ValueError(f"{name} must have shape (examples, {dim}); got {tuple(y.shape)}")
    if not ((y == -1) | (y == 1)).all():
        raise ValueError(f"{name} must hold spins -1/1 (map bits b to 2b - 1)")
    return y.to(torch.get_default_dtype())


class BoltzmannMachine(nn.Module):
    """A fully visible Boltzmann machine on ``dim`` spins.

    Args:
        dim: number of spins d.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.dim = check_int("dim", dim, minimum=2)
        self.upper = nn.Parameter(torch.zeros(self.dim, self.dim))  # only the strict upper triangle is used
        self.bias = nn.Parameter(torch.zeros(self.dim))
        self.config = {"dim": self.dim}

    @property
    def weight(self) -> torch.Tensor:
        """The symmetric, zero-diagonal W."""
        upper = torch.triu(self.upper, 1)
        return upper + upper.T

    def energy(self, y: torch.Tensor) -> torch.Tensor:
        return -0.5 * ((y @ self.weight) * y).sum(-1) - y @ self.bias

    def model(self, n: int = 1):
        """Pyro model over ``n`` chains: bits ``s`` uniform, spins ``2s - 1``, and the
        energy as a ``pyro.factor``."""
        with pyro.plate("chains", n):
            s = pyro.sample("y", dist.Bernoulli(0.5 * torch.ones(self.dim)).to_event(1))
            pyro.factor("energy", -self.energy(2 * s - 1))
        return 2 * s - 1

    def gibbs_kernel(self, num_chains: int = 1, *, blocks=None, init=None) -> PairwiseGibbs:
        """A Gibbs kernel on the current parameters (a snapshot of W) for :func:`pgen.sample`;
        its state ``"y"`` holds spins."""
        return PairwiseGibbs(
            self.weight.detach(), self.bias.detach(), blocks=blocks, num_chains=num_chains, init=init
        )

    @torch.no_grad()
    def exact_log_partition(self) -> float:
        """:math:`\\log Z` by summing over all :math:`2^d` states (d <= 20)."""
        if self.dim > _MAX_ENUMERATED:
            raise ValueError(f"exact log Z enumerates 2**{self.dim} states; at most 2**{_MAX_ENUMERATED}")
        return float(torch.logsumexp(-self.energy(self.states()).double(), 0))

    def states(self) -> torch.Tensor:
        """All :math:`2^d` spin vectors."""
        bits = (torch.arange(2**self.dim)[:, None] >> torch.arange(self.dim)) & 1
        return (2 * bits - 1).to(self.bias.dtype)

    def log_prob(self, y: torch.Tensor, log_partition: float | None = None) -> torch.Tensor:
        """Exact :math:`\\log p(y)` (enumerated :math:`\\log Z` unless given)."""
        log_z = self.exact_log_partition() if log_partition is None else log_partition
        return -self.energy(y) - log_z

    def fit(
        self,
        y: torch.Tensor,
        *,
        epochs: int = 50,
        batch_size: int = 100,
        lr: float = 0.01,
        num_chains: int = 500,
        sweeps: int = 1,
        seed: int = 0,
        progress: bool = True,
    ) -> dict:
        """Maximum likelihood with the model moments from ``num_chains`` persistent Gibbs
        chains (``sweeps`` systematic-scan sweeps per update; PCD), by Adam on the
        surrogate mean E(data) - mean E(samples), whose gradient is minus the moment
        difference above. Returns ``{"epoch", "moment_gap"}`` (the largest
        :math:`|\\langle y_i y_j\\rangle_{data} - \\langle y_i y_j\\rangle_{chains}|`)."""
        y = check_spins(y, self.dim)
        epochs, sweeps = check_int("epochs", epochs, minimum=1), check_int("sweeps", sweeps, minimum=1)
        batch_size, num_chains = (
            check_int("batch_size", batch_size, minimum=1),
            check_int("num_chains", num_chains, minimum=1),
        )
        lr = check_float("lr", lr, positive=True)
        g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
        opt = torch.optim.Adam(self.parameters(), lr=lr)
        chains = y[torch.randint(0, len(y), (num_chains,), generator=g)].clone()
        history = {"epoch": [], "moment_gap": []}
        for epoch in tqdm(range(epochs), desc="boltzmann", disable=not progress):
            order = torch.randperm(len(y), generator=g)
            gaps = []
            for i in range(0, len(y), batch_size):
                batch = y[order[i : i + batch_size]]
                with torch.no_grad():
                    w, b = self.weight.detach(), self.bias.detach()
                    for _ in range(sweeps):
                        for site in range(self.dim):
                            block = torch.tensor([site])
                            chains = spin_block_update(
                                chains, w, b, block, torch.rand(num_chains, 1, generator=g)
                            )
                    gap = (batch.T @ batch / len(batch) - chains.T @ chains / num_chains).abs().max()
                    gaps.append(float(gap))
                loss = self.energy(batch).mean() - self.energy(chains).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            history["epoch"].append(epoch + 1)
            history["moment_gap"].append(sum(gaps) / len(gaps))
        return history
