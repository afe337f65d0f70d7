r"""Probabilistic PCA (Tipping & Bishop 1999): a linear-Gaussian latent variable model.

.. math::
    z \sim \mathcal{N}(0, I_k), \qquad x \mid z \sim \mathcal{N}(W z + \mu, \sigma^2 I_D).

Everything a VAE has to approximate is exact here, which makes it pgen's test oracle:

* marginal likelihood :math:`x \sim \mathcal{N}(\mu, C)`, :math:`C = W W^\top + \sigma^2 I`;
* posterior :math:`z \mid x \sim \mathcal{N}(M^{-1} W^\top (x - \mu),\ \sigma^2 M^{-1})`
  with :math:`M = W^\top W + \sigma^2 I_k`;
* maximum likelihood in closed form: :math:`\hat\mu = \bar x`,
  :math:`\hat\sigma^2 = \frac{1}{D-k}\sum_{j>k} \lambda_j`,
  :math:`\hat W = U_k (\Lambda_k - \hat\sigma^2 I)^{1/2}`, with :math:`\lambda_j, U` the
  eigenvalues and eigenvectors of the sample covariance.

Two guides: ``guide``, an amortized linear diagonal Gaussian
:math:`q(z|x) = \mathcal{N}(A x + b, \mathrm{diag}\, s^2)` fitted by SVI like a linear VAE;
and ``exact_guide``, the true posterior (no parameters), for which every importance
weight equals :math:`p(x)`.

References:
    Tipping & Bishop (1999), Probabilistic Principal Component Analysis, JRSS B.
    Lucas, Tucker, Grosse & Norouzi (2019), Don't Blame the ELBO! (linear VAEs reach
    the PPCA maximum-likelihood solution).
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from torch import nn
from torch.nn import functional as F

from ..checks import check_float, check_int
from ..data.validate import check_data
from . import registry
from .latent import LatentVariableModel
from .protocols import ExactLikelihoodModel, configured

__all__ = ["PPCA"]


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


@registry.register("ppca", family="latent")
class PPCA(LatentVariableModel, ExactLikelihoodModel, nn.Module):
    """Probabilistic PCA with a learnable linear guide and the exact posterior.

    Args:
        data_dim: D, the dimension of x.
        latent_dim: k < D, the dimension of the latent variable z.
        sigma: initial noise standard deviation (> 0); learned.
    """

    @configured
    def __init__(self, data_dim: int, latent_dim: int = 2, sigma: float = 1.0):
        super().__init__()
        data_dim = check_int("data_dim", data_dim, minimum=2)
        latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        if latent_dim >= data_dim:
            raise ValueError(f"latent_dim must be < data_dim={data_dim}, got {latent_dim}")
        sigma = check_float("sigma", sigma, positive=True)
        self.data_dim, self.latent_dim = data_dim, latent_dim
        self.generative = nn.ParameterDict(
            {
                "weight": nn.Parameter(0.1 * torch.randn(data_dim, latent_dim)),
                "bias": nn.Parameter(torch.zeros(data_dim)),
                "raw_sigma": nn.Parameter(torch.tensor(_inverse_softplus(sigma))),
            }
        )
        self.inference = nn.ModuleDict({"loc": nn.Linear(data_dim, latent_dim)})
        self.inference.raw_scale = nn.Parameter(torch.zeros(latent_dim))

    @property
    def event_shape(self) -> tuple[int, ...]:
        return (self.data_dim,)

    @property
    def weight(self) -> torch.Tensor:
        """W, shape ``(data_dim, latent_dim)``."""
        return self.generative["weight"]

    @property
    def bias(self) -> torch.Tensor:
        """The mean mu, shape ``(data_dim,)``."""
        return self.generative["bias"]

    @property
    def sigma(self) -> torch.Tensor:
        """The noise standard deviation."""
        return F.softplus(self.generative["raw_sigma"])

    def validate_data(self, x, y=None, *, name: str = "x") -> None:
        check_data(x, name=name, event_shape=self.event_shape)

    def model(self, x: torch.Tensor | None = None, *, y=None, n: int | None = None) -> torch.Tensor:
        """p(z) p(x|z); with ``x=None`` it generates ``n`` examples (default 1)."""
        n = (1 if n is None else check_int("n", n, minimum=1)) if x is None else x.shape[0]
        pyro.module("ppca_model", self.generative)
        prior = dist.Normal(self.bias.new_zeros(()), 1.0).expand([n, self.latent_dim]).to_event(1)
        with pyro.plate("data", n):
            z = pyro.sample("z", prior)
            loc = z @ self.weight.T + self.bias
            return pyro.sample("obs", dist.Normal(loc, self.sigma).to_event(1), obs=x)

    def guide(self, x: torch.Tensor | None = None, *, y=None, n: int | None = None) -> torch.Tensor:
        """The amortized linear diagonal-Gaussian guide."""
        if x is None:
            raise ValueError("the guide q(z|x) needs x")
        pyro.module("ppca_guide", self.inference)
        with pyro.plate("data", x.shape[0]):
            loc = self.inference["loc"](x)
            scale = F.softplus(self.inference.raw_scale) + 1e-4
            return pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def exact_guide(self, x: torch.Tensor | None = None, *, y=None, n: int | None = None) -> torch.Tensor:
        """The exact posterior p(z|x) (no parameters of its own)."""
        if x is None:
            raise ValueError("the guide needs x")
        loc, cov = self.posterior(x)
        with pyro.plate("data", x.shape[0]):
            return pyro.sample("z", dist.MultivariateNormal(loc, covariance_matrix=cov))

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation of the amortized guide q(z|x)."""
        x = torch.as_tensor(x, dtype=self.bias.dtype)
        if x.shape[-1:] != self.event_shape:
            raise ValueError(f"x has shape {tuple(x.shape)}; expected (..., {self.data_dim})")
        loc = self.inference["loc"](x)
        return loc, (F.softplus(self.inference.raw_scale) + 1e-4).expand_as(loc)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The mean of p(x|z), :math:`W z + \\mu`."""
        z = torch.as_tensor(z, dtype=self.bias.dtype)
        if z.shape[-1] != self.latent_dim:
            raise ValueError(f"z has shape {tuple(z.shape)}; expected (..., {self.latent_dim})")
        return z @ self.weight.T + self.bias

    @torch.no_grad()
    def sample(self, n: int, *, seed: int | None = None, mean: bool = True) -> torch.Tensor:
        """``n`` examples: the mean of p(x|z) for z ~ N(0, I) (``mean=True``), or draws of x."""
        n = check_int("n", n, minimum=1)
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(check_int("seed", seed, minimum=0))
            loc = self.decode(torch.randn(n, self.latent_dim, dtype=self.bias.dtype))
            return loc if mean else loc + self.sigma * torch.randn_like(loc)

    def covariance(self) -> torch.Tensor:
        """The marginal covariance :math:`W W^T + \\sigma^2 I`."""
        return self.weight @ self.weight.T + self.sigma**2 * torch.eye(self.data_dim)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """The exact log p(x) of each example, shape ``(N,)``."""
        return dist.MultivariateNormal(self.bias, covariance_matrix=self.covariance()).log_prob(x)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean ``(N, k)`` and covariance ``(k, k)`` of the exact posterior p(z|x)."""
        s2 = self.sigma**2
        m = self.weight.T @ self.weight + s2 * torch.eye(self.latent_dim)
        loc = torch.linalg.solve(m, self.weight.T @ (x - self.bias).T).T
        return loc, s2 * torch.linalg.inv(m)

    @staticmethod
    def mle(x: torch.Tensor, latent_dim: int) -> dict[str, torch.Tensor]:
        """The closed-form maximum-likelihood parameters ``weight``, ``bias``, ``sigma``."""
        x = check_data(x)
        latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        d = x.shape[1]
        if latent_dim >= d:
            raise ValueError(f"latent_dim must be < {d}, got {latent_dim}")
        mu = x.mean(0)
        cov = (x - mu).T @ (x - mu) / x.shape[0]
        evals, evecs = torch.linalg.eigh(cov)
        evals, evecs = evals.flip(0), evecs.flip(1)
        s2 = evals[latent_dim:].mean()
        w = evecs[:, :latent_dim] * torch.sqrt(torch.clamp(evals[:latent_dim] - s2, min=0.0))
        return {"weight": w, "bias": mu, "sigma": s2.sqrt()}

    @torch.no_grad()
    def set_parameters(self, weight: torch.Tensor, bias: torch.Tensor, sigma) -> PPCA:
        """Set the model's parameters (e.g. to :meth:`mle`'s); returns self."""
        self.generative["weight"].copy_(weight)
        self.generative["bias"].copy_(bias)
        self.generative["raw_sigma"].copy_(torch.tensor(_inverse_softplus(float(sigma))))
        return self
