r"""Bayesian models: plain Pyro models for the MCMC engine, the guides and the comparison.

Each class holds a model's fixed hyper-parameters and exposes ``model(...)``, a Pyro
function whose latent sites are the parameters to infer. The guides come from
:func:`pgen.inference.guides.make_guide`, so one model is fitted by NUTS
(:func:`pgen.sample`) and by every variational family (:func:`pgen.fit`). Where the
posterior is known in closed form the class says so (``exact_posterior``), which makes
it a test oracle.

* :class:`LinearRegression`: conjugate Gaussian regression with known noise: exact
  posterior and exact evidence :math:`p(y \mid X)` (Bishop 2006, section 3.3).
* :class:`LogisticRegression`: the notes' first example of intractable inference.
* :class:`EightSchools`: Rubin's (1981) hierarchical model, centred (a funnel that
  makes NUTS diverge) and non-centred (Betancourt & Girolami 2015).
* :class:`RandomWalk`: a Gaussian random walk observed in noise, one latent site per
  time step: a chain-structured posterior that a structured guide captures exactly and
  mean field does not.
* :class:`CorrelatedGaussian`: a target :math:`\mathcal N(\mu, \Sigma)` where the
  mean-field reverse-KL optimum is known: :math:`q_i = \mathcal N(\mu_i, 1/\Lambda_{ii})`
  with :math:`\Lambda = \Sigma^{-1}` (Bishop 2006, section 10.1.2).

:func:`problem` returns a ready :class:`BayesProblem` (model, data, reference) by name,
for the CLI's ``pgen compare``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyro
import pyro.distributions as dist
import torch

from ..checks import check_float, check_int
from ..data.validate import check_data

__all__ = [
    "LinearRegression",
    "LogisticRegression",
    "EightSchools",
    "RandomWalk",
    "CorrelatedGaussian",
    "GaussianPosterior",
    "BayesProblem",
    "problem",
    "PROBLEMS",
]


@dataclass(frozen=True)
class GaussianPosterior:
    """An exact Gaussian posterior over some sites laid end to end.

    Attributes:
        mean: ``(D,)``; cov: ``(D, D)``; sites: ``[(name, shape), ...]`` in order.
    """

    mean: torch.Tensor
    cov: torch.Tensor
    sites: list[tuple[str, tuple[int, ...]]]

    def split(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        out, offset = {}, 0
        for name, shape in self.sites:
            size = int(np.prod(shape)) if shape else 1
            out[name] = flat[..., offset : offset + size].reshape(tuple(flat.shape[:-1]) + tuple(shape))
            offset += size
        return out

    def sample(self, num_draws: int, seed: int = 0) -> dict[str, np.ndarray]:
        """Exact draws ``{site: (num_draws, *shape)}`` (float64)."""
        g = torch.Generator().manual_seed(seed)
        chol = torch.linalg.cholesky(self.cov.double())
        e = torch.randn(num_draws, len(self.mean), generator=g, dtype=torch.float64)
        flat = self.mean.double() + e @ chol.T
        return {k: v.numpy() for k, v in self.split(flat).items()}

    @property
    def means(self) -> dict[str, torch.Tensor]:
        return self.split(self.mean)

    @property
    def sds(self) -> dict[str, torch.Tensor]:
        return self.split(self.cov.diagonal().sqrt())


def _check_xy(x, y, *, binary: bool = False):
    x = check_data(x, name="x")
    if y is not None:
        y = check_data(y, name="y", min_rank=1)
        if y.dim() != 1 or len(y) != len(x):
            raise ValueError(f"y must have shape ({len(x)},) to match x; got {tuple(y.shape)}")
        if binary and not bool(((y == 0) | (y == 1)).all()):
            raise ValueError("y must hold 0/1 labels for logistic regression")
    return x, y


def _check_design(x, y) -> None:
    """Shape and dtype checks inside a regression model (no values are read, so the
    model still compiles): ``x`` a floating ``(N, D)`` tensor, ``y`` ``None`` or ``(N,)``."""
    if not torch.is_tensor(x):
        raise TypeError(f"x must be a tensor of shape (N, D), got {type(x).__name__}")
    if x.dim() != 2:
        hint = "; for one covariate pass x.reshape(-1, 1)" if x.dim() == 1 else ""
        raise ValueError(f"x must have shape (N, D): examples x covariates; got {tuple(x.shape)}{hint}")
    if not x.is_floating_point():
        raise ValueError(f"x has dtype {x.dtype}; covariates must be floating point (x.float())")
    if y is not None and (not torch.is_tensor(y) or tuple(y.shape) != (x.shape[0],)):
        shape = tuple(y.shape) if torch.is_tensor(y) else type(y).__name__
        raise ValueError(
            f"y must be a tensor of shape ({x.shape[0]},) to match x {tuple(x.shape)}; got {shape}"
        )


class LinearRegression:
    r"""Bayesian linear regression with known noise, conjugate Gaussian prior.

    .. math::
        b \sim \mathcal N(0, s^2),\quad w \sim \mathcal N(0, s^2 I),\quad
        y_n \mid x_n \sim \mathcal N(b + x_n^\top w, \sigma^2).

    With design :math:`\Phi = [1, X]`, prior covariance :math:`S_0 = s^2 I`, the posterior
    is :math:`\mathcal N(m, S)`, :math:`S^{-1} = S_0^{-1} + \Phi^\top\Phi/\sigma^2`,
    :math:`m = S\Phi^\top y/\sigma^2`, and the evidence is
    :math:`y \sim \mathcal N(0, \sigma^2 I + \Phi S_0 \Phi^\top)`.

    Args:
        prior_scale: s, the prior sd of the bias and every weight.
        noise_scale: sigma, the known observation noise sd.
    """

    def __init__(self, prior_scale: float = 1.0, noise_scale: float = 1.0):
        self.prior_scale = check_float("prior_scale", prior_scale, positive=True)
        self.noise_scale = check_float("noise_scale", noise_scale, positive=True)

    def model(self, x, y=None):
        _check_design(x, y)
        d = x.shape[-1]
        bias = pyro.sample("bias", dist.Normal(x.new_zeros(()), self.prior_scale))
        weights = pyro.sample("weights", dist.Normal(x.new_zeros(d), self.prior_scale).to_event(1))
        with pyro.plate("data", x.shape[0]):
            return pyro.sample("obs", dist.Normal(bias + (x * weights).sum(-1), self.noise_scale), obs=y)

    def _design(self, x):
        x = x.double()
        return torch.cat([torch.ones(len(x), 1, dtype=torch.float64), x], dim=1)

    def exact_posterior(self, x, y) -> GaussianPosterior:
        """The posterior over (bias, weights), exactly."""
        x, y = _check_xy(x, y)
        phi = self._design(x)
        precision = (
            torch.eye(phi.shape[1], dtype=torch.float64) / self.prior_scale**2
            + phi.T @ phi / self.noise_scale**2
        )
        cov = torch.linalg.inv(precision)
        cov = 0.5 * (cov + cov.T)
        mean = cov @ phi.T @ y.double() / self.noise_scale**2
        return GaussianPosterior(mean, cov, [("bias", ()), ("weights", (x.shape[1],))])

    def log_evidence(self, x, y) -> float:
        """:math:`\\log p(y \\mid X)` exactly (nats)."""
        x, y = _check_xy(x, y)
        phi = self._design(x)
        cov = self.noise_scale**2 * torch.eye(len(x), dtype=torch.float64) + self.prior_scale**2 * phi @ phi.T
        return float(
            dist.MultivariateNormal(torch.zeros(len(x), dtype=torch.float64), cov).log_prob(y.double())
        )


class LogisticRegression:
    r"""Bayesian logistic regression:
    :math:`b \sim \mathcal N(0, s_b^2)`, :math:`w \sim \mathcal N(0, s^2 I)`,
    :math:`y_n \sim \mathrm{Bernoulli}(\sigma(b + x_n^\top w))`.

    Args:
        prior_scale: s, the prior sd of each weight.
        bias_scale: s_b, the prior sd of the intercept.
    """

    def __init__(self, prior_scale: float = 1.0, bias_scale: float = 5.0):
        self.prior_scale = check_float("prior_scale", prior_scale, positive=True)
        self.bias_scale = check_float("bias_scale", bias_scale, positive=True)

    def model(self, x, y=None):
        _check_design(x, y)
        d = x.shape[-1]
        bias = pyro.sample("bias", dist.Normal(x.new_zeros(()), self.bias_scale))
        weights = pyro.sample("weights", dist.Normal(x.new_zeros(d), self.prior_scale).to_event(1))
        with pyro.plate("data", x.shape[0]):
            return pyro.sample("obs", dist.Bernoulli(logits=bias + (x * weights).sum(-1)), obs=y)


class EightSchools:
    r"""Rubin's eight schools: :math:`\mu \sim \mathcal N(0, 5^2)`,
    :math:`\tau \sim \mathrm{HalfCauchy}(5)`, :math:`\theta_j \sim \mathcal N(\mu, \tau^2)`,
    :math:`y_j \sim \mathcal N(\theta_j, \sigma_j^2)`.

    Centred, small :math:`\tau` squeezes :math:`\theta` into a funnel whose neck NUTS
    cannot enter (divergences). Non-centred samples
    :math:`\tilde\theta_j \sim \mathcal N(0, 1)` and sets
    :math:`\theta_j = \mu + \tau\tilde\theta_j` (a deterministic site): same model,
    friendly geometry.

    Args:
        centered: the parameterization.
    """

    def __init__(self, centered: bool = True):
        self.centered = bool(centered)

    def model(self, sigma, y=None):
        mu = pyro.sample("mu", dist.Normal(sigma.new_zeros(()), 5.0))
        tau = pyro.sample("tau", dist.HalfCauchy(sigma.new_tensor(5.0)))
        with pyro.plate("schools", sigma.shape[0]):
            if self.centered:
                theta = pyro.sample("theta", dist.Normal(mu, tau))
            else:
                theta_tilde = pyro.sample("theta_tilde", dist.Normal(sigma.new_zeros(()), 1.0))
                theta = pyro.deterministic("theta", mu + tau * theta_tilde)
            return pyro.sample("obs", dist.Normal(theta, sigma), obs=y)


class RandomWalk:
    r"""A Gaussian random walk seen through noise, one latent site ``x_t`` per step:

    .. math::
        x_0 \sim \mathcal N(0, q^2),\quad x_t \mid x_{t-1} \sim \mathcal N(x_{t-1}, q^2),\quad
        y_t \mid x_t \sim \mathcal N(x_t, r^2).

    The posterior is Gaussian with a tridiagonal precision: neighbours are strongly
    correlated, so mean field underestimates every variance while a guide that keeps the
    chain's dependencies (``structured``) is exact.

    Args:
        process_scale: q. noise_scale: r.
    """

    def __init__(self, process_scale: float = 1.0, noise_scale: float = 1.0):
        self.process_scale = check_float("process_scale", process_scale, positive=True)
        self.noise_scale = check_float("noise_scale", noise_scale, positive=True)

    def model(self, y):
        x = y.new_zeros(())
        for t in pyro.markov(range(len(y))):
            x = pyro.sample(f"x_{t}", dist.Normal(x, self.process_scale))
            pyro.sample(f"y_{t}", dist.Normal(x, self.noise_scale), obs=y[t])

    def exact_posterior(self, y) -> GaussianPosterior:
        y = torch.as_tensor(y, dtype=torch.float64)
        t = len(y)
        q2, r2 = self.process_scale**2, self.noise_scale**2
        # prior precision of the walk: (D^T D) / q^2 with D the differencing matrix
        diff = torch.eye(t, dtype=torch.float64) - torch.diag(torch.ones(t - 1, dtype=torch.float64), -1)
        precision = diff.T @ diff / q2 + torch.eye(t, dtype=torch.float64) / r2
        cov = torch.linalg.inv(precision)
        cov = 0.5 * (cov + cov.T)
        mean = cov @ y / r2
        return GaussianPosterior(mean, cov, [(f"x_{i}", ()) for i in range(t)])

    @staticmethod
    def simulate(steps: int = 20, process_scale: float = 1.0, noise_scale: float = 1.0, seed: int = 0):
        """Observations ``y`` of one seeded walk."""
        steps = check_int("steps", steps, minimum=2)
        g = torch.Generator().manual_seed(seed)
        x = torch.cumsum(process_scale * torch.randn(steps, generator=g), 0)
        return (x + noise_scale * torch.randn(steps, generator=g)).to(torch.get_default_dtype())


class CorrelatedGaussian:
    r"""A target with no data: :math:`x \sim \mathcal N(\mu, \Sigma)`.

    Mean field's reverse-KL optimum is :math:`q_i = \mathcal N(\mu_i, 1/\Lambda_{ii})`,
    :math:`\Lambda = \Sigma^{-1}`: each variance is the conditional variance, smaller than
    the marginal :math:`\Sigma_{ii}` whenever coordinates are correlated.

    Args:
        cov: ``(D, D)`` covariance; default 2-D with unit variances and correlation 0.9.
        mean: ``(D,)``; default zeros.
    """

    def __init__(self, cov=None, mean=None):
        cov = torch.tensor([[1.0, 0.9], [0.9, 1.0]]) if cov is None else torch.as_tensor(cov)
        if cov.dim() != 2 or cov.shape[0] != cov.shape[1]:
            raise ValueError(f"cov must be a square matrix; got shape {tuple(cov.shape)}")
        try:
            torch.linalg.cholesky(cov.double())
        except RuntimeError:
            raise ValueError("cov must be symmetric positive definite") from None
        dtype = torch.get_default_dtype()
        self.cov = cov.to(dtype)
        self.mean = torch.zeros(len(cov), dtype=dtype) if mean is None else torch.as_tensor(mean, dtype=dtype)
        if self.mean.shape != (len(cov),):
            raise ValueError(f"mean must have shape ({len(cov)},); got {tuple(self.mean.shape)}")

    def model(self):
        pyro.sample("x", dist.MultivariateNormal(self.mean, covariance_matrix=self.cov))

    def exact_posterior(self) -> GaussianPosterior:
        return GaussianPosterior(self.mean.double(), self.cov.double(), [("x", (len(self.mean),))])

    def meanfield_variances(self) -> torch.Tensor:
        r"""The mean-field (reverse KL) optimum's variances :math:`1/\Lambda_{ii}`."""
        return 1.0 / torch.linalg.inv(self.cov.double()).diagonal()


from .problems import PROBLEMS, BayesProblem, problem  # noqa: E402  (the named problems use the classes above)
