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

Each model is a Pyro model (the energy a ``pyro.factor`` on the observed site ``obs``)
with an empty guide, trained by :func:`pgen.fit` with the objective its
``contrastive_divergence`` method builds
(:class:`~pgen.inference.contrastive.ContrastiveDivergence`), and sampled by
:func:`pgen.sample` with its kernel.
"""

from __future__ import annotations

import functools
from typing import Literal

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from ..checks import check_choice, check_float, check_int
from ..data.validate import check_data
from ..inference.contrastive import ContrastiveDivergence
from ..inference.kernels.energy import PairwiseGibbs
from . import registry
from .protocols import EnergyModel, configured

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

    @configured
    def __init__(self, dim: int):
        super().__init__()
        self.dim = check_int("dim", dim, minimum=2)
        self.upper = nn.Parameter(torch.zeros(self.dim, self.dim))  # only the strict upper triangle is used
        self.bias = nn.Parameter(torch.zeros(self.dim))

    @property
    def weight(self) -> torch.Tensor:
        """The symmetric, zero-diagonal W."""
        upper = torch.triu(self.upper, 1)
        return upper + upper.T

    def energy(self, y: torch.Tensor) -> torch.Tensor:
        return -0.5 * ((y @ self.weight) * y).sum(-1) - y @ self.bias

    def model(self, x: torch.Tensor | None = None, *, y=None, n: int | None = None):
        """Pyro model of spins ``x`` (``(examples, dim)`` of -1/1, or ``None`` to draw
        ``n``): the observed site ``obs`` holds the bits ``(x + 1) / 2`` under a uniform
        base, and the energy enters as a ``pyro.factor``, so the log density is
        :math:`-E(x) - d\\log 2` (Z left out). Returns the spins."""
        pyro.module("boltzmann", self)
        bits = None if x is None else (x + 1) / 2
        with pyro.plate("data", (n or 1) if x is None else x.shape[0]):
            bits = pyro.sample("obs", dist.Bernoulli(0.5 * torch.ones(self.dim)).to_event(1), obs=bits)
            spins = 2 * bits - 1
            pyro.factor("energy", -self.energy(spins))
        return spins

    def guide(self, x: torch.Tensor | None = None, *, y=None, n: int | None = None):
        """No latent variables: the empty guide."""

    def validate_data(self, x, y=None, *, name: str = "x"):
        check_spins(x, self.dim, name)

    def gibbs_kernel(self, num_chains: int = 1, *, blocks=None, init=None) -> PairwiseGibbs:
        """A Gibbs kernel on the current parameters (a snapshot of W) for :func:`pgen.sample`;
        its state ``"y"`` holds spins. ``blocks=None``: a systematic scan, one site at a time."""
        return PairwiseGibbs(
            self.weight.detach(), self.bias.detach(), blocks=blocks, num_chains=num_chains, init=init
        )

    def contrastive_divergence(self, *, k: int = 1, num_chains: int = 500) -> ContrastiveDivergence:
        """The maximum-likelihood objective for :func:`pgen.fit`: ``num_chains``
        persistent Gibbs chains, ``k`` systematic-scan sweeps per step (PCD). Its
        gradient is minus the moment difference above (times the number of examples)."""
        return ContrastiveDivergence(self.gibbs_kernel, k=k, persistent=True, num_chains=num_chains)

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


@registry.register("ebm", family="energy")
class EnergyMLP(EnergyModel, nn.Module):
    r"""A continuous energy-based model with an MLP energy on a wide Gaussian base.

    The density is :math:`p(x) \propto \mathcal N(x; 0, s^2 I)\,e^{-E_\theta(x)}`,
    :math:`E_\theta` an MLP; the wide Gaussian base (``base_scale`` s) keeps it normalizable.

    Trained by :func:`pgen.fit` with persistent contrastive divergence and a replay buffer
    of Langevin chains (Tieleman 2008; Du & Mordatch 2019; :meth:`contrastive_divergence`):
    each step takes a batch of buffer chains (a fraction ``restart`` started afresh,
    uniformly over the minibatch's box), moves them by ``k`` ULA steps, and descends
    :math:`\overline{\log\tilde p}(\text{chains}) - \overline{\log\tilde p}(\text{data})`
    plus ``penalty`` times the mean squares of both, which keeps the energy bounded.

    Args:
        data_dim: size of one example.
        hidden: MLP widths.
        base_scale: s, the standard deviation of the Gaussian base.
    """

    chain_length = "steps"  # the argument of sample() that sets the length of its chains

    @configured
    def __init__(self, data_dim: int, hidden: tuple[int, ...] = (128, 128), base_scale: float = 10.0):
        super().__init__()
        self.data_dim = check_int("data_dim", data_dim, minimum=1)
        self.base_scale = check_float("base_scale", base_scale, positive=True)
        widths = (self.data_dim, *hidden)
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.SiLU()]
        self.net = nn.Sequential(*layers, nn.Linear(widths[-1], 1))

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`E_\\theta(x)` per row (without the base)."""
        return self.net(x).squeeze(-1)

    def total_energy(self, x: torch.Tensor) -> torch.Tensor:
        """Minus the unnormalized log density, base included."""
        return self.energy(x) + 0.5 * (x**2).sum(-1) / self.base_scale**2

    def log_unnormalized(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\log\\tilde p(x) = -E_\\theta(x) - |x|^2 / 2s^2` per row."""
        return -self.total_energy(x)

    @property
    def event_shape(self) -> tuple[int, ...]:
        return (self.data_dim,)

    def model(self, x: torch.Tensor | None = None, *, y=None, n: int | None = None):
        """Pyro model: ``obs`` from the Gaussian base in ``pyro.plate("data")`` and the
        energy as a ``pyro.factor`` (log density :math:`-E_\\theta(x)` plus the base's,
        Z left out). With ``x=None`` it draws ``n`` points from the base; the factor
        weights them, and Langevin dynamics (:meth:`langevin_kernel`, :meth:`sample`)
        turns them into samples of the model."""
        pyro.module("energy", self)
        with pyro.plate("data", (n or 1) if x is None else x.shape[0]):
            base = dist.Normal(torch.zeros(self.data_dim), self.base_scale).to_event(1)
            x = pyro.sample("obs", base, obs=x)
            pyro.factor("energy", -self.energy(x))
        return x

    def guide(self, x: torch.Tensor | None = None, *, y=None, n: int | None = None):
        """No latent variables: the empty guide."""

    def validate_data(self, x, y=None, *, name: str = "x"):
        check_data(x, name=name, event_shape=(self.data_dim,))

    def langevin_kernel(
        self, num_chains: int = 1, *, init=None, step_size: float = 0.005, metropolis: bool = False
    ):
        """A :class:`~pgen.inference.kernels.Langevin` kernel on this model's energy (site
        ``"obs"``; ``init``: ``(num_chains, data_dim)`` starting points, default base draws)
        for :func:`pgen.sample` and :meth:`contrastive_divergence`. The energy is
        :meth:`total_energy`, minus the model's log density up to a constant."""
        from ..inference.kernels.energy import Langevin

        if init is None:
            init = self.base_scale * torch.randn(num_chains, self.data_dim)
        return Langevin(
            potential_fn=lambda state: self.total_energy(state["obs"]),
            init={"obs": init},
            step_size=step_size,
            metropolis=metropolis,
            num_chains=num_chains,
        )

    def contrastive_divergence(
        self,
        *,
        method: Literal["cd", "pcd"] = "pcd",
        k: int = 20,
        step_size: float = 0.005,
        num_chains: int = 10000,
        chains_per_step: int = 128,
        restart: float = 0.05,
        penalty: float = 0.1,
    ) -> ContrastiveDivergence:
        """The objective of the class docstring for :func:`pgen.fit`.

        Args:
            method: ``"pcd"``, a replay buffer of persistent chains, or ``"cd"``, chains
                started at the minibatch.
            k: ULA steps that move the chains at each training step.
            step_size: the ULA step size.
            num_chains: the replay buffer's size (pcd).
            chains_per_step: buffer chains moved per training step (pcd).
            restart: the fraction of them started afresh, uniformly over the minibatch's box.
            penalty: the weight alpha of the energies' mean square, which keeps them bounded.
        """
        method = check_choice("method", method, ("cd", "pcd"))
        kernel = functools.partial(self.langevin_kernel, step_size=step_size)
        if method == "cd":
            return ContrastiveDivergence(kernel, k=k, persistent=False, alpha=penalty)
        return ContrastiveDivergence(
            kernel,
            k=k,
            num_chains=num_chains,
            chains_per_step=chains_per_step,
            restart=restart,
            init="uniform",
            alpha=penalty,
        )

    @torch.no_grad()
    def sample(
        self, n: int = 500, *, steps: int = 500, step_size: float = 0.005, init=None, seed: int = 0
    ) -> torch.Tensor:
        """``n`` points after ``steps`` ULA steps through :func:`pgen.sample`, from ``init``
        (default: uniform over [-3, 3]^d, where the 2-D toys live)."""
        from ..inference.mcmc import final_states

        n, steps = check_int("n", n, minimum=1), check_int("steps", steps, minimum=1)
        if init is None:
            g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
            init = 6 * torch.rand(n, self.data_dim, generator=g) - 3
        kernel = self.langevin_kernel(n, init=init, step_size=step_size)
        return final_states(kernel, "obs", steps, seed=seed)


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
