r"""An autoregressive decoder: MADE, and the VAE that uses it.

MADE (Germain, Gregor, Murray & Larochelle 2015, "Masked Autoencoder for Distribution
Estimation") is an MLP whose weight matrices are masked so that output :math:`d` sees
only inputs :math:`x_{<d}`. One pass then gives every conditional of

.. math:: p(x \mid z) = \prod_{d=1}^{D} p(x_d \mid x_{<d}, z),

so the log-likelihood costs one network evaluation and a sample costs :math:`D`. Masks
come from degrees: input :math:`d` has degree :math:`d`; each hidden unit a degree
:math:`m \in \{1, \dots, D-1\}`; a hidden unit sees inputs of degree :math:`\le m`, and
output :math:`d` sees hidden units of degree :math:`< d` (and, through a direct masked
linear path, inputs :math:`j < d`). The context :math:`z` enters every hidden unit and
every output unmasked.

:class:`AutoregressiveVAE` is the VAE of :mod:`pgen.models.vae` with this decoder: the
notes' "really powerful decoder" that can model the data without :math:`z`, so training
tends to drive :math:`\mathrm{KL}(q(z|x)\,\|\,p(z))` to zero (posterior collapse; Bowman
et al. 2016, Chen et al. 2017). ``pgen teach collapse`` shows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from pyro.distributions import TorchDistribution, constraints
from torch import nn
from torch.nn import functional as F

from ..checks import check_choice, check_float, check_int, check_int_tuple
from . import registry
from .nets import ACTIVATIONS
from .protocols import configured
from .vae import VAE

__all__ = ["MADE", "AutoregressiveBernoulli", "AutoregressiveVAE", "order_of"]


class _MaskedLinear(nn.Linear):
    """A linear layer with one of several fixed connectivity masks ``(K, out, in)``."""

    def __init__(self, in_features: int, out_features: int, masks: torch.Tensor, bias: bool = True):
        super().__init__(in_features, out_features, bias=bias)
        masks = masks if masks.dim() == 3 else masks.unsqueeze(0)
        self.register_buffer("masks", masks.to(self.weight.dtype), persistent=False)
        self.which = 0

    @property
    def mask(self) -> torch.Tensor:
        return self.masks[self.which]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


def order_of(dim: int, order: str | Sequence[int], seed: int = 0) -> torch.Tensor:
    """The variables in the order they are generated: ``"natural"`` (0, 1, ..., D-1),
    ``"reverse"``, ``"random"`` (a permutation drawn with ``seed``), or an explicit
    permutation of ``range(dim)``."""
    if isinstance(order, str):
        order = check_choice("order", order, ("natural", "reverse", "random"))
        if order == "natural":
            return torch.arange(dim)
        if order == "reverse":
            return torch.arange(dim - 1, -1, -1)
        return torch.randperm(dim, generator=torch.Generator().manual_seed(seed))
    perm = torch.as_tensor(list(order), dtype=torch.long)
    if perm.shape != (dim,) or not torch.equal(perm.sort().values, torch.arange(dim)):
        raise ValueError(f"order must be a permutation of range({dim}); got {list(order)}")
    return perm


class MADE(nn.Module):
    """Autoregressive outputs of ``x`` given a context ``c``: the outputs of variable
    ``order[t]`` depend on the variables ``order[:t]`` and ``c`` only.

    Args:
        dim: the number of variables D (>= 2).
        hidden: hidden layer widths (each >= D - 1, so every degree has a unit).
        context_dim: the size of the context ``c`` (0 for none).
        activation: hidden activation.
        orders: one or several generation orders (permutations of ``range(dim)``; default:
            the natural order). With several (an order-agnostic ensemble, Germain et al.
            2015, sec. 3.3), the weights are shared and :meth:`use_order` picks the masks.
        classes: outputs per variable: 1 gives ``(..., dim)``, more ``(..., dim, classes)``
            (logits of a categorical per variable).
    """

    def __init__(
        self,
        dim: int,
        hidden: Sequence[int] = (256,),
        context_dim: int = 0,
        activation: str = "relu",
        *,
        orders: Sequence[torch.Tensor] | None = None,
        classes: int = 1,
    ):
        super().__init__()
        self.dim = check_int("dim", dim, minimum=2)
        hidden = check_int_tuple("hidden", hidden)
        if not hidden or min(hidden) < dim - 1:
            raise ValueError(
                f"hidden must have at least one layer, each at least dim - 1 = {dim - 1} wide (one unit "
                f"per degree); got {hidden}"
            )
        self.context_dim = check_int("context_dim", context_dim, minimum=0)
        self.classes = check_int("classes", classes, minimum=1)
        self.act = ACTIVATIONS[check_choice("activation", activation, ACTIVATIONS)]()
        orders = [torch.arange(dim)] if orders is None else [order_of(dim, o) for o in orders]
        self.orders = torch.stack(orders)
        # degree of variable d = its position in the order, 1..D
        degrees_in = torch.stack(
            [torch.empty(dim, dtype=torch.long).scatter_(0, o, torch.arange(1, dim + 1)) for o in orders]
        )
        layers, previous = [], degrees_in
        for width in hidden:
            degrees = (torch.arange(width) % (dim - 1) + 1).expand(len(orders), width)
            layers.append(
                _MaskedLinear(previous.shape[1], width, degrees[:, :, None] >= previous[:, None, :])
            )
            previous = degrees
        self.hidden_layers = nn.ModuleList(layers)
        out_degrees = degrees_in.repeat_interleave(self.classes, dim=1)  # (K, dim * classes)
        self.out = _MaskedLinear(
            previous.shape[1], dim * self.classes, out_degrees[:, :, None] > previous[:, None, :]
        )
        self.direct = _MaskedLinear(
            dim, dim * self.classes, out_degrees[:, :, None] > degrees_in[:, None, :], bias=False
        )
        if self.context_dim:
            self.context_hidden = nn.Linear(self.context_dim, hidden[0])
            self.context_out = nn.Linear(self.context_dim, dim * self.classes)

    @property
    def num_orders(self) -> int:
        return len(self.orders)

    def use_order(self, k: int) -> None:
        """Use the masks of the ``k``-th order from now on."""
        for layer in (*self.hidden_layers, self.out, self.direct):
            layer.which = k

    @property
    def order(self) -> torch.Tensor:
        """The generation order now in use."""
        return self.orders[self.out.which]

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        if (context is None) != (self.context_dim == 0):
            raise ValueError(
                f"this MADE takes a context of size {self.context_dim}; got {context is not None}"
            )
        h = x
        for i, layer in enumerate(self.hidden_layers):
            pre = layer(h)
            if i == 0 and context is not None:
                pre = pre + self.context_hidden(context)
            h = self.act(pre)
        out = self.out(h) + self.direct(x)
        if context is not None:
            out = out + self.context_out(context)
        return out if self.classes == 1 else out.unflatten(-1, (self.dim, self.classes))


class AutoregressiveBernoulli(TorchDistribution):
    r""":math:`p(x \mid c) = \prod_d \mathrm{Bernoulli}(x_d; \sigma(\mathrm{MADE}(x, c)_d))`
    over binary vectors: ``log_prob`` in one pass, ``sample`` in ``dim`` passes.
    Batch shape ``context.shape[:-1]``, event shape ``(dim,)``; not reparameterizable."""

    arg_constraints: dict = {}
    support = constraints.independent(constraints.boolean, 1)
    has_rsample = False

    def __init__(self, made: MADE, context: torch.Tensor, validate_args=None):
        self.made, self.context = made, context
        super().__init__(context.shape[:-1], torch.Size([made.dim]), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        context = self.context.expand(*batch_shape, self.context.shape[-1])
        return AutoregressiveBernoulli(self.made, context, validate_args=False)

    def _context_for(self, x: torch.Tensor):
        shape = torch.broadcast_shapes(x.shape[:-1], self.batch_shape)
        return x.expand(*shape, self.made.dim), self.context.expand(*shape, self.context.shape[-1])

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        x, c = self._context_for(value.to(self.context.dtype))
        logits = self.made(x, c)
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)

    def _ancestral(self, sample_shape=()):
        """One ancestral draw per batch entry, and the probabilities it was drawn with."""
        shape = torch.Size(sample_shape) + self.batch_shape
        c = self.context.expand(*shape, self.context.shape[-1])
        x = torch.zeros(*shape, self.made.dim, dtype=c.dtype, device=c.device)
        probs = torch.zeros_like(x)
        for d in range(self.made.dim):
            p = torch.sigmoid(self.made(x, c)[..., d])
            probs[..., d] = p
            x[..., d] = torch.bernoulli(p)
        return x, probs

    @torch.no_grad()
    def sample(self, sample_shape=()) -> torch.Tensor:
        return self._ancestral(sample_shape)[0]


class _MADEDecoder(nn.Module):
    """``z -> p(x|z)`` with a MADE; the decoder interface of :class:`pgen.models.VAE`."""

    def __init__(self, latent_dim: int, hidden, data_dim: int, activation: str):
        super().__init__()
        self.made = MADE(data_dim, hidden, context_dim=latent_dim, activation=activation)

    def distribution(self, z: torch.Tensor) -> AutoregressiveBernoulli:
        return AutoregressiveBernoulli(self.made, z)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities along one ancestral draw of x given z (the exact mean of
        an autoregressive p(x|z) is intractable; this is what image grids show)."""
        return AutoregressiveBernoulli(self.made, z)._ancestral()[1]


@registry.register("arvae", family="latent")
class AutoregressiveVAE(VAE):
    """A VAE on binary data whose decoder is autoregressive (MADE):
    :math:`p(x|z) = \\prod_d p(x_d | x_{<d}, z)`.

    Everything else (encoder, prior, beta, ``pgen.fit``, evaluation) is the
    :class:`~pgen.models.VAE`'s. ``decode``/``sample(mean=True)`` return the pixel
    probabilities along one ancestral draw per z; generating costs ``data_dim`` decoder
    passes.

    Args:
        data_dim: size of one flattened binary example.
        latent_dim: the dimension of the latent variable z.
        hidden: the encoder's hidden widths.
        made_hidden: the MADE decoder's hidden widths (each >= data_dim - 1).
        beta: the KL weight.
        activation: hidden activation.
        likelihood: ``"bernoulli"``, the only one: the MADE decoder models binary pixels.

    Example:
        >>> m = pgen.models.AutoregressiveVAE(64, latent_dim=8)
        >>> pgen.fit(m.model, m.guide, x, epochs=100)   # KL(q(z|x) || p(z)) -> about 0
    """

    @configured
    def __init__(
        self,
        data_dim: int,
        latent_dim: int = 20,
        hidden: tuple[int, ...] = (400,),
        made_hidden: tuple[int, ...] = (512,),
        beta: float = 1.0,
        activation: Literal["relu", "tanh", "softplus", "elu"] = "relu",
        likelihood: Literal["bernoulli"] = "bernoulli",
    ):
        likelihood = check_choice("likelihood", likelihood, ("bernoulli",))
        super().__init__(
            data_dim, latent_dim, hidden, beta=check_float("beta", beta, positive=True), activation=activation
        )
        made_hidden = check_int_tuple("made_hidden", made_hidden)
        self.decoder = _MADEDecoder(latent_dim, made_hidden, self.data_dim, activation)
