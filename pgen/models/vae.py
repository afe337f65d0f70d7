r"""The variational autoencoder (Kingma & Welling 2014; Rezende, Mohamed & Wierstra 2014).

Generative model, with a standard normal prior and a decoder network :math:`f_\theta`:

.. math::
    z \sim \mathcal{N}(0, I), \qquad
    x \mid z \sim \mathrm{Bernoulli}(\mathrm{sigmoid}(f_\theta(z)))
    \ \text{or}\ \mathcal{N}(f_\theta(z), \sigma^2 I).

Amortized guide, with an encoder network:
:math:`q_\phi(z | x) = \mathcal{N}(\mu_\phi(x), \mathrm{diag}\,\sigma_\phi(x)^2)`.

Training maximizes :math:`\mathrm{ELBO}(x) = \mathbb{E}_q[\log p(x|z)] -
\beta\,\mathrm{KL}(q(z|x)\,\|\,p(z))` through ``pgen.fit``. ``beta`` (Higgins et al. 2017)
scales the latent site in both model and guide (``poutine.scale``), so every ELBO
estimator in Pyro and pgen weights the KL by beta; ``beta = 1`` is the plain VAE.

References:
    Kingma & Welling (2014), Auto-Encoding Variational Bayes, ICLR.
    Rezende, Mohamed & Wierstra (2014), Stochastic Backpropagation and Approximate
    Inference in Deep Generative Models, ICML.
    Higgins et al. (2017), beta-VAE, ICLR.
    White (2016), Sampling Generative Networks (spherical interpolation).
"""

from __future__ import annotations

import contextlib
from typing import Literal

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch import nn
from torch.nn import functional as F

from ..checks import check_choice, check_float, check_int, check_int_tuple
from ..data.validate import check_data, check_unit_interval
from . import registry
from .latent import LatentVariableModel, lerp, slerp
from .nets import ACTIVATIONS, MLP, GaussianEncoder
from .protocols import configured

__all__ = ["VAE", "lerp", "slerp"]

_MIN_SIGMA = 1e-3


class _Decoder(nn.Module):
    """``z -> `` parameters of p(x|z): Bernoulli logits, or a Gaussian mean (and sigma)."""

    def __init__(self, latent_dim, hidden, data_dim, activation, likelihood, sigma):
        super().__init__()
        self.net = MLP(latent_dim, hidden, data_dim, activation)
        self.likelihood = likelihood
        self.fixed_sigma = None
        if likelihood == "gaussian":
            if sigma == "learned":
                # softplus(0.5413) + 1e-3 = 1.0: start at unit noise and learn it
                self.raw_sigma = nn.Parameter(torch.tensor(0.5413))
            else:
                self.fixed_sigma = float(sigma)

    def sigma(self) -> torch.Tensor | float:
        if self.fixed_sigma is not None:
            return self.fixed_sigma
        return F.softplus(self.raw_sigma) + _MIN_SIGMA

    def distribution(self, z: torch.Tensor) -> dist.Distribution:
        out = self.net(z)
        if self.likelihood == "bernoulli":
            return dist.Bernoulli(logits=out).to_event(1)
        return dist.Normal(out, self.sigma()).to_event(1)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        out = self.net(z)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out


@registry.register("vae", family="latent")
class VAE(LatentVariableModel, nn.Module):
    """A variational autoencoder with MLP encoder and decoder.

    Args:
        data_dim: size of one flattened example (784 for 28x28 images).
        latent_dim: the dimension of the latent variable z.
        hidden: hidden layer widths of the encoder; the decoder mirrors them.
        likelihood: ``"bernoulli"`` (binary data; the decoder gives logits) or
            ``"gaussian"`` (real data; the decoder gives the mean).
        sigma: Gaussian likelihood only: a fixed standard deviation (> 0), or
            ``"learned"`` for one learned scalar.
        beta: the KL weight (> 0); 1 is the VAE, other values the beta-VAE.
        activation: hidden activation: ``relu``, ``tanh``, ``softplus`` or ``elu``.

    Example:
        >>> x, _ = pgen.data.load("mnist5k", binarize="threshold")
        >>> vae = pgen.models.VAE(data_dim=784, latent_dim=20)
        >>> pgen.fit(vae.model, vae.guide, x, epochs=10)
        >>> images = vae.sample(64, seed=0)
    """

    @configured
    def __init__(
        self,
        data_dim: int,
        latent_dim: int = 20,
        hidden: tuple[int, ...] = (400,),
        likelihood: Literal["bernoulli", "gaussian"] = "bernoulli",
        sigma: float | Literal["learned"] = "learned",
        beta: float = 1.0,
        activation: Literal["relu", "tanh", "softplus", "elu"] = "relu",
    ):
        super().__init__()
        data_dim = check_int("data_dim", data_dim, minimum=1)
        latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        hidden = check_int_tuple("hidden", hidden)
        likelihood = check_choice("likelihood", likelihood, ("bernoulli", "gaussian"))
        if sigma != "learned":
            if likelihood != "gaussian":
                raise ValueError(
                    f"sigma={sigma!r} applies to likelihood='gaussian' only; a Bernoulli "
                    "likelihood has no noise scale"
                )
            sigma = check_float("sigma", sigma, positive=True)
        beta = check_float("beta", beta, positive=True)
        activation = check_choice("activation", activation, ACTIVATIONS)
        self.data_dim, self.latent_dim = data_dim, latent_dim
        self.likelihood, self.beta = likelihood, beta
        self.encoder = GaussianEncoder(data_dim, hidden, latent_dim, activation)
        self.decoder = _Decoder(latent_dim, tuple(reversed(hidden)), data_dim, activation, likelihood, sigma)
        self.register_buffer("_zero", torch.zeros(()), persistent=False)

    @property
    def event_shape(self) -> tuple[int, ...]:
        """The shape of one example: ``(data_dim,)``."""
        return (self.data_dim,)

    def validate_data(self, x: torch.Tensor, y=None, *, name: str = "x") -> None:
        """Raise ``ValueError`` if ``x`` is not data this VAE can model."""
        x = check_data(x, name=name, event_shape=self.event_shape)
        if self.likelihood == "bernoulli":
            check_unit_interval(x, name=name, binary=True)

    def _kl_scale(self):
        return poutine.scale(scale=self.beta) if self.beta != 1.0 else contextlib.nullcontext()

    def model(self, x: torch.Tensor | None = None, *, y=None, n: int | None = None) -> torch.Tensor:
        """p(z) p(x|z). With ``x=None`` it generates ``n`` examples (default 1)."""
        if x is None:
            n = 1 if n is None else check_int("n", n, minimum=1)
        elif n is not None and n != x.shape[0]:
            raise ValueError(f"n={n} but x has {x.shape[0]} examples; give one or the other")
        else:
            n = x.shape[0]
        for name, module in self._pyro_modules("model").items():
            pyro.module(name, module)
        with pyro.plate("data", n):
            with self._kl_scale():
                z = pyro.sample("z", self.prior(n))
            return pyro.sample("obs", self.decoder.distribution(z), obs=x)

    def guide(self, x: torch.Tensor | None = None, *, y=None, n: int | None = None) -> torch.Tensor:
        """q(z|x), a diagonal Gaussian from the encoder."""
        if x is None:
            raise ValueError("the guide q(z|x) needs x; to generate, call model(n=...) or sample()")
        for name, module in self._pyro_modules("guide").items():
            pyro.module(name, module)
        with pyro.plate("data", x.shape[0]):
            with self._kl_scale():
                return pyro.sample("z", self.posterior(x))

    def prior(self, n: int) -> dist.Distribution:
        """p(z) of ``n`` examples: a standard Normal (batch shape ``(n,)``)."""
        return dist.Normal(self._zero, 1.0).expand([n, self.latent_dim]).to_event(1)

    def posterior(self, x: torch.Tensor) -> dist.Distribution:
        """q(z|x) of each example of ``x``: the encoder's diagonal Gaussian."""
        loc, scale = self.encoder(x)
        return dist.Normal(loc, scale).to_event(1)

    def _pyro_modules(self, role: str) -> dict:
        """The networks ``model`` or ``guide`` registers with Pyro, by name."""
        return {"vae_decoder": self.decoder} if role == "model" else {"vae_encoder": self.encoder}

    # ---------------------------------------------------------------- helpers

    def _decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder.mean(z)

    def _check_input(self, x: torch.Tensor, name: str) -> torch.Tensor:
        x = torch.as_tensor(x)
        if x.shape[-1:] != self.event_shape:
            raise ValueError(f"{name} has shape {tuple(x.shape)}; expected (..., {self.data_dim})")
        return x.to(self._zero.dtype)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean and standard deviation of q(z|x), each ``(..., latent_dim)``."""
        return self.encoder(self._check_input(x, "x"))

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The mean of p(x|z): pixel probabilities (Bernoulli) or the Gaussian mean."""
        z = torch.as_tensor(z, dtype=self._zero.dtype)
        if z.shape[-1] != self.latent_dim:
            raise ValueError(f"z has shape {tuple(z.shape)}; expected (..., {self.latent_dim})")
        return self.decoder.mean(z)

    @torch.no_grad()
    def sample(self, n: int, *, seed: int | None = None, mean: bool = True) -> torch.Tensor:
        """Generate ``n`` examples, shape ``(n, data_dim)``.

        Args:
            n: number of examples.
            seed: seed for these samples only (the global random state is left as it was).
            mean: return the mean of p(x|z) (what image grids usually show); if False,
                draw x ~ p(x|z).
        """
        n = check_int("n", n, minimum=1)
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(check_int("seed", seed, minimum=0))
            z = torch.randn(n, self.latent_dim, dtype=self._zero.dtype)
            if mean:
                return self.decoder.mean(z)
            return self.decoder.distribution(z).sample()

    @torch.no_grad()
    def rate_distortion(
        self, x: torch.Tensor, *, num_samples: int = 10, seed: int | None = 0
    ) -> tuple[float, float]:
        r"""Rate and distortion on ``x`` (Alemi et al. 2018), in nats per example:

        .. math::
            R = \mathbb E_x\,\mathrm{KL}(q(z|x)\,\|\,\mathcal N(0, I))\ \text{(closed form)},
            \qquad D = -\mathbb E_x\,\mathbb E_{q(z|x)} \log p(x|z)\ \text{(``num_samples`` draws)}.

        The ELBO is :math:`-(D + R)`; the beta-VAE maximizes :math:`-(D + \beta R)`, so a
        larger beta buys a lower rate with more distortion.

        Returns:
            ``(rate, distortion)``.
        """
        x = check_data(x, name="x", event_shape=self.event_shape).to(self._zero.dtype)
        num_samples = check_int("num_samples", num_samples, minimum=1)
        loc, scale = self.encoder(x)
        rate = 0.5 * (loc**2 + scale**2 - 1.0 - 2.0 * scale.log()).sum(-1)
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(check_int("seed", seed, minimum=0))
            z = loc + scale * torch.randn(num_samples, *loc.shape, dtype=loc.dtype)
        distortion = -self.decoder.distribution(z).log_prob(x).mean(0)
        return float(rate.mean()), float(distortion.mean())
