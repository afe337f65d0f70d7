r"""The semi-supervised VAE, model M2 of Kingma, Rezende, Mohamed & Welling (2014).

Generative model, with a uniform class prior:

.. math::
    y \sim \mathrm{Cat}(1/C), \quad z \sim \mathcal N(0, I), \quad
    x \mid y, z \sim \mathrm{Bernoulli}(\mathrm{sigmoid}(f_\theta(y, z))).

Guide: :math:`q_\phi(y \mid x) = \mathrm{Cat}(\pi_\phi(x))` (the classifier) and
:math:`q_\phi(z \mid x, y) = \mathcal N(\mu_\phi(x, y), \mathrm{diag}\,\sigma_\phi(x, y)^2)`.

A labelled example contributes the bound on :math:`\log p(x, y)`,

.. math::
    -\mathcal L(x, y) = \mathbb E_{q(z|x,y)}[\log p(x|y,z) + \log p(y) + \log p(z)
    - \log q(z|x,y)],

an unlabelled one the bound on :math:`\log p(x)` with :math:`y` summed out exactly,

.. math::
    -\mathcal U(x) = \sum_y q(y \mid x)\,(-\mathcal L(x, y)) + \mathcal H(q(y \mid x)),

and the classifier, which the bound alone trains only through unlabelled data, gets
Kingma et al.'s auxiliary term :math:`\alpha \log q(y \mid x)` on labelled examples
(their eq. 9).

In Pyro, ``y`` is one site for the whole minibatch: latent (masked out of the model's
density) where the label is missing, observed through a second site where it is known.
The guide's ``y`` carries ``infer={"enumerate": "parallel"}``, so ``pgen.fit(...,
objective="enum")`` (Pyro's ``TraceEnum_ELBO``) sums it out over the C classes in one
batched pass instead of sampling it. For a labelled row the guide's enumerated ``y``
does not reach the rest of the model (the known label is used), so the sum over it
weights identical terms by :math:`q(y|x)`, which sum to one; what remains is the
guide's entropy :math:`\mathcal H(q(y|x))`, which a labelled bound must not contain,
and the model's ``classifier`` factor subtracts it (value and gradient). Labels are
integers, ``-1`` where missing.

References:
    Kingma, Rezende, Mohamed & Welling (2014), Semi-Supervised Learning with Deep
    Generative Models, NeurIPS.
"""

from __future__ import annotations

from typing import Literal

import pyro
import pyro.distributions as dist
import torch
from torch import nn
from torch.nn import functional as F

from ..checks import check_choice, check_float, check_int, check_int_tuple
from ..data.validate import check_data, check_same_length, check_unit_interval
from . import registry
from .nets import ACTIVATIONS, MLP, GaussianEncoder
from .protocols import SemiSupervisedModel, configured
from .vae import _Decoder

__all__ = ["SSVAE", "Classifier", "hide_labels", "UNLABELLED"]

UNLABELLED = -1


def hide_labels(y: torch.Tensor, keep: int, *, num_classes: int, seed: int = 0) -> torch.Tensor:
    """Keep ``keep`` labels, as balanced over the classes as possible (``keep //
    num_classes`` of each, the remainder to the first classes), chosen with ``seed``;
    the rest become :data:`UNLABELLED`."""
    y = torch.as_tensor(y)
    keep = check_int("labels", keep, minimum=num_classes)
    if keep > len(y):
        raise ValueError(f"labels={keep} but there are only {len(y)} examples")
    g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    out = torch.full_like(y, UNLABELLED)
    for c in range(num_classes):
        want = keep // num_classes + (1 if c < keep % num_classes else 0)
        idx = torch.nonzero(y == c).squeeze(-1)
        if len(idx) < want:
            raise ValueError(f"labels={keep} asks for {want} examples of class {c}, which has {len(idx)}")
        chosen = idx[torch.randperm(len(idx), generator=g)[:want]]
        out[chosen] = c
    return out


def _data_args(x, y):
    out = {"data_dim": registry.flat_size(x)}
    if y is not None:
        out["num_classes"] = registry.class_count(y)
    return out


@registry.register("ssvae", family="semisupervised", reads=("data_dim", "num_classes"), data_args=_data_args)
class SSVAE(SemiSupervisedModel, nn.Module):
    """The semi-supervised VAE (M2): its latent state is a class y, summed out when unlabelled, and z.

    Args:
        data_dim: pixels of an image.
        num_classes: C, the number of classes.
        latent_dim: the dimension of the latent variable z.
        hidden: hidden widths of the classifier and encoder; the decoder mirrors them.
        aux_weight: alpha, the weight of the classification term log q(y|x) on labelled
            examples (Kingma et al. use 0.1 N for a bound summed over N examples).
        labels: run folders only: how many training labels to keep (balanced over the
            classes, chosen with ``label_seed``); ``None`` keeps them all.
        label_seed: seed of that choice.
        activation: hidden activation.

    Train with ``objective="enum"``:

    Example:
        >>> x, y = pgen.data.load("mnist5k", binarize="threshold")
        >>> m = pgen.models.SSVAE(784, 10)
        >>> y_few = pgen.models.ssvae.hide_labels(y, 100, num_classes=10)
        >>> pgen.fit(m.model, m.guide, (x, y_few), objective="enum", epochs=50)
        >>> (m.classify(x_test) == y_test).float().mean()
    """

    @configured
    def __init__(
        self,
        data_dim: int,
        num_classes: int = 10,
        latent_dim: int = 20,
        hidden: tuple[int, ...] = (400,),
        aux_weight: float = 50.0,
        labels: int | None = None,
        label_seed: int = 0,
        activation: Literal["relu", "tanh", "softplus", "elu"] = "relu",
    ):
        super().__init__()
        data_dim = check_int("data_dim", data_dim, minimum=1)
        num_classes = check_int("num_classes", num_classes, minimum=2)
        latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        hidden = check_int_tuple("hidden", hidden)
        aux_weight = check_float("aux_weight", aux_weight, nonnegative=True)
        if labels is not None:
            labels = check_int("labels", labels, minimum=num_classes)
        activation = check_choice("activation", activation, ACTIVATIONS)
        self.data_dim, self.num_classes, self.latent_dim = data_dim, num_classes, latent_dim
        self.aux_weight, self.likelihood = aux_weight, "bernoulli"
        self.classifier = MLP(data_dim, hidden, num_classes, activation)
        self.encoder = GaussianEncoder(data_dim + num_classes, hidden, latent_dim, activation)
        self.decoder = _Decoder(
            latent_dim + num_classes, tuple(reversed(hidden)), data_dim, activation, "bernoulli", "learned"
        )
        self.register_buffer("_zero", torch.zeros(()), persistent=False)

    @property
    def event_shape(self) -> tuple[int, ...]:
        return (self.data_dim,)

    def _labels(self, y, n: int) -> torch.Tensor:
        if y is None:
            return torch.full((n,), UNLABELLED, dtype=torch.long, device=self._zero.device)
        y = torch.as_tensor(y)
        if y.is_floating_point() or y.dtype == torch.bool or y.dim() != 1:
            raise ValueError(
                f"y must be 1-D integer labels (-1 = unlabelled), got {y.dtype} {tuple(y.shape)}"
            )
        if len(y) != n:
            raise ValueError(f"y has {len(y)} labels but there are {n} examples")
        bad = (y < UNLABELLED) | (y >= self.num_classes)
        if bool(bad.any()):
            i = int(torch.nonzero(bad)[0])
            raise ValueError(
                f"y has {int(bad.sum())} label(s) outside [0, {self.num_classes - 1}] (or -1 for "
                f"unlabelled); the first is y[{i}] = {int(y[i])}"
            )
        return y.long()

    def validate_data(self, x: torch.Tensor, y=None, *, name: str = "x") -> None:
        """Binary images and labels in ``[-1, C)``."""
        x = check_data(x, name=name, event_shape=self.event_shape)
        check_unit_interval(x, name=name, binary=True)
        if y is not None:
            check_same_length(x=x, y=y)
            self._labels(y, len(x))

    def prepare_data(self, x, y=None, *, train: bool = True):
        """For run folders: keep ``labels`` of the training labels (see :func:`hide_labels`);
        other splits are evaluated unlabelled, as a bound on log p(x)."""
        if not train:
            return x, None if y is None else torch.full_like(y, UNLABELLED)
        if self.config["labels"] is None or y is None:
            return x, y
        return x, hide_labels(
            y, self.config["labels"], num_classes=self.num_classes, seed=self.config["label_seed"]
        )

    def _one_hot(self, y):
        return F.one_hot(y, self.num_classes).to(self._zero.dtype)

    def model(self, x: torch.Tensor | None = None, *, y=None, n: int | None = None) -> torch.Tensor:
        """p(y) p(z) p(x|y,z); ``y``: labels, -1 where missing. With ``x=None`` it
        generates ``n`` examples (of the given classes where ``y`` is given)."""
        if x is not None:
            n = x.shape[0]
        elif y is not None:
            n = len(y)
        else:
            n = 1 if n is None else check_int("n", n, minimum=1)
        labels = self._labels(y, n)
        known = labels >= 0
        pyro.module("ssvae_decoder", self.decoder)
        prior_y = dist.Categorical(logits=self._zero.new_zeros(self.num_classes))
        with pyro.plate("data", n):
            y_missing = pyro.sample("y", prior_y.mask(~known))
            pyro.sample("y_known", prior_y.mask(known), obs=labels.clamp(min=0))
            y_all = torch.where(known, labels, y_missing)
            z = pyro.sample("z", dist.Normal(self._zero, 1.0).expand([self.latent_dim]).to_event(1))
            h = torch.cat([z, self._one_hot(y_all).expand(*z.shape[:-1], self.num_classes)], dim=-1)
            if x is not None and bool(known.any()):
                log_q = F.log_softmax(self.classifier(x), dim=-1)
                entropy = -(log_q.exp() * log_q).sum(-1)
                picked = log_q.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
                pyro.factor("classifier", torch.where(known, self.aux_weight * picked - entropy, 0.0))
            return pyro.sample("obs", self.decoder.distribution(h), obs=x)

    def guide(self, x: torch.Tensor | None = None, *, y=None, n: int | None = None) -> None:
        """q(y|x) (enumerated) for the missing labels, then q(z|x,y)."""
        if x is None:
            raise ValueError("the guide needs x; to generate, call model(n=...) or sample()")
        labels = self._labels(y, x.shape[0])
        known = labels >= 0
        pyro.module("ssvae_classifier", self.classifier)
        pyro.module("ssvae_encoder", self.encoder)
        with pyro.plate("data", x.shape[0]):
            y_missing = pyro.sample(
                "y", dist.Categorical(logits=self.classifier(x)), infer={"enumerate": "parallel"}
            )
            y_all = torch.where(known, labels, y_missing)
            onehot = self._one_hot(y_all)
            loc, scale = self.encoder(torch.cat([x.expand(*onehot.shape[:-1], x.shape[-1]), onehot], -1))
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    # ---------------------------------------------------------------- helpers

    @torch.no_grad()
    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """The most probable class under q(y|x)."""
        return self.classifier(torch.as_tensor(x, dtype=self._zero.dtype)).argmax(-1)

    @torch.no_grad()
    def sample(self, n: int, *, y=None, seed: int | None = None, mean: bool = True) -> torch.Tensor:
        """``n`` images (of class ``y``, an int or ``n`` labels; random classes if None)."""
        n = check_int("n", n, minimum=1)
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(check_int("seed", seed, minimum=0))
            if y is None:
                y = torch.randint(self.num_classes, (n,))
            y = self._labels(torch.as_tensor(y).expand(n) if torch.as_tensor(y).dim() == 0 else y, n)
            if bool((y < 0).any()):
                raise ValueError("sample needs class labels, not -1")
            z = torch.randn(n, self.latent_dim, dtype=self._zero.dtype)
            h = torch.cat([z, self._one_hot(y)], -1)
            return self.decoder.mean(h) if mean else self.decoder.distribution(h).sample()


class Classifier(nn.Module):
    r"""The supervised comparison: :math:`y \mid x \sim \mathrm{Cat}(\mathrm{softmax}(g(x)))`
    with the same MLP as the SSVAE's classifier, fitted by maximum likelihood through
    ``pgen.fit`` on the labelled examples alone (no latent variables; empty guide).

    Args:
        data_dim, num_classes, hidden, activation: as :class:`SSVAE`.
    """

    def __init__(
        self, data_dim: int, num_classes: int = 10, hidden: tuple[int, ...] = (400,), activation="relu"
    ):
        super().__init__()
        self.num_classes = check_int("num_classes", num_classes, minimum=2)
        self.net = MLP(
            check_int("data_dim", data_dim, minimum=1),
            check_int_tuple("hidden", hidden),
            num_classes,
            activation,
        )

    def model(self, x: torch.Tensor, *, y=None) -> torch.Tensor:
        pyro.module("classifier", self.net)
        with pyro.plate("data", x.shape[0]):
            return pyro.sample("obs", dist.Categorical(logits=self.net(x)), obs=y)

    def guide(self, x: torch.Tensor, *, y=None) -> None:
        return None

    @torch.no_grad()
    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).argmax(-1)
