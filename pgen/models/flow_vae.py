r"""A VAE with flows in it: an inverse-autoregressive posterior and a flow prior.

**IAF posterior** (Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling 2016,
"Improved variational inference with inverse autoregressive flow"). The encoder gives
the Gaussian :math:`z_0 = \mu(x) + \sigma(x) \odot \epsilon` and a context :math:`h(x)`
(its last hidden layer); ``posterior_flow`` autoregressive layers, each conditioned on
:math:`h`, then map :math:`z_0` to :math:`z = f_h(z_0)`, and

.. math::
    \log q(z \mid x) = \log \mathcal N(z_0; \mu, \sigma^2)
      - \log\left|\det \frac{\partial f_h}{\partial z_0}\right|.

The layers are zuko's masked autoregressive transforms used in their one-pass direction,
which is the IAF: sampling :math:`z` and its density cost one pass each. They start as
the identity, so training starts from the Gaussian VAE.

**Flow prior**: :math:`p(z)` a zuko MAF (``prior_flow`` layers) on a standard Normal
instead of :math:`\mathcal N(0, I)`, its density in one pass and a draw in
``latent_dim`` passes. With either, the KL term has no closed form and the ELBO is
estimated by sampling; pgen's importance-sampled :math:`\log p(x)` uses the same model
and guide, so it needs nothing new.
"""

from __future__ import annotations

from typing import Literal

import torch
from pyro.distributions import TorchDistribution, constraints

from ..checks import check_int, check_int_tuple
from ..data.validate import check_data
from ..inference.flow_guides import zuko_flow
from . import registry
from .flows import FlowDistribution
from .protocols import configured
from .vae import VAE

__all__ = ["FlowVAE", "IAFPosterior"]


class IAFPosterior(TorchDistribution):
    """:math:`z = f_h(\\mu + \\sigma \\odot \\epsilon)` (module docstring); ``transform`` is
    :math:`f_h`, a zuko transform already given its context."""

    arg_constraints: dict = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, transform, loc: torch.Tensor, scale: torch.Tensor, batch_shape=None):
        self.transform, self.loc, self.scale = transform, loc, scale
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None
        shape = loc.shape[:-1] if batch_shape is None else torch.Size(batch_shape)
        super().__init__(shape, loc.shape[-1:], validate_args=False)

    def expand(self, batch_shape, _instance=None):
        return IAFPosterior(self.transform, self.loc, self.scale, batch_shape)

    def _gaussian(self, z0):
        return torch.distributions.Normal(self.loc, self.scale).log_prob(z0).sum(-1)

    def rsample(self, sample_shape=()):
        shape = torch.Size(sample_shape) + self.batch_shape + self.event_shape
        z0 = self.loc + self.scale * torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        z, ladj = self.transform.call_and_ladj(z0)
        self._last = (z, self._gaussian(z0) - ladj)
        return z

    def log_prob(self, z):
        if self._last is not None and z is self._last[0]:
            return self._last[1]
        z0, ladj = self.transform.inv.call_and_ladj(z)
        return self._gaussian(z0) + ladj


@registry.register("flowvae", family="latent")
class FlowVAE(VAE):
    """A VAE whose posterior is an IAF and whose prior may be a flow (module docstring).

    Args:
        data_dim: size of one flattened example.
        latent_dim: the dimension of z.
        hidden: the encoder's hidden widths (the decoder mirrors them).
        likelihood, sigma, beta, activation: as for :class:`~pgen.models.VAE`.
        posterior_flow: IAF layers of q(z|x) (0: the Gaussian posterior).
        prior_flow: MAF layers of p(z) (0: the standard Normal prior).
        flow_hidden: the hidden widths of each flow layer's network.
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
        posterior_flow: int = 2,
        prior_flow: int = 0,
        flow_hidden: tuple[int, ...] = (64, 64),
    ):
        super().__init__(data_dim, latent_dim, hidden, likelihood, sigma, beta, activation)
        self.posterior_flow = check_int("posterior_flow", posterior_flow, minimum=0)
        self.prior_flow = check_int("prior_flow", prior_flow, minimum=0)
        flow_hidden = check_int_tuple("flow_hidden", flow_hidden)
        context = check_int_tuple("hidden", hidden)[-1]
        self.iaf = (
            zuko_flow("maf", self.latent_dim, self.posterior_flow, flow_hidden, context=context)
            if self.posterior_flow
            else None
        )
        self.prior_net = (
            zuko_flow("maf", self.latent_dim, self.prior_flow, flow_hidden) if self.prior_flow else None
        )

    def prior(self, n: int):
        """p(z) of ``n`` examples (batch shape ``(n,)``)."""
        if self.prior_net is None:
            return super().prior(n)
        return FlowDistribution(self.prior_net(), None, (n,))

    def posterior(self, x: torch.Tensor):
        """q(z|x) of each example of ``x`` (batch shape ``x.shape[:-1]``)."""
        if self.iaf is None:
            return super().posterior(x)
        loc, scale = self.encoder(x)
        return IAFPosterior(self.iaf.transform(self.encoder.body(x)), loc, scale)

    def _pyro_modules(self, role: str) -> dict:
        extra = {"vae_prior": self.prior_net} if role == "model" else {"vae_iaf": self.iaf}
        return {**super()._pyro_modules(role), **{k: v for k, v in extra.items() if v is not None}}

    @torch.no_grad()
    def encode(self, x: torch.Tensor, *, num_draws: int = 64, seed: int = 0):
        """The mean and standard deviation of q(z|x) (from ``num_draws`` draws, seeded,
        where the IAF makes them intractable), each ``(..., latent_dim)``."""
        x = self._check_input(x, "x")
        if self.iaf is None:
            return self.encoder(x)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            z = self.posterior(x).rsample((check_int("num_draws", num_draws, minimum=2),))
        return z.mean(0), z.std(0)

    @torch.no_grad()
    def sample(self, n: int, *, seed: int | None = None, mean: bool = True) -> torch.Tensor:
        """Generate ``n`` examples ``(n, data_dim)`` from the (flow) prior; as
        :meth:`VAE.sample`."""
        n = check_int("n", n, minimum=1)
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(check_int("seed", seed, minimum=0))
            z = self.prior(n).sample() if self.prior_net is not None else torch.randn(n, self.latent_dim)
            z = z.to(self._zero.dtype)
            return self.decoder.mean(z) if mean else self.decoder.distribution(z).sample()

    @torch.no_grad()
    def rate_distortion(self, x: torch.Tensor, *, num_samples: int = 10, seed: int | None = 0):
        """Rate :math:`E_x E_q[\\log q(z|x) - \\log p(z)]` and distortion, both by sampling
        (``num_samples`` draws): no closed form with flows. As :meth:`VAE.rate_distortion`."""
        x = check_data(x, name="x", event_shape=self.event_shape).to(self._zero.dtype)
        num_samples = check_int("num_samples", num_samples, minimum=1)
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(check_int("seed", seed, minimum=0))
            q = self.posterior(x)
            z = q.rsample((num_samples,))
            rate = q.log_prob(z) - self.prior(len(x)).log_prob(z)
        distortion = -self.decoder.distribution(z).log_prob(x)
        return float(rate.mean()), float(distortion.mean())
