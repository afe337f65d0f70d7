r"""Score models :math:`s_\theta(x, \sigma) \approx \nabla_x \log p_\sigma(x)` trained without
the partition function, and sampled by annealed Langevin dynamics (Song & Ermon 2019).

Three objectives, each per example (lower is better):

* ``"exact"`` (Hyvärinen 2005): :math:`\tfrac12\|s(x)\|^2 + \operatorname{tr}\nabla_x s(x)`,
  the trace by one backward pass per dimension (fine for 2-D toys).
* ``"sliced"`` (Song, Garg, Shi & Ermon 2019, the variance-reduced form):
  :math:`\tfrac12\|s(x)\|^2 + v^\top \nabla_x (v^\top s(x))`, :math:`v \sim \mathcal N(0, I)`;
  its expectation over v is the exact objective, since :math:`\mathbb E[v v^\top] = I`.
* ``"denoising"`` (Vincent 2011): with :math:`\tilde x = x + \sigma z`,
  :math:`\tfrac12\|s(\tilde x, \sigma) + z/\sigma\|^2`, equal to the explicit objective
  :math:`\tfrac12\mathbb E\|s(\tilde x, \sigma) - \nabla\log p_\sigma(\tilde x)\|^2` up to
  a constant.

Each is applied to the score of the perturbed data :math:`p_\sigma` at a noise level drawn
per example from a ladder and weighted :math:`\sigma^2` (NCSN, Song & Ermon 2019, who note
that sliced score matching serves as well as denoising): exact and sliced score matching
take the perturbed sample :math:`x + \sigma z`, denoising its closed-form target.

The score model is a Pyro model whose training term is a ``pyro.factor`` (minus the
objective) and whose guide is empty, so :func:`pgen.fit` trains it like any other model.
"""

from __future__ import annotations

from typing import Literal

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import constraints

from ..checks import check_choice, check_float, check_int, check_int_tuple
from ..data.validate import check_data
from . import registry
from .protocols import ScoreBasedModel, configured

__all__ = [
    "ScoreModel",
    "MATCHING",
    "exact_score_matching",
    "score_and_trace",
    "sliced_score_matching",
    "denoising_score_matching",
    "geometric_sigmas",
]

MATCHING = ("exact", "sliced", "denoising")  # the score-matching objectives (ScoreModel(matching=...))


def score_and_trace(score_fn, x: torch.Tensor, *, create_graph: bool = True):
    r""":math:`s(x)` and :math:`\operatorname{tr}\nabla_x s(x)` for each row of ``x``
    ``(n, d)``, exactly: one backward pass per dimension. With ``create_graph`` both stay
    differentiable in the parameters of ``score_fn``."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        s = score_fn(x)
        if s.shape != x.shape:
            raise ValueError(f"the score function returned shape {tuple(s.shape)} for input {tuple(x.shape)}")
        trace = torch.zeros(x.shape[0], dtype=s.dtype, device=s.device)
        for j in range(x.shape[1]):
            retain = create_graph or j < x.shape[1] - 1
            (grad,) = torch.autograd.grad(s[:, j].sum(), x, retain_graph=retain, create_graph=create_graph)
            trace = trace + grad[:, j]
    return s, trace


def exact_score_matching(score_fn, x: torch.Tensor) -> torch.Tensor:
    r""":math:`\tfrac12\|s(x)\|^2 + \operatorname{tr}\nabla_x s(x)` per row, differentiable
    in the parameters of ``score_fn``."""
    s, trace = score_and_trace(score_fn, x)
    return 0.5 * (s**2).sum(-1) + trace


def sliced_score_matching(score_fn, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    r""":math:`\tfrac12\|s(x)\|^2 + v^\top\nabla_x(v^\top s(x))` per row, one projection
    ``v`` (same shape as ``x``) per row."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():  # also under no_grad (evaluation): the objective needs a derivative in x
        s = score_fn(x)
        (grad,) = torch.autograd.grad((s * v).sum(), x, create_graph=True)
        return 0.5 * (s**2).sum(-1) + (grad * v).sum(-1)


def denoising_score_matching(score_fn, x: torch.Tensor, sigma: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    r""":math:`\tfrac12\|s(x + \sigma z, \sigma) + z/\sigma\|^2` per row (``sigma`` ``(n, 1)``
    or a float)."""
    return 0.5 * ((score_fn(x + sigma * z, sigma) + z / sigma) ** 2).sum(-1)


def geometric_sigmas(sigma_max: float, sigma_min: float, num: int) -> list[float]:
    """A decreasing geometric ladder from ``sigma_max`` to ``sigma_min`` (Song & Ermon 2019)."""
    sigma_max = check_float("sigma_max", sigma_max, positive=True)
    sigma_min = check_float("sigma_min", sigma_min, positive=True)
    num = check_int("num", num, minimum=1)
    if sigma_min > sigma_max:
        raise ValueError(f"sigma_min={sigma_min} must not exceed sigma_max={sigma_max}")
    if num == 1:
        return [sigma_max]
    ratio = (sigma_min / sigma_max) ** (1 / (num - 1))
    return [sigma_max * ratio**i for i in range(num)]


class _ScoreNet(nn.Module):
    """An MLP on ``[x, log sigma]`` (a noise-conditional score network), its output
    divided by sigma as in Song & Ermon (2020, technique 3)."""

    def __init__(self, dim: int, hidden: tuple[int, ...]):
        super().__init__()
        widths = (dim + 1, *hidden)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.out = nn.Linear(widths[-1], dim)

    def forward(self, x, sigma):
        if not torch.is_tensor(sigma):
            sigma = torch.full((x.shape[0], 1), float(sigma), dtype=x.dtype, device=x.device)
        elif sigma.dim() < 2:
            sigma = sigma.reshape(-1, 1).expand(x.shape[0], 1)
        h = torch.cat([x, sigma.log()], -1)
        for layer in self.layers:
            h = F.softplus(layer(h))
        return self.out(h) / sigma


@registry.register("score", family="score")
class ScoreModel(ScoreBasedModel, nn.Module):
    """A score model for real-valued data (2-D toys, flattened images).

    Args:
        data_dim: size of one example.
        hidden: MLP widths.
        matching: the score-matching objective: ``"exact"``, ``"sliced"`` or
            ``"denoising"`` (the module docstring).
        sigmas: the noise ladder (decreasing); every objective trains on all of it (a
            level per example, weight sigma^2).
            Default: 10 levels from ``sigma_max`` to ``sigma_min``.
        sigma_max, sigma_min: the default ladder's ends (data units).
    """

    chain_length = "steps_per_level"  # the argument of sample() that sets the length of its chains

    @configured
    def __init__(
        self,
        data_dim: int,
        hidden: tuple[int, ...] = (128, 128),
        matching: Literal["exact", "sliced", "denoising"] = "denoising",
        sigmas: tuple[float, ...] | None = None,
        sigma_max: float = 1.0,
        sigma_min: float = 0.01,
    ):
        super().__init__()
        self.data_dim = check_int("data_dim", data_dim, minimum=1)
        self.matching = check_choice("matching", matching, MATCHING)
        hidden = check_int_tuple("hidden", hidden)
        sigmas = geometric_sigmas(sigma_max, sigma_min, 10) if sigmas is None else [float(s) for s in sigmas]
        if any(s <= 0 for s in sigmas) or any(a < b for a, b in zip(sigmas, sigmas[1:], strict=False)):
            raise ValueError(f"sigmas must be positive and decreasing; got {sigmas}")
        self.sigmas = sigmas
        self.net = _ScoreNet(self.data_dim, hidden)
        self.register_buffer("_sigma_table", torch.tensor(sigmas), persistent=False)

    def score(self, x: torch.Tensor, sigma=None) -> torch.Tensor:
        r""":math:`s_\theta(x, \sigma)` (``sigma`` a float or ``(n, 1)``; default the smallest)."""
        return self.net(x, self.sigmas[-1] if sigma is None else sigma)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """The training objective per example: a noise level :math:`\\sigma` of the ladder
        per example, and the objective for the score of :math:`p_\\sigma` (the data
        convolved with :math:`\\mathcal N(0, \\sigma^2 I)`), weighted :math:`\\sigma^2`
        (Song & Ermon 2019). Denoising works on the clean example and its noise; exact and
        sliced score matching on the perturbed example :math:`x + \\sigma z`, a sample of
        :math:`p_\\sigma`, so every level of the ladder is trained and annealed Langevin
        can use all of them."""
        idx = torch.randint(0, len(self.sigmas), (x.shape[0],), device=x.device)
        sigma = self._sigma_table[idx].unsqueeze(-1).to(x.dtype)
        z = torch.randn_like(x)
        weight = sigma.squeeze(-1) ** 2
        if self.matching == "denoising":
            return weight * denoising_score_matching(self.net, x, sigma, z)
        perturbed = x + sigma * z
        fn = lambda u: self.net(u, sigma)  # noqa: E731
        if self.matching == "exact":
            return weight * exact_score_matching(fn, perturbed)
        return weight * sliced_score_matching(fn, perturbed, torch.randn_like(x))

    @property
    def event_shape(self) -> tuple[int, ...]:
        return (self.data_dim,)

    def model(self, x: torch.Tensor | None = None, *, y=None, n: int | None = None):
        """With data: ``obs`` observed under an improper flat base (a score model has no
        normalized density) and minus the objective as a ``pyro.factor`` per example, so
        maximizing the "ELBO" minimizes score matching. With ``x=None``: ``n`` draws of
        annealed Langevin dynamics (:meth:`sampler`, default settings) as ``obs``."""
        pyro.module("score", self)
        n = (n or 1) if x is None else x.shape[0]
        with pyro.plate("data", n):
            if x is None:
                return pyro.sample("obs", dist.Delta(self._anneal(n), event_dim=1))
            flat = dist.ImproperUniform(constraints.real, (), (self.data_dim,))
            pyro.sample("obs", flat, obs=x)
            pyro.factor("score_matching", -self.loss(x))
        return x

    def guide(self, x: torch.Tensor | None = None, *, y=None, n: int | None = None):
        """No latent variables: the empty guide."""

    @torch.no_grad()
    def _anneal(self, n: int) -> torch.Tensor:
        kernel = self.sampler(n)
        kernel.setup(0)
        state = kernel.initial_params
        for _ in range(len(self.sigmas) * kernel.steps_per_level):
            state = kernel.sample(state)
        return state["x"]

    def validate_data(self, x, y=None, *, name="x"):
        check_data(x, name=name, event_shape=(self.data_dim,))

    def sampler(self, num_chains: int, *, init=None, steps_per_level: int = 100, step_size: float = 2e-5):
        """An :class:`~pgen.inference.kernels.AnnealedLangevin` kernel on this model's
        score (chains start uniform in [-1, 1]^d scaled by the largest sigma by default)."""
        from ..inference.kernels.energy import AnnealedLangevin

        def start(n):
            return (2 * torch.rand(n, self.data_dim) - 1) * max(1.0, self.sigmas[0])

        return AnnealedLangevin(
            self.net,  # the kernel's transition runs without gradients
            self.sigmas,
            init=start if init is None else init,
            steps_per_level=steps_per_level,
            step_size=step_size,
            num_chains=num_chains,
        )

    def sample(self, n: int = 500, *, steps_per_level: int = 100, step_size: float = 2e-5, seed: int = 0):
        """``n`` samples by annealed Langevin through :func:`pgen.sample` (one full pass)."""
        from ..inference.mcmc import final_states

        kernel = self.sampler(n, steps_per_level=steps_per_level, step_size=step_size)
        return final_states(kernel, "x", len(self.sigmas) * kernel.steps_per_level, seed=seed)
