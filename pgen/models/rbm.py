r"""The restricted Boltzmann machine (Smolensky 1986; Hinton 2002), trained by contrastive
divergence (CD-k) or persistent CD (PCD; Tieleman 2008), with its partition function by
enumeration (small models) or annealed importance sampling (Neal 2001; Salakhutdinov &
Murray 2008).

Binary visible units v and hidden units h, energy
:math:`E(v, h) = -b^\top v - c^\top h - v^\top W h`, and after summing h out the free energy

.. math::
    F(v) = -b^\top v - \sum_j \operatorname{softplus}(c_j + v^\top W_{:j}),\qquad
    p(v) = e^{-F(v)} / Z.

The log-likelihood gradient is
:math:`\nabla\log p(v) = -\nabla F(v) + \mathbb E_{p}[\nabla F(v')]`: the data term
pushes F down on the data, the model term (estimated by Gibbs samples v') pushes it up
where the model puts mass (the notes' "positive and negative phase").
"""

from __future__ import annotations

import math
from typing import Literal

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..checks import check_choice, check_float, check_int
from ..inference.contrastive import ContrastiveDivergence
from ..inference.kernels.energy import RBMGibbs
from . import registry
from .protocols import EnergyModel, configured

__all__ = ["RBM", "ais_log_partition", "raise_log_likelihood", "exact_log_partition", "check_binary"]

_MAX_ENUMERATED = 22  # 2**22 states: about 4M free energies


def check_binary(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """Data for an RBM: a 2-D tensor of 0/1 values, or a clear error."""
    x = torch.as_tensor(x)
    if x.dim() != 2:
        raise ValueError(f"{name} must be (examples, visible units); got shape {tuple(x.shape)}")
    if not ((x == 0) | (x == 1)).all():
        bad = x[(x != 0) & (x != 1)][:3].tolist()
        raise ValueError(
            f"{name} must hold binary 0/1 values for an RBM; found e.g. {bad}. Binarize grey "
            "levels first (pgen.data.load(..., binarize='threshold'|'static'|'dynamic'))"
        )
    return x.to(torch.get_default_dtype())


@registry.register(
    "rbm", family="boltzmann", reads=("visible",), data_args=lambda x, y: {"visible": registry.flat_size(x)}
)
class RBM(EnergyModel, nn.Module):
    """A binary RBM.

    Args:
        visible: number of visible units (784 for 28x28 images).
        hidden: number of hidden units (500, as Salakhutdinov & Murray 2008 on MNIST).
        init_scale: standard deviation of the initial weights (Hinton's guide: 0.01).
    """

    chain_length = "sweeps"  # the argument of sample() that sets the length of its chains
    chains_start_at_data = True  # Gibbs from noise can stay in an improbable region (README)

    @configured
    def __init__(self, visible: int, hidden: int = 500, init_scale: float = 0.01):
        super().__init__()
        self.visible = check_int("visible", visible, minimum=1)
        self.hidden = check_int("hidden", hidden, minimum=1)
        init_scale = check_float("init_scale", init_scale, nonnegative=True)
        self.weight = nn.Parameter(init_scale * torch.randn(self.visible, self.hidden))
        self.visible_bias = nn.Parameter(torch.zeros(self.visible))
        self.hidden_bias = nn.Parameter(torch.zeros(self.hidden))

    # ---------------------------------------------------------------- densities

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        r""":math:`F(v)` per row of ``v``."""
        return -(v @ self.visible_bias) - F.softplus(v @ self.weight + self.hidden_bias).sum(-1)

    def energy(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return -(v @ self.visible_bias) - (h @ self.hidden_bias) - ((v @ self.weight) * h).sum(-1)

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(v @ self.weight + self.hidden_bias)

    def log_unnormalized(self, v: torch.Tensor) -> torch.Tensor:
        """:math:`\\log\\tilde p(v) = -F(v)` per row (the hidden units summed out)."""
        return -self.free_energy(v)

    def log_prob(self, v: torch.Tensor, log_partition: float) -> torch.Tensor:
        """:math:`\\log p(v) = -F(v) - \\log Z` with a given :math:`\\log Z`."""
        return -self.free_energy(v) - log_partition

    @property
    def event_shape(self) -> tuple[int, ...]:
        return (self.visible,)

    def model(self, x: torch.Tensor | None = None, *, y=None, n: int | None = None):
        r"""The RBM as a Pyro model: ``obs`` ~ uniform bits in ``pyro.plate("data")`` and
        the free energy as a ``pyro.factor``, so the model's log density is
        :math:`\log\tilde p(v) = -F(v) - V\log 2` (Z left out). With ``x=None`` it draws
        ``n`` vectors from the uniform base; the factor weights them, and MCMC
        (:meth:`gibbs_kernel`, :meth:`sample`) turns them into samples of the RBM."""
        pyro.module("rbm", self)
        with pyro.plate("data", (n or 1) if x is None else x.shape[0]):
            v = pyro.sample("obs", dist.Bernoulli(0.5 * torch.ones(self.visible)).to_event(1), obs=x)
            pyro.factor("free_energy", -self.free_energy(v))
        return v

    def guide(self, x: torch.Tensor | None = None, *, y=None, n: int | None = None):
        """No latent variables (the hidden units are summed out): the empty guide."""

    def validate_data(self, x, y=None, *, name: str = "x"):
        x = check_binary(x, name)
        if x.shape[1] != self.visible:
            raise ValueError(f"{name} has {x.shape[1]} columns; this RBM has visible={self.visible}")

    def gibbs_kernel(self, num_chains: int = 1, *, init=None, sweeps: int = 1) -> RBMGibbs:
        """A block Gibbs kernel on this RBM's (live) parameters for :func:`pgen.sample`."""
        return RBMGibbs(
            self.weight, self.visible_bias, self.hidden_bias, num_chains=num_chains, init=init, sweeps=sweeps
        )

    @torch.no_grad()
    def sample(self, n: int = 64, *, sweeps: int = 1000, init=None, seed: int | None = 0) -> torch.Tensor:
        """``n`` visible vectors after ``sweeps`` block Gibbs sweeps (returns the last
        sweep's p(v | h), the usual picture of an RBM sample), via :func:`pgen.sample`."""
        from ..inference.mcmc import final_states

        n, sweeps = check_int("n", n, minimum=1), check_int("sweeps", sweeps, minimum=1)
        kernel = self.gibbs_kernel(n, init=init)
        v = final_states(kernel, "v", sweeps, seed=0 if seed is None else seed, model=self.model, n=n)
        v = v.to(self.weight.dtype)
        with torch.random.fork_rng(devices=[]):  # the last h from the same seed, not the caller's stream
            torch.manual_seed(0 if seed is None else seed)
            h = torch.bernoulli(self.hidden_probs(v))
        return torch.sigmoid(h @ self.weight.T + self.visible_bias)

    def contrastive_divergence(
        self,
        *,
        method: Literal["cd", "pcd"] = "pcd",
        k: int = 1,
        num_chains: int = 100,
        init: Literal["data", "noise"] = "data",
    ) -> ContrastiveDivergence:
        """The objective that trains this RBM with :func:`pgen.fit`, its chains moved by
        this RBM's block Gibbs kernel.

        Args:
            method: ``"cd"`` (CD-k: chains start at the minibatch) or ``"pcd"`` (PCD-k:
                persistent chains).
            k: Gibbs sweeps per training step.
            num_chains: the number of persistent chains (pcd).
            init: where persistent chains start: random training examples (``"data"``)
                or uniform random bits (``"noise"``).

        Example:
            >>> rbm = RBM(784, 500)
            >>> cd = rbm.contrastive_divergence(method="pcd", k=1, num_chains=100)
            >>> pgen.fit(rbm.model, rbm.guide, x, objective=cd, epochs=200, batch_size=100)
        """
        method = check_choice("method", method, ("cd", "pcd"))
        init = check_choice("init", init, ("data", "noise"))
        if init == "noise" and method == "cd":
            raise ValueError(
                "init='noise' applies to persistent chains (method='pcd'); CD starts at the data"
            )
        start = "data" if init == "data" else _random_bits
        return ContrastiveDivergence(
            self.gibbs_kernel, k=k, persistent=method == "pcd", num_chains=num_chains, init=start
        )


def _random_bits(n: int, x: torch.Tensor) -> torch.Tensor:
    return torch.randint(0, 2, (n, *x.shape[1:]), device=x.device).to(x.dtype)


# --------------------------------------------------------------------------- log Z


@torch.no_grad()
def exact_log_partition(rbm: RBM) -> float:
    r""":math:`\log Z` by enumerating the smaller layer (at most 22 units):
    :math:`\log Z = \log\sum_h \exp(c^\top h + \sum_i \operatorname{softplus}(b_i + W_{i:}h))`,
    or the same sum over v of :math:`-F(v)`."""
    w, b, c = rbm.weight.double(), rbm.visible_bias.double(), rbm.hidden_bias.double()
    small = min(rbm.visible, rbm.hidden)
    if small > _MAX_ENUMERATED:
        raise ValueError(
            f"exact log Z enumerates 2**{small} states; at most 2**{_MAX_ENUMERATED} are allowed. "
            "Use ais_log_partition"
        )
    bits = ((torch.arange(2**small)[:, None] >> torch.arange(small)) & 1).double()
    if rbm.hidden <= rbm.visible:
        terms = bits @ c + F.softplus(bits @ w.T + b).sum(-1)
    else:
        terms = bits @ b + F.softplus(bits @ w + c).sum(-1)
    return float(torch.logsumexp(terms, 0))


@torch.no_grad()
def ais_log_partition(
    rbm: RBM,
    *,
    num_chains: int = 100,
    num_betas: int = 10000,
    base_visible_bias: torch.Tensor | None = None,
    seed: int = 0,
    trace_every: int = 0,
    progress: bool = False,
) -> dict:
    r"""Annealed importance sampling of :math:`\log Z` (Salakhutdinov & Murray 2008).

    The base model has no weights and visible biases :math:`b_A` (best: the data's log
    odds, ``base_visible_bias``), :math:`\log Z_A = \sum_i\operatorname{softplus}(b_{A,i})
    + H\log 2`. The path :math:`p_\beta(v) \propto \exp((1-\beta)b_A^\top v + \beta b^\top v)
    \prod_j (1 + e^{\beta(c_j + v^\top W_{:j})})` runs over ``num_betas`` values of
    :math:`\beta` from 0 to 1 (spaced as Salakhutdinov & Murray's, denser near 1), each
    chain moved by one Gibbs sweep of :math:`p_\beta`. The estimate of Z is unbiased, so
    that of log Z is low on average: too few betas overstate the likelihood.

    Returns:
        ``{"log_z", "log_z_se"}`` (the standard error of the log-mean of the importance
        weights, by the delta method), ``"log_weights"`` per chain, and with
        ``trace_every`` > 0, ``"trace"``: the estimate after every ``trace_every``
        intermediate distributions, for a convergence plot. ``progress`` shows a bar
        over the intermediate distributions.
    """
    num_chains = check_int("num_chains", num_chains, minimum=1)
    num_betas = check_int("num_betas", num_betas, minimum=4)
    g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    path = _Path(rbm, base_visible_bias)
    log_z_a = float(F.softplus(path.b_a).sum()) + rbm.hidden * math.log(2.0)
    betas = _beta_schedule(num_betas)
    v = (
        torch.rand(num_chains, rbm.visible, generator=g, dtype=torch.float64) < torch.sigmoid(path.b_a)
    ).double()
    log_w = torch.zeros(num_chains, dtype=torch.float64)
    trace = []
    for i in tqdm(range(1, num_betas), disable=not progress, desc="AIS", unit="beta", mininterval=1.0):
        beta, prev = betas[i], betas[i - 1]
        log_w += path.log_f(v, beta) - path.log_f(v, prev)
        v = path.sweep(v, beta, g)
        if trace_every and (i % trace_every == 0 or i == num_betas - 1):
            trace.append((i, log_z_a + _log_mean_exp(log_w)))
    log_z = log_z_a + _log_mean_exp(log_w)
    weights = (log_w - log_w.max()).exp()
    se = float(weights.std() / weights.mean() / math.sqrt(num_chains)) if num_chains > 1 else float("nan")
    out = {"log_z": log_z, "log_z_se": se, "log_weights": log_w, "log_z_base": log_z_a}
    if trace_every:
        out["trace"] = trace
    return out


@torch.no_grad()
def raise_log_likelihood(
    rbm: RBM,
    x: torch.Tensor,
    *,
    num_betas: int = 10000,
    base_visible_bias: torch.Tensor | None = None,
    seed: int = 0,
    progress: bool = False,
) -> torch.Tensor:
    r"""Reverse annealed importance sampling (RAISE; Burda, Grosse & Salakhutdinov 2015):
    a conservative estimate of :math:`\log p(x)` for each row of ``x``, needing no
    :math:`\log Z`.

    Forward AIS is a generative model of its own: :math:`v_0 \sim p_0` (the base of
    :func:`ais_log_partition`), then a Gibbs sweep :math:`T_k` of :math:`p_{\beta_k}` for
    each k, giving a marginal :math:`q(v_K) \approx p(v_K)`. Running the chain backwards
    from a test point (each sweep is reversible, so its reversal is itself) gives the
    importance-sampling estimate

    .. math::
        \log\hat q(v_K) = \log p_0(v_0) + \sum_{k=1}^{K}\big[\log f_k(v_k) - \log f_k(v_{k-1})\big],

    with :math:`f_k` the unnormalized :math:`p_{\beta_k}`. Its expectation is at most
    :math:`\log q(v_K)` (Jensen), and :math:`q` approaches :math:`p` as the annealing
    slows, so it errs low where forward AIS, whose :math:`\log\hat Z` errs low, errs
    high: the two bracket the test log-likelihood.

    Returns:
        ``(n,)`` estimates, one reverse chain per example (``progress``: a bar over the
        intermediate distributions).
    """
    x = check_binary(x)
    if x.shape[1] != rbm.visible:
        raise ValueError(f"x has {x.shape[1]} columns; this RBM has visible={rbm.visible}")
    num_betas = check_int("num_betas", num_betas, minimum=4)
    g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    path = _Path(rbm, base_visible_bias)
    b_a = path.b_a
    betas = _beta_schedule(num_betas)
    v = x.double()
    log_q = torch.zeros(len(v), dtype=torch.float64)
    steps = tqdm(range(num_betas - 1, 0, -1), disable=not progress, desc="RAISE", unit="beta", mininterval=1)
    for k in steps:  # v holds v_k; draw v_{k-1} ~ T_k(. | v_k)
        beta = betas[k]
        log_q += path.log_f(v, beta)
        v = path.sweep(v, beta, g)
        log_q -= path.log_f(v, beta)
    log_p0 = v @ b_a - F.softplus(b_a).sum()  # the base: independent bits with log odds b_A
    return (log_q + log_p0).to(torch.get_default_dtype())


class _Path:
    r"""The annealing path of AIS and RAISE: unnormalized :math:`p_\beta(v)` between the base
    (no weights, visible log odds :math:`b_A`) and the RBM, and a Gibbs sweep leaving it
    invariant, in float64."""

    def __init__(self, rbm: RBM, base_visible_bias):
        self.w, self.b, self.c = rbm.weight.double(), rbm.visible_bias.double(), rbm.hidden_bias.double()
        b_a = torch.zeros_like(self.b) if base_visible_bias is None else torch.as_tensor(base_visible_bias)
        if b_a.shape != self.b.shape:
            raise ValueError(
                f"base_visible_bias must have shape {tuple(self.b.shape)}; got {tuple(b_a.shape)}"
            )
        self.b_a = b_a.double()

    def log_f(self, v, beta):  # hidden units summed out
        return (
            (1 - beta) * (v @ self.b_a)
            + beta * (v @ self.b)
            + F.softplus(beta * (v @ self.w + self.c)).sum(-1)
        )

    def sweep(self, v, beta, g):
        u = torch.rand(len(v), self.w.shape[1], generator=g, dtype=torch.float64)
        h = (u < torch.sigmoid(beta * (v @ self.w + self.c))).double()
        p_v = torch.sigmoid((1 - beta) * self.b_a + beta * (self.b + h @ self.w.T))
        return (torch.rand(v.shape, generator=g, dtype=torch.float64) < p_v).double()


def _beta_schedule(num: int) -> list[float]:
    """Salakhutdinov & Murray's spacing, denser near 1 where the RBM's weights bite: 7% of
    the steps over [0, 0.5], 28% over [0.5, 0.9] and 65% over [0.9, 1] (their 1,000 / 4,000 /
    10,000 of 14,500)."""
    counts = [max(1, round(num * f)) for f in (0.07, 0.28)]
    counts.append(max(1, num - 1 - sum(counts)))
    pieces = [
        torch.linspace(lo, hi, n + 1, dtype=torch.float64)[:-1]
        for (lo, hi), n in zip(((0.0, 0.5), (0.5, 0.9), (0.9, 1.0)), counts, strict=True)
    ]
    return torch.cat([*pieces, torch.ones(1, dtype=torch.float64)]).tolist()


def _log_mean_exp(a: torch.Tensor) -> float:
    return float(torch.logsumexp(a, 0) - math.log(len(a)))
