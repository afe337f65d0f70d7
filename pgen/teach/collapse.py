r"""Posterior collapse: a decoder powerful enough to model the data ignores :math:`z`.

.. math::
    \mathrm{ELBO}(x) = \mathbb E_{q(z|x)}[\log p(x|z)] - \mathrm{KL}(q(z|x)\,\|\,p(z)).

If the decoder can model :math:`p(x)` on its own, as an autoregressive
:math:`p(x|z) = \prod_d p(x_d | x_{<d}, z)` can, then the choice
:math:`p(x|z) = p(x)`, :math:`q(z|x) = p(z)` makes the KL zero and the reconstruction
term :math:`\log p(x)`: the bound is tight and :math:`z` carries nothing. Any information
put in :math:`z` costs its KL in nats and buys nothing the decoder could not get from
:math:`x_{<d}`. A factorized decoder :math:`\prod_d p(x_d|z)` cannot express dependence
between pixels except through :math:`z`, so it must pay the KL (Bowman et al. 2016;
Chen et al. 2017, "Variational Lossy Autoencoder": an autoregressive decoder keeps in
:math:`z` only what it cannot model locally).

:func:`posterior_collapse` trains both decoders on the same data with the shared engine
and records the KL, reconstruction and ELBO on held-out data over training.
:class:`BinaryMarkovChain` is data with an exact :math:`\log p(x)`: a first-order chain,
which a MADE decoder models exactly, so the collapsed model's ELBO should reach the exact
expected log-likelihood with KL near zero, while the factorized VAE's stays below it.

References:
    Bowman et al. (2016), Generating Sentences from a Continuous Space.
    Chen et al. (2017), Variational Lossy Autoencoder, ICLR.
    Germain et al. (2015), MADE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..checks import check_float, check_int

__all__ = ["BinaryMarkovChain", "CollapseStudy", "posterior_collapse"]


@dataclass(frozen=True)
class BinaryMarkovChain:
    r"""Binary sequences :math:`x_1 \sim \mathrm{Bernoulli}(1/2)`, and each next bit equal
    to the previous one with probability ``stay``: :math:`\log p(x)` in closed form."""

    dim: int = 20
    stay: float = 0.9

    def __post_init__(self):
        check_int("dim", self.dim, minimum=2)
        check_float("stay", self.stay, positive=True, below=1.0)

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` sequences ``(n, dim)`` of 0/1 floats, from a generator seeded by ``seed``."""
        n = check_int("n", n, minimum=1)
        g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
        first = torch.bernoulli(torch.full((n, 1), 0.5), generator=g)
        flips = torch.bernoulli(torch.full((n, self.dim - 1), 1.0 - self.stay), generator=g)
        # x_d = x_1 xor (number of flips up to d) mod 2
        return torch.cat([first, (first + flips.cumsum(1)) % 2], 1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact :math:`\\log p(x)` of each row."""
        changes = (x[:, 1:] != x[:, :-1]).sum(1).to(torch.float64)
        return (
            -math.log(2.0)
            + changes * math.log(1.0 - self.stay)
            + (self.dim - 1 - changes) * math.log(self.stay)
        )

    def entropy(self) -> float:
        """:math:`H[p] = \\log 2 + (D - 1) H_b(\\text{stay})`, nats: ``-E log p(x)``."""
        s = self.stay
        return math.log(2.0) - (self.dim - 1) * (s * math.log(s) + (1 - s) * math.log(1 - s))


@dataclass(frozen=True)
class CollapseStudy:
    """Held-out ELBO terms over training for each decoder.

    Attributes:
        epochs: the epochs at which they were measured (0 first).
        curves: ``"factorized"`` / ``"autoregressive"`` -> ``{"reconstruction", "kl",
            "elbo"}``, each a list of nats per example.
        models: the trained :class:`~pgen.models.VAE` and
            :class:`~pgen.models.AutoregressiveVAE`.
        log_likelihood: the exact mean held-out :math:`\\log p(x)`, if known.
    """

    epochs: list[int]
    curves: dict
    models: dict
    log_likelihood: float | None = None

    def final(self, decoder: str, term: str) -> float:
        return self.curves[decoder][term][-1]


def posterior_collapse(
    x_train: torch.Tensor,
    x_test: torch.Tensor,
    *,
    latent_dim: int = 8,
    hidden=(64,),
    made_hidden=None,
    rounds: int = 8,
    epochs_per_round: int = 8,
    lr: float = 1e-2,
    num_samples: int = 20,
    exact=None,
    seed: int = 0,
) -> CollapseStudy:
    """Train a VAE with a factorized Bernoulli decoder and one with a MADE decoder on
    binary ``x_train`` (same encoder, latent size, data, seed and steps), recording
    :func:`~pgen.teach.elbo_decomposition` on ``x_test`` after every round.

    Args:
        latent_dim, hidden: both VAEs' latent size and encoder (and factorized decoder)
            widths.
        made_hidden: the MADE's hidden widths (default: one layer of
            ``max(2 * data_dim, 32)``).
        rounds, epochs_per_round: training, as :func:`~pgen.teach.track_elbo_terms`
            rounds (each a ``pgen.fit`` call continuing the weights).
        lr: Adam's learning rate (closed-form KL objective, batches of 128).
        exact: an object with ``log_prob(x)`` (e.g. :class:`BinaryMarkovChain`) for the
            exact held-out log-likelihood.
    """
    from ..models import VAE, AutoregressiveVAE
    from .elbo import track_elbo_terms

    dim = x_train.shape[1]
    made_hidden = (max(2 * dim, 32),) if made_hidden is None else tuple(made_hidden)
    builders = {
        "factorized": lambda: VAE(dim, latent_dim, tuple(hidden)),
        "autoregressive": lambda: AutoregressiveVAE(dim, latent_dim, tuple(hidden), made_hidden=made_hidden),
    }
    curves, models, epochs = {}, {}, []
    for name, build in builders.items():
        torch.manual_seed(seed)
        m = build()
        h = track_elbo_terms(
            m,
            x_train,
            rounds=rounds,
            epochs=epochs_per_round,
            lr=lr,
            num_samples=num_samples,
            eval_data=x_test,
            seed=seed,
            objective="meanfield",
        )
        m.eval()
        curves[name] = {k: h[k] for k in ("reconstruction", "kl", "elbo")}
        models[name], epochs = m, h["epoch"]
    ll = None if exact is None else float(exact.log_prob(x_test).mean())
    return CollapseStudy(epochs=epochs, curves=curves, models=models, log_likelihood=ll)
