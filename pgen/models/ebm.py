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

:class:`EnergyMLP`: a continuous energy on real data (2-D toys), trained by persistent
contrastive divergence with a replay buffer of Langevin chains. :class:`ProductOfExperts`:
a sum of energies, sampled with the same kernels.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from torch import nn
from tqdm.auto import tqdm

from ..checks import check_float, check_int
from ..inference.kernels.energy import PairwiseGibbs, spin_block_update

__all__ = ["BoltzmannMachine", "EnergyMLP", "ProductOfExperts", "check_spins"]

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
        sites = [torch.tensor([i]) for i in range(self.dim)]  # a systematic scan, one site at a time
        for epoch in tqdm(range(epochs), desc="boltzmann", disable=not progress):
            order = torch.randperm(len(y), generator=g)
            gaps = []
            for i in range(0, len(y), batch_size):
                batch = y[order[i : i + batch_size]]
                with torch.no_grad():
                    w, b = self.weight.detach(), self.bias.detach()
                    for _ in range(sweeps):
                        for block in sites:
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


class EnergyMLP(nn.Module):
    r"""A continuous energy-based model :math:`p(x) \propto \mathcal N(x; 0, s^2 I)\,e^{-E_\theta(x)}`,
    :math:`E_\theta` an MLP; the wide Gaussian base (``base_scale`` s) keeps it normalizable.

    Trained by persistent contrastive divergence with a replay buffer of Langevin chains
    (Tieleman 2008; Du & Mordatch 2019): each step takes a batch of buffer chains (a
    fraction ``reinit`` restarted uniformly over the data's box), moves them by
    ``langevin_steps`` ULA steps, and descends :math:`\bar E(\text{data}) -
    \bar E(\text{chains}) + \alpha(\overline{E^2}(\text{data}) + \overline{E^2}(\text{chains}))`.

    Args:
        data_dim: size of one example.
        hidden: MLP widths.
        base_scale: s.
    """

    def __init__(self, data_dim: int, hidden: tuple[int, ...] = (128, 128), base_scale: float = 10.0):
        super().__init__()
        self.data_dim = check_int("data_dim", data_dim, minimum=1)
        self.base_scale = check_float("base_scale", base_scale, positive=True)
        widths = (self.data_dim, *hidden)
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.SiLU()]
        self.net = nn.Sequential(*layers, nn.Linear(widths[-1], 1))
        self.config = {"data_dim": self.data_dim, "hidden": list(hidden), "base_scale": self.base_scale}
        self.buffer: torch.Tensor | None = None

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`E_\\theta(x)` per row (without the base)."""
        return self.net(x).squeeze(-1)

    def total_energy(self, x: torch.Tensor) -> torch.Tensor:
        """Minus the unnormalized log density, base included."""
        return self.energy(x) + 0.5 * (x**2).sum(-1) / self.base_scale**2

    def model(self, n: int = 1):
        """Pyro model over ``n`` chains: the Gaussian base and the energy as a factor."""
        with pyro.plate("chains", n):
            x = pyro.sample("x", dist.Normal(torch.zeros(self.data_dim), self.base_scale).to_event(1))
            pyro.factor("energy", -self.energy(x))
        return x

    def _langevin(self, x, steps: int, step_size: float, g):
        from ..inference.kernels.energy import langevin_proposal

        for _ in range(steps):
            x = x.detach().requires_grad_(True)
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(self.total_energy(x).sum(), x)
            noise = torch.randn(x.shape, generator=g, dtype=x.dtype)
            x = langevin_proposal(x.detach(), grad, step_size, noise)
        return x.detach()

    def fit(
        self,
        x: torch.Tensor,
        *,
        steps: int = 2000,
        batch_size: int = 128,
        lr: float = 1e-3,
        buffer_size: int = 10000,
        reinit: float = 0.05,
        langevin_steps: int = 20,
        step_size: float = 0.005,
        alpha: float = 0.1,
        seed: int = 0,
        progress: bool = True,
    ) -> dict:
        """PCD with a replay buffer (class docstring). Returns ``{"step", "energy_gap"}``
        every 50 steps: mean energy of the chains minus that of the data."""
        x = torch.as_tensor(x, dtype=torch.get_default_dtype())
        if x.dim() != 2 or x.shape[1] != self.data_dim or not torch.isfinite(x).all():
            raise ValueError(f"x must be finite (examples, {self.data_dim}); got shape {tuple(x.shape)}")
        steps, batch_size = (
            check_int("steps", steps, minimum=1),
            check_int("batch_size", batch_size, minimum=1),
        )
        buffer_size = check_int("buffer_size", buffer_size, minimum=batch_size)
        reinit = check_float("reinit", reinit, nonnegative=True, below=1.0)
        langevin_steps = check_int("langevin_steps", langevin_steps, minimum=1)
        step_size = check_float("step_size", step_size, positive=True)
        alpha = check_float("alpha", alpha, nonnegative=True)
        g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
        lo, hi = x.min(0).values, x.max(0).values

        def uniform(n):
            return lo + (hi - lo) * torch.rand(n, self.data_dim, generator=g)

        if self.buffer is None or self.buffer.shape != (buffer_size, self.data_dim):
            self.buffer = uniform(buffer_size)
        opt = torch.optim.Adam(self.net.parameters(), lr=check_float("lr", lr, positive=True))
        history = {"step": [], "energy_gap": []}
        gaps = []
        for step in tqdm(range(1, steps + 1), desc="ebm", disable=not progress):
            data = x[torch.randint(0, len(x), (batch_size,), generator=g)]
            idx = torch.randint(0, buffer_size, (batch_size,), generator=g)
            start = self.buffer[idx]
            fresh = torch.rand(batch_size, generator=g) < reinit
            start = torch.where(fresh[:, None], uniform(batch_size), start)
            neg = self._langevin(start, langevin_steps, step_size, g)
            self.buffer[idx] = neg
            e_pos, e_neg = self.energy(data), self.energy(neg)
            loss = e_pos.mean() - e_neg.mean() + alpha * ((e_pos**2).mean() + (e_neg**2).mean())
            opt.zero_grad()
            loss.backward()
            opt.step()
            gaps.append(float((e_neg - e_pos).mean().detach()))
            if step % 50 == 0 or step == steps:
                history["step"].append(step)
                history["energy_gap"].append(sum(gaps) / len(gaps))
                gaps = []
        return history

    def langevin_kernel(
        self, num_chains: int, *, init=None, step_size: float = 0.005, metropolis: bool = False
    ):
        """A :class:`~pgen.inference.kernels.Langevin` kernel on this model for :func:`pgen.sample`."""
        from ..inference.kernels.energy import Langevin

        return Langevin(
            self.model, init=init, step_size=step_size, metropolis=metropolis, num_chains=num_chains
        )


class ProductOfExperts(nn.Module):
    r"""A product of experts (Hinton 2002): :math:`p(x) \propto \prod_k p_k(x)`, i.e. the
    sum of the experts' energies :math:`E(x) = \sum_k E_k(x)`. Each expert is a callable
    ``x -> (n,)`` energies (e.g. :meth:`EnergyMLP.total_energy`, or minus a
    distribution's ``log_prob``); sample with :class:`~pgen.inference.kernels.Langevin`.

    Args:
        experts: the energy functions.
    """

    def __init__(self, *experts):
        super().__init__()
        if not experts or not all(callable(e) for e in experts):
            raise ValueError("ProductOfExperts needs one or more callable experts x -> (n,) energies")
        self.experts = list(experts)
        self.modules_ = nn.ModuleList(e for e in experts if isinstance(e, nn.Module))

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        return sum(e(x) for e in self.experts)

    def potential(self, state: dict) -> torch.Tensor:
        """``potential_fn`` for :class:`~pgen.inference.kernels.Langevin` (site ``"x"``)."""
        return self.energy(state["x"])
