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

import math
from typing import Literal

import pyro
import pyro.distributions as dist
import torch
from torch import nn
from torch.nn import functional as F

from ..checks import check_choice, check_int, check_int_tuple
from ..data.validate import check_data, check_labels, check_same_length, check_unit_interval
from . import registry
from .nets import ACTIVATIONS, MLP, GaussianEncoder
from .vae import _Decoder

__all__ = ["CVAE", "Baseline", "quadrant_mask", "TASKS", "QUADRANT_ORDER"]

TASKS = ("class", "inpaint", "vector")
QUADRANT_ORDER = ("bottom-left", "bottom-right", "top-left", "top-right")


def quadrant_mask(image_shape: tuple[int, int], quadrants: int) -> torch.Tensor:
    """Boolean mask over the flattened pixels, ``True`` where observed.

    Args:
        image_shape: ``(rows, cols)``, both even.
        quadrants: how many quadrants are observed (1, 2 or 3), taken in the order of
            :data:`QUADRANT_ORDER`.
    """
    rows, cols = (check_int("image_shape", s, minimum=2) for s in image_shape)
    if rows % 2 or cols % 2:
        raise ValueError(f"image_shape must have even sides to split into quadrants, got {(rows, cols)}")
    quadrants = check_int("quadrants", quadrants, minimum=1)
    if quadrants > 3:
        raise ValueError(
            f"quadrants must be 1, 2 or 3 (observing all 4 leaves nothing to in-paint), got {quadrants}"
        )
    mask = torch.zeros(rows, cols, dtype=torch.bool)
    h, w = rows // 2, cols // 2
    blocks = {
        "bottom-left": (slice(h, rows), slice(0, w)),
        "bottom-right": (slice(h, rows), slice(w, cols)),
        "top-left": (slice(0, h), slice(0, w)),
    }
    for name in QUADRANT_ORDER[:quadrants]:
        mask[blocks[name]] = True
    return mask.reshape(-1)


def _check_mask(mask, data_dim: int) -> torch.Tensor:
    """A user's observed-pixel mask: ``data_dim`` booleans (or 0/1), some observed and
    some hidden."""
    mask = torch.as_tensor(mask)
    if mask.dtype != torch.bool:
        if mask.is_floating_point() or not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError("mask must hold booleans (or 0/1): True where a pixel is observed")
        mask = mask.bool()
    if mask.shape != (data_dim,):
        raise ValueError(f"mask has shape {tuple(mask.shape)}; expected ({data_dim},), one entry per pixel")
    if bool(mask.all()):
        raise ValueError("mask observes every pixel: nothing is left to in-paint")
    if not bool(mask.any()):
        raise ValueError("mask hides every pixel: there is nothing to condition on (that is a plain VAE)")
    return mask


class _Conditioning(nn.Module):
    """What a task's ``y`` becomes inside the networks, and how images split into
    ``(x, y)``. Shared by :class:`CVAE` and :class:`Baseline`."""

    conditional = True  # their likelihood is log p(x | y)

    def _setup_task(self, data_dim, task, num_classes, cond_dim, quadrants, image_shape, mask=None):
        self.task = check_choice("task", task, TASKS)
        data_dim = check_int("data_dim", data_dim, minimum=1)
        self.num_classes = None
        self.image_shape = None
        if task == "class":
            if num_classes is None:
                raise ValueError("task='class' needs num_classes (the number of labels)")
            self.num_classes = check_int("num_classes", num_classes, minimum=2)
            cond, target = self.num_classes, data_dim
            self.register_buffer("mask", torch.zeros(0, dtype=torch.bool), persistent=False)
        elif task == "inpaint":
            if image_shape is None:
                side = math.isqrt(data_dim)
                if side * side != data_dim:
                    raise ValueError(
                        f"data_dim={data_dim} is not a square image; pass image_shape=(rows, cols)"
                    )
                image_shape = (side, side)
            self.image_shape = tuple(check_int_tuple("image_shape", image_shape))
            if len(self.image_shape) != 2 or self.image_shape[0] * self.image_shape[1] != data_dim:
                raise ValueError(f"image_shape {image_shape} does not hold data_dim={data_dim} pixels")
            if mask is None:
                mask = quadrant_mask(self.image_shape, quadrants)
            else:
                mask = _check_mask(mask, data_dim)
            self.register_buffer("mask", mask, persistent=False)
            cond = int(self.mask.sum())
            target = data_dim - cond
        else:
            if cond_dim is None:
                raise ValueError("task='vector' needs cond_dim (the number of features of y)")
            cond, target = check_int("cond_dim", cond_dim, minimum=1), data_dim
            self.register_buffer("mask", torch.zeros(0, dtype=torch.bool), persistent=False)
        self.data_dim, self.cond_dim, self.target_dim = data_dim, cond, target
        self.task_config = {
            "data_dim": data_dim,
            "task": task,
            "num_classes": self.num_classes if task == "class" else num_classes,
            "cond_dim": cond_dim,
            "quadrants": int(quadrants),
            "image_shape": None if image_shape is None else list(image_shape),
            "mask": None if mask is None else self.mask.int().tolist(),
        }
        return cond, target

    @property
    def event_shape(self) -> tuple[int, ...]:
        """The shape of one output ``x``: the hidden pixels for ``inpaint``."""
        return (self.target_dim,)

    def condition(self, y: torch.Tensor) -> torch.Tensor:
        """``y`` as the networks see it: one-hot labels, or the features as floats."""
        if self.task == "class":
            y = check_labels(y, name="y", num_classes=self.num_classes)
            return F.one_hot(y, self.num_classes).to(self._zero.dtype)
        y = torch.as_tensor(y)
        if y.dim() < 1 or y.shape[-1] != self.cond_dim:
            what = "observed pixels" if self.task == "inpaint" else "features"
            raise ValueError(f"y has shape {tuple(y.shape)}; expected (..., {self.cond_dim}) {what}")
        return y.to(self._zero.dtype)

    def prepare_data(self, images: torch.Tensor, labels: torch.Tensor | None = None, *, train: bool = True):
        """``(x, y)`` for this task from a dataset's ``(images, labels)``: the labels
        for ``class``, ``(hidden pixels, observed pixels)`` for ``inpaint``. Every split
        (``train`` or not) is prepared alike."""
        if self.task == "class":
            if labels is None:
                raise ValueError("task='class' needs the labels of the images")
            return images, labels
        if self.task == "inpaint":
            return self.split(images)
        if labels is None:
            raise ValueError("task='vector' needs the condition vectors y")
        return images, labels

    def split(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``inpaint``: flattened images ``(n, data_dim)`` -> ``(hidden, observed)``."""
        self._need_inpaint("split")
        images = torch.as_tensor(images)
        if images.shape[-1] != self.data_dim:
            raise ValueError(f"images have shape {tuple(images.shape)}; expected (..., {self.data_dim})")
        return images[..., ~self.mask], images[..., self.mask]

    def merge(self, hidden: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """``inpaint``: put hidden and observed pixels back into flattened images."""
        self._need_inpaint("merge")
        shape = torch.broadcast_shapes(hidden.shape[:-1], observed.shape[:-1])
        out = hidden.new_zeros(*shape, self.data_dim)
        out[..., ~self.mask] = hidden
        out[..., self.mask] = observed.to(hidden.dtype)
        return out

    def _need_inpaint(self, what):
        if self.task != "inpaint":
            raise ValueError(f"{what} is for task='inpaint'; this model's task is {self.task!r}")

    def validate_data(self, x: torch.Tensor, y=None, *, name: str = "x") -> None:
        """Raise ``ValueError`` if ``(x, y)`` is not data this model can fit."""
        x = check_data(x, name=name, event_shape=self.event_shape)
        if self.likelihood == "bernoulli":
            check_unit_interval(x, name=name, binary=True)
        if y is None:
            raise ValueError(f"{type(self).__name__} is conditional: fit it on (x, y) pairs, got no y")
        if self.task == "class":
            check_labels(y, name="y", num_classes=self.num_classes, n=len(x))
        else:
            y = check_data(y, name="y", event_shape=(self.cond_dim,))
            check_same_length(x=x, y=y)

    def _n(self, x, y):
        if y is None:
            raise ValueError(f"{type(self).__name__}.model needs y, the condition (it is p(x | y))")
        n = len(y)
        if x is not None and x.shape[0] != n:
            raise ValueError(f"x has {x.shape[0]} examples but y has {n}")
        return n


@registry.register(
    "cvae",
    data_args=lambda x, y: {
        "data_dim": int(x[0].numel()),
        **({"num_classes": int(y.max()) + 1} if y is not None and not y.is_floating_point() else {}),
    },
)
class CVAE(_Conditioning):
    """A conditional VAE: p(z|y) p(x|y,z) with the guide q(z|x,y); MLP networks.

    Args:
        data_dim: pixels of a whole image (or features of x for ``vector``).
        latent_dim: size of z.
        hidden: hidden widths of the encoder (and prior network); the decoder mirrors them.
        task: ``class``, ``inpaint`` or ``vector`` (see the module docstring).
        num_classes: labels, for ``class`` (read off the data by the CLI; unused by the
            other tasks).
        cond_dim: features of y, for ``vector``.
        quadrants: observed quadrants, for ``inpaint`` (1, 2 or 3).
        image_shape: ``(rows, cols)`` for ``inpaint`` (default: square).
        mask: ``inpaint``: any observed-pixel mask (``data_dim`` booleans, True where
            observed) instead of ``quadrants``.
        conditional_prior: learn p(z|y) (Sohn et al.) instead of N(0, I).
        likelihood: ``bernoulli`` (binary pixels) or ``gaussian``.
        activation: hidden activation.

    Example:
        >>> x, labels = pgen.data.load("mnist5k", binarize="threshold")
        >>> cvae = pgen.models.CVAE(784, task="inpaint", quadrants=1)
        >>> hidden, observed = cvae.prepare_data(x, labels)
        >>> pgen.fit(cvae.model, cvae.guide, (hidden, observed), epochs=30)
        >>> completions = cvae.complete(x[:8], num=5, seed=0)   # (8, 5, 784)
    """

    uses_labels = True

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
        conditional_prior: bool = False,
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
        self.config = {
            **self.task_config,
            "latent_dim": latent_dim,
            "hidden": list(hidden),
            "conditional_prior": bool(conditional_prior),
            "likelihood": likelihood,
            "activation": activation,
        }
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
    def sample(self, y, *, num: int = 1, seed: int | None = None, mean: bool = True) -> torch.Tensor:
        """Draw ``num`` outputs for each condition: ``z ~ p(z|y)``, then the mean of
        p(x|y,z) (``mean=True``, what image grids show) or a draw from it.

        Returns:
            ``(len(y), num, target_dim)``.
        """
        num = check_int("num", num, minimum=1)
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(check_int("seed", seed, minimum=0))
            c = self.condition(y).unsqueeze(-2).expand(-1, num, -1)
            z = self.prior(c).sample()
            if mean:
                return self.decoder.mean(_cat(z, c))
            return self.decoder.distribution(_cat(z, c)).sample()

    @torch.no_grad()
    def complete(self, images: torch.Tensor, *, num: int = 5, seed: int | None = None) -> torch.Tensor:
        """``inpaint``: ``num`` completions of each image's hidden quadrants from its
        observed ones (the observed pixels are kept; the hidden ones are the decoder's
        means).

        Returns:
            ``(len(images), num, data_dim)``.
        """
        _, observed = self.split(images)
        hidden = self.sample(observed, num=num, seed=seed)
        return self.merge(hidden, observed.unsqueeze(-2))


def _cat(z, c):
    return torch.cat([z, c.to(z.dtype).expand(*z.shape[:-1], c.shape[-1])], dim=-1)


@registry.register(
    "cvae_baseline",
    data_args=lambda x, y: {
        "data_dim": int(x[0].numel()),
        **({"num_classes": int(y.max()) + 1} if y is not None and not y.is_floating_point() else {}),
    },
)
class Baseline(_Conditioning):
    r"""Sohn et al.'s deterministic baseline: :math:`x \mid y \sim \mathrm{Bernoulli}(f(y))`
    with an MLP :math:`f`, no latent variable (its guide is empty), so the conditional
    log-likelihood is exact and maximum likelihood is cross-entropy training.

    Args: as :class:`CVAE`, without the latent ones.
    """

    uses_labels = True
    likelihood = "bernoulli"

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
        self.config = {**self.task_config, "hidden": list(hidden), "activation": activation}
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
    def sample(self, y, *, num: int = 1, seed: int | None = None, mean: bool = True) -> torch.Tensor:
        """The deterministic prediction f(y) (``mean=True``), or ``num`` Bernoulli draws
        from it, ``(len(y), num, target_dim)``."""
        num = check_int("num", num, minimum=1)
        probs = self.predict(y).unsqueeze(-2).expand(-1, num, -1)
        if mean:
            return probs
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(check_int("seed", seed, minimum=0))
            return torch.bernoulli(probs)

    @torch.no_grad()
    def complete(self, images: torch.Tensor, *, num: int = 1, seed: int | None = None) -> torch.Tensor:
        """``inpaint``: the (single, deterministic) completion, repeated ``num`` times."""
        _, observed = self.split(images)
        return self.merge(self.sample(observed, num=num), observed.unsqueeze(-2))
