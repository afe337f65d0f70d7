r"""The Wasserstein autoencoder with an MMD penalty (Tolstikhin, Bousquet, Gelly &
Schölkopf 2018, "Wasserstein Auto-Encoders", algorithm 2).

A deterministic encoder :math:`z = Q(x)` and decoder :math:`G(z)` minimize

.. math::
    \frac1N \sum_n c\big(x_n, G(Q(x_n))\big) + \lambda\, \mathrm{MMD}^2\big(q_Z, p_Z\big),

a reconstruction cost (squared error) plus the squared maximum mean discrepancy between
the codes of the minibatch and draws of the prior :math:`p_Z = \mathcal N(0, I)`. Where
the VAE pulls each :math:`q(z|x)` towards the prior (the KL of every example), the WAE
asks only the *aggregate* :math:`q_Z = \mathbb E_x q(z|x)` to match it, so codes of
different examples need not overlap. The MMD uses the inverse multiquadratic kernel
:math:`k(z, z') = C / (C + \|z - z'\|^2)` summed over scales
:math:`C = 2 d \sigma^2 s`, :math:`s \in \{0.1, 0.2, 0.5, 1, 2, 5, 10\}` (the paper's
choice), and its unbiased U-statistic estimate.

On pgen's engine this is a model without latent sites: the cost of each example and the
penalty are ``pyro.factor`` sites, so the ELBO objective of :func:`pgen.fit` is minus the
WAE objective (times N), with no new loop. Generation draws :math:`z \sim p_Z` and returns
:math:`G(z)` at the site ``obs``.
"""

from __future__ import annotations

import pyro
import torch
from torch import nn

from ..checks import check_float, check_int, check_int_tuple
from ..data.validate import check_data
from . import registry
from .gan import _data_args
from .nets import MLP
from .protocols import configured

__all__ = ["WAE", "mmd2"]

SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def mmd2(a: torch.Tensor, b: torch.Tensor, *, sigma2: float = 1.0) -> torch.Tensor:
    """Unbiased estimate of :math:`\\mathrm{MMD}^2` between the samples ``a`` ``(n, d)`` and
    ``b`` ``(m, d)`` with the inverse multiquadratic kernels of the module docstring."""
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(
            f"a and b must be (n, d) and (m, d) with n, m >= 2; got {tuple(a.shape)}, {tuple(b.shape)}"
        )
    d = a.shape[1]
    daa, dbb, dab = torch.cdist(a, a) ** 2, torch.cdist(b, b) ** 2, torch.cdist(a, b) ** 2
    n, m = len(a), len(b)
    off_a = ~torch.eye(n, dtype=torch.bool, device=a.device)
    off_b = ~torch.eye(m, dtype=torch.bool, device=b.device)
    total = a.new_zeros(())
    for s in SCALES:
        c = 2.0 * d * sigma2 * s
        total = total + (c / (c + daa))[off_a].sum() / (n * (n - 1))
        total = total + (c / (c + dbb))[off_b].sum() / (m * (m - 1))
        total = total - 2 * (c / (c + dab)).mean()
    return total


@registry.register("wae", family="wae", reads=("data_dim", "output"), data_args=_data_args)
class WAE(nn.Module):
    """WAE-MMD (module docstring) with MLP encoder and decoder.

    Args:
        data_dim: size of one flattened example.
        latent_dim: the dimension of z.
        hidden: the encoder's hidden widths (the decoder mirrors them).
        penalty: :math:`\\lambda`, the weight of the MMD (the paper uses 10 on MNIST).
        output: ``"sigmoid"`` (images in [0, 1]) or ``"linear"``.
    """

    @configured
    def __init__(
        self,
        data_dim: int,
        latent_dim: int = 8,
        hidden: tuple[int, ...] = (256,),
        penalty: float = 10.0,
        output: str = "sigmoid",
    ):
        super().__init__()
        self.data_dim = check_int("data_dim", data_dim, minimum=1)
        self.latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        self.penalty = check_float("penalty", penalty, nonnegative=True)
        if output not in ("sigmoid", "linear"):
            raise ValueError(f"output must be 'sigmoid' or 'linear'; got {output!r}")
        self.output = output
        hidden = check_int_tuple("hidden", hidden)
        self.encoder = MLP(self.data_dim, hidden, self.latent_dim)
        self.decoder = MLP(self.latent_dim, tuple(reversed(hidden)), self.data_dim)
        self.register_buffer("_zero", torch.zeros(()), persistent=False)

    @property
    def event_shape(self) -> tuple[int, ...]:
        return (self.data_dim,)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self.decoder(z)
        return torch.sigmoid(out) if self.output == "sigmoid" else out

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.reshape(len(x), -1).to(self._zero.dtype))

    def model(self, x=None, *, y=None, n=None):
        """With data: the cost of each example and the MMD penalty as factors (module
        docstring). Without: ``n`` draws G(z), z ~ N(0, I), at the site ``obs``."""
        pyro.module("wae", self)
        n = len(x) if x is not None else (n or 1)
        if x is None:
            with pyro.plate("data", n):
                z = torch.randn(n, self.latent_dim, dtype=self._zero.dtype, device=self._zero.device)
                return pyro.deterministic("obs", self.decode(z), event_dim=1)
        z = self.encode(x)
        with pyro.plate("data", n) as idx:
            cost = ((x.reshape(n, -1) - self.decode(z)) ** 2).sum(-1)
            pyro.factor("obs", -cost)
            # the penalty, spread over the examples so that minibatch scaling keeps it whole
            prior = torch.randn(n, self.latent_dim, dtype=z.dtype, device=z.device)
            pyro.factor("mmd", -self.penalty * mmd2(z, prior).expand(len(idx)))
        return x

    def guide(self, x=None, *, y=None, n=None):
        """No latent sites: the encoder is deterministic and part of the model."""

    @torch.no_grad()
    def sample(self, n: int, *, seed: int | None = None) -> torch.Tensor:
        n = check_int("n", n, minimum=1)
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(check_int("seed", seed, minimum=0))
            return self.model(n=n)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def validate_data(self, x, y=None, *, name: str = "x") -> None:
        x = check_data(x, name=name, event_shape=self.event_shape)
        if self.output == "sigmoid" and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
            raise ValueError(
                f"{name} must lie in [0, 1] for output='sigmoid'; got values in "
                f"[{float(x.min()):.3g}, {float(x.max()):.3g}]"
            )
