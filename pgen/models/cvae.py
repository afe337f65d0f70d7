r"""The conditional variational autoencoder (Sohn, Lee & Yan 2015), and its deterministic
baseline.

A CVAE models an output :math:`x` given an input (condition) :math:`y`:

.. math::
    z \mid y \sim p_\theta(z \mid y), \qquad x \mid y, z \sim p_\theta(x \mid y, z),

with the amortized guide :math:`q_\phi(z \mid x, y)`. The prior is either the standard
normal (the plain CVAE of Kingma et al. 2014) or a learned
:math:`\mathcal N(\mu_\theta(y), \mathrm{diag}\,\sigma_\theta(y)^2)` (Sohn et al.'s
"conditional prior network"). Training maximizes the conditional ELBO

.. math::
    \log p(x \mid y) \ge \mathbb E_{q(z|x,y)}[\log p(x \mid y, z)]
    - \mathrm{KL}(q(z \mid x, y) \,\|\, p(z \mid y))

through ``pgen.fit``, exactly as for the VAE; only the conditioning changes.

Three tasks decide what :math:`y` and :math:`x` are:

* ``class``: :math:`y` is a class label (one-hot inside the networks), :math:`x` the
  whole image: class-conditional generation.
* ``inpaint``: :math:`y` is the observed part of an image (1, 2 or 3 of its four
  quadrants), :math:`x` the hidden part: in-painting. The observed quadrants are, in
  order, bottom-left, bottom-right, top-left (so 2 observes the bottom half and 3 hides
  only the top-right quadrant). :meth:`CVAE.prepare_data` splits images into
  ``(hidden, observed)``.
* ``vector``: :math:`y` is any real vector of ``cond_dim`` features.

:class:`Baseline` is Sohn et al.'s deterministic network :math:`\hat x = f(y)` trained
by cross-entropy, written as a model with no latent variable,
:math:`x \mid y \sim \mathrm{Bernoulli}(f(y))`, so it trains with ``pgen.fit`` and its
conditional log-likelihood :math:`\log p(x \mid y)` is exact.

References:
    Sohn, Lee & Yan (2015), Learning Structured Output Representation using Deep
    Conditional Generative Models, NeurIPS.
    Kingma, Rezende, Mohamed & Welling (2014), Semi-Supervised Learning with Deep
    Generative Models, NeurIPS.
"""

from __future__ import annotations

from typing import Literal

import pyro
import pyro.distributions as dist
import torch

from ..checks import check_choice, check_int, check_int_tuple
from . import registry
from .conditioning import QUADRANT_ORDER, TASKS, Conditioning, quadrant_mask
from .nets import ACTIVATIONS, MLP, GaussianEncoder
from .protocols import configured
from .vae import _Decoder

__all__ = ["CVAE", "Baseline", "quadrant_mask", "TASKS", "QUADRANT_ORDER"]


def _data_args(x, y):
    """``data_dim``, and ``num_classes`` from integer labels (which must be 0..C-1)."""
    out = {"data_dim": registry.flat_size(x)}
    if y is not None and not torch.as_tensor(y).is_floating_point():
        out["num_classes"] = registry.class_count(y)
    return out


@registry.register("cvae", family="conditional", reads=("data_dim", "num_classes"), data_args=_data_args)
class CVAE(Conditioning):
    """A conditional VAE, p(z|y) p(x|y,z) with the guide q(z|x,y), on MLP networks.

    Args:
        data_dim: pixels of a whole image (or features of x for ``vector``).
        latent_dim: the dimension of the latent variable z.
        hidden: hidden widths of the encoder (and prior network); the decoder mirrors them.
        task: ``class``, ``inpaint`` or ``vector`` (see the module docstring).
        num_classes: labels, for ``class`` (read off the data by the CLI; unused by the
            other tasks).
        cond_dim: features of y, for ``vector``.
        quadrants: observed quadrants, for ``inpaint`` (1, 2 or 3).
        image_shape: ``(rows, cols)`` for ``inpaint`` (default: square).
        mask: ``inpaint``: any observed-pixel mask (``data_dim`` booleans, True where
            observed) instead of ``quadrants``.
        conditional_prior: learn p(z|y) (Sohn et al.'s "conditional prior network"); False
            uses N(0, I). With N(0, I) a class-conditional CVAE puts the class into z and its
            decoder reads it from there, ignoring y, so samples of a class are random digits
            (on mnist5k, 48% of them classified as their class against 90% with the learned
            prior; the README has the measurement).
        likelihood: ``bernoulli`` (binary pixels) or ``gaussian``.
        activation: hidden activation.

    Example:
        >>> x, labels = pgen.data.load("mnist5k", binarize="threshold")
        >>> cvae = pgen.models.CVAE(784, task="inpaint", quadrants=1)
        >>> hidden, observed = cvae.prepare_data(x, labels)
        >>> pgen.fit(cvae.model, cvae.guide, (hidden, observed), epochs=30)
        >>> completions = cvae.complete(x[:8], n=5, seed=0)   # (8, 5, 784)
    """

    @configured
    def __init__(
        self,
        data_dim: int,
        latent_dim: int = 20,
        hidden: tuple[int, ...] = (400,),
        task: Literal["class", "inpaint", "vector"] = "class",
        num_classes: int | None = None,
        cond_dim: int | None = None,
        quadrants: int = 1,
        image_shape: tuple[int, ...] | None = None,
        mask: list[int] | None = None,
        conditional_prior: bool = True,
        likelihood: Literal["bernoulli", "gaussian"] = "bernoulli",
        activation: Literal["relu", "tanh", "softplus", "elu"] = "relu",
    ):
        super().__init__()
        self.register_buffer("_zero", torch.zeros(()), persistent=False)
        cond, target = self._setup_task(data_dim, task, num_classes, cond_dim, quadrants, image_shape, mask)
        latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        hidden = check_int_tuple("hidden", hidden)
        likelihood = check_choice("likelihood", likelihood, ("bernoulli", "gaussian"))
        activation = check_choice("activation", activation, ACTIVATIONS)
        self.latent_dim, self.likelihood = latent_dim, likelihood
        self.conditional_prior = bool(conditional_prior)
        self.encoder = GaussianEncoder(target + cond, hidden, latent_dim, activation)
        self.decoder = _Decoder(
            latent_dim + cond, tuple(reversed(hidden)), target, activation, likelihood, "learned"
        )
        self.prior_net = GaussianEncoder(cond, hidden, latent_dim, activation) if conditional_prior else None

    def prior(self, c: torch.Tensor) -> dist.Distribution:
        """p(z | y) given the conditioning features ``c`` (see :meth:`condition`)."""
        if self.prior_net is None:
            return dist.Normal(self._zero, 1.0).expand([*c.shape[:-1], self.latent_dim]).to_event(1)
        loc, scale = self.prior_net(c)
        return dist.Normal(loc, scale).to_event(1)

    def model(self, x: torch.Tensor | None = None, *, y=None, n: int | None = None) -> torch.Tensor:
        """p(z|y) p(x|y,z). With ``x=None`` it generates one x for each y."""
        count = self._n(x, y)
        if n is not None and n != count:
            raise ValueError(f"n={n} but y has {count} entries; the model draws one x per y")
        pyro.module("cvae_decoder", self.decoder)
        if self.prior_net is not None:
            pyro.module("cvae_prior", self.prior_net)
        c = self.condition(y)
        with pyro.plate("data", count):
            z = pyro.sample("z", self.prior(c))
            return pyro.sample("obs", self.decoder.distribution(_cat(z, c)), obs=x)

    def guide(self, x: torch.Tensor | None = None, *, y=None, n: int | None = None) -> torch.Tensor:
        """q(z | x, y), a diagonal Gaussian from the encoder."""
        if x is None:
            raise ValueError("the guide q(z|x,y) needs x; to generate, call sample(y=...)")
        self._n(x, y)
        pyro.module("cvae_encoder", self.encoder)
        c = self.condition(y)
        with pyro.plate("data", x.shape[0]):
            loc, scale = self.encoder(torch.cat([x.to(c.dtype), c], dim=-1))
            return pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    # ---------------------------------------------------------------- helpers

    @torch.no_grad()
    def encode(self, x: torch.Tensor, y) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation of q(z | x, y)."""
        c = self.condition(y)
        return self.encoder(torch.cat([torch.as_tensor(x).to(c.dtype), c], dim=-1))

    @torch.no_grad()
    def sample(self, n: int = 1, *, y, seed: int | None = None, mean: bool = True) -> torch.Tensor:
        """Draw ``n`` outputs for each condition in ``y``: ``z ~ p(z|y)``, then the mean
        of p(x|y,z) (``mean=True``, what image grids show) or a draw from it.

        Returns:
            ``(len(y), n, target_dim)``.
        """
        num = check_int("n", n, minimum=1)
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(check_int("seed", seed, minimum=0))
            c = self.condition(y).unsqueeze(-2).expand(-1, num, -1)
            z = self.prior(c).sample()
            if mean:
                return self.decoder.mean(_cat(z, c))
            return self.decoder.distribution(_cat(z, c)).sample()

    @torch.no_grad()
    def complete(self, images: torch.Tensor, *, n: int = 5, seed: int | None = None) -> torch.Tensor:
        """``inpaint``: ``n`` completions of each image's hidden quadrants from its
        observed ones (the observed pixels are kept; the hidden ones are the decoder's
        means).

        Returns:
            ``(len(images), n, data_dim)``.
        """
        _, observed = self.split(images)
        hidden = self.sample(n, y=observed, seed=seed)
        return self.merge(hidden, observed.unsqueeze(-2))


def _cat(z, c):
    return torch.cat([z, c.to(z.dtype).expand(*z.shape[:-1], c.shape[-1])], dim=-1)


@registry.register(
    "cvae_baseline", family="conditional", reads=("data_dim", "num_classes"), data_args=_data_args
)
class Baseline(Conditioning):
    r"""Sohn et al.'s deterministic baseline: :math:`x \mid y \sim \mathrm{Bernoulli}(f(y))`
    with an MLP :math:`f`, no latent variable (its guide is empty), so the conditional
    log-likelihood is exact and maximum likelihood is cross-entropy training.

    Args:
        data_dim: pixels of a whole image (or features of x for ``vector``).
        hidden: hidden widths of the network f.
        task: ``class``, ``inpaint`` or ``vector`` (as for the CVAE).
        num_classes: labels, for ``class`` (read off the data by the CLI).
        cond_dim: features of y, for ``vector``.
        quadrants: observed quadrants, for ``inpaint`` (1, 2 or 3).
        image_shape: ``(rows, cols)`` for ``inpaint`` (default: square).
        mask: ``inpaint``: any observed-pixel mask instead of ``quadrants``.
        activation: hidden activation.
    """

    likelihood = "bernoulli"
    stochastic = False

    @configured
    def __init__(
        self,
        data_dim: int,
        hidden: tuple[int, ...] = (400, 400),
        task: Literal["class", "inpaint", "vector"] = "inpaint",
        num_classes: int | None = None,
        cond_dim: int | None = None,
        quadrants: int = 1,
        image_shape: tuple[int, ...] | None = None,
        mask: list[int] | None = None,
        activation: Literal["relu", "tanh", "softplus", "elu"] = "relu",
    ):
        super().__init__()
        self.register_buffer("_zero", torch.zeros(()), persistent=False)
        cond, target = self._setup_task(data_dim, task, num_classes, cond_dim, quadrants, image_shape, mask)
        hidden = check_int_tuple("hidden", hidden)
        activation = check_choice("activation", activation, ACTIVATIONS)
        self.net = MLP(cond, hidden, target, activation)

    def model(self, x: torch.Tensor | None = None, *, y=None, n: int | None = None) -> torch.Tensor:
        """p(x | y) = Bernoulli(sigmoid(f(y)))."""
        count = self._n(x, y)
        pyro.module("cvae_baseline", self.net)
        logits = self.net(self.condition(y))
        with pyro.plate("data", count):
            return pyro.sample("obs", dist.Bernoulli(logits=logits).to_event(1), obs=x)

    def guide(self, x: torch.Tensor | None = None, *, y=None, n: int | None = None) -> None:
        """No latent variables: nothing to infer."""
        return None

    @torch.no_grad()
    def predict(self, y) -> torch.Tensor:
        """The pixel probabilities f(y), ``(len(y), target_dim)``."""
        return torch.sigmoid(self.net(self.condition(y)))

    @torch.no_grad()
    def sample(self, n: int = 1, *, y, seed: int | None = None, mean: bool = True) -> torch.Tensor:
        """The deterministic prediction f(y), repeated ``n`` times (``mean=True``), or
        ``n`` Bernoulli draws from it, ``(len(y), n, target_dim)``."""
        num = check_int("n", n, minimum=1)
        probs = self.predict(y).unsqueeze(-2).expand(-1, num, -1)
        if mean:
            return probs
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(check_int("seed", seed, minimum=0))
            return torch.bernoulli(probs)

    @torch.no_grad()
    def complete(self, images: torch.Tensor, *, n: int = 1, seed: int | None = None) -> torch.Tensor:
        """``inpaint``: the (single, deterministic) completion, repeated ``n`` times."""
        _, observed = self.split(images)
        return self.merge(self.sample(n, y=observed), observed.unsqueeze(-2))
