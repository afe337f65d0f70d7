r"""Autoregressive models with an exact likelihood: MADE and PixelCNN.

Both factor the probability of one example of :math:`D` discrete values in a fixed
order,

.. math:: P(k) = \prod_{t=1}^{D} P(k_{o_t} \mid k_{o_1}, \dots, k_{o_{t-1}}),

computed for all :math:`t` in **one** network pass (masks keep each output from seeing
its own value and the ones after it), and sampled in :math:`D` passes, one value at a
time (the notes' sequential-generation cost). Each conditional is a categorical over
the ``levels`` values of a pixel (a Bernoulli for binary data, ``levels=2``).

* :class:`MADEDensity` (``pgen train made``): the masked autoencoder of Germain, Gregor,
  Murray & Larochelle (2015) on flattened data, in a chosen order (natural, reverse,
  random), or an order-agnostic ensemble of several orders sharing the weights, whose
  likelihood is the mixture :math:`\frac1K \sum_k P_k(x)` (exact: log-mean-exp over the
  orders).
* :class:`PixelCNN` (``pgen train pixelcnn``): gated PixelCNN (van den Oord,
  Kalchbrenner, Vinyals, Espeholt, Graves & Kavukcuoglu 2016, "Conditional image
  generation with PixelCNN decoders") in raster order, with a vertical stack (the rows
  above) and a horizontal stack (the pixels to the left in the row), so its receptive
  field has no blind spot, and gated units :math:`\tanh(W_f * v) \odot \sigma(W_g * v)`.

**Data.** Binary images (``--binarize threshold|static|dynamic``) are modelled as they
are, and :math:`\log P(x)` is the likelihood. Grey levels come dequantized
(``--binarize dequantize``, the default, as for flows): :math:`\tilde x = (k + u)/L`; the
model reads :math:`k = \lfloor L \tilde x \rfloor` and its density on :math:`[0, 1)^D` is
the piecewise-constant :math:`p(\tilde x) = P(k) L^D`, so its "log-likelihood" is on the
scale of every continuous model on dequantized data, and bits/dim
(:func:`pgen.eval.bits_per_dim` with ``levels``) is :math:`-\log_2 P(k) / D` (the
dequantization bound is tight for such a density: Theis et al. 2016).
"""

from __future__ import annotations

import math

import torch
from pyro.distributions import TorchDistribution, constraints
from torch import nn
from torch.nn import functional as F

from .. import rng
from ..checks import check_choice, check_int, check_int_tuple
from ..data.validate import check_data
from . import registry
from .flows import ObservedOnly
from .made import MADE, order_of
from .protocols import ExactLikelihoodModel, configured

__all__ = ["DiscreteAutoregressive", "MADEDensity", "PixelCNN", "levels_of"]


def levels_of(x: torch.Tensor) -> int:
    """The number of evenly spaced values ``k / (L - 1)`` in ``x`` (2 for binary data):
    ``L - 1`` is one over the smallest gap between distinct values."""
    values = torch.unique(x.reshape(-1).float())
    if len(values) < 2:
        return 2
    gap = float((values[1:] - values[:-1]).min())
    return max(2, int(round(1.0 / gap)) + 1)


class _Density(TorchDistribution):
    """A model's exact ``log_prob``/``sample`` as the distribution of one example."""

    arg_constraints: dict = {}
    support = constraints.independent(constraints.unit_interval, 1)
    has_rsample = False

    def __init__(self, owner: DiscreteAutoregressive, batch_shape=()):
        self.owner = owner
        super().__init__(torch.Size(batch_shape), torch.Size(owner.event_shape), validate_args=False)

    def expand(self, batch_shape, _instance=None):
        return _Density(self.owner, batch_shape)

    def log_prob(self, x):
        lp = self.owner.log_prob(x)
        return lp.expand(torch.broadcast_shapes(lp.shape, self.batch_shape))

    @torch.no_grad()
    def sample(self, sample_shape=()):
        shape = torch.Size(sample_shape) + self.batch_shape
        return self.owner._draw(max(1, math.prod(shape))).reshape(*shape, *self.event_shape)


class DiscreteAutoregressive(ObservedOnly, ExactLikelihoodModel, nn.Module):
    """What MADE and PixelCNN share: the data as levels, the exact log-likelihood from
    one pass of :meth:`logits`, sequential sampling and completion (module docstring).

    Subclasses give :meth:`logits` (``(N, D, levels)`` from levels ``(N, D)``) and
    :attr:`order` (the generation order, a permutation of ``range(D)``)."""

    pyro_name = "autoregressive"

    def __init__(self, data_dim: int, levels: int):
        super().__init__()
        self.data_dim = check_int("data_dim", data_dim, minimum=2)
        self.levels = check_int("levels", levels, minimum=2)

    @property
    def event_shape(self) -> tuple[int, ...]:
        return (self.data_dim,)

    @property
    def dequantized(self) -> bool:
        """Grey levels arrive dequantized, ``(k + u) / levels``; binary data as is."""
        return self.levels > 2

    def to_levels(self, x: torch.Tensor) -> torch.Tensor:
        """The level ``k`` of each value (long): ``floor(levels * x)`` (see the module
        docstring), which also maps grey values stored as ``k / (levels - 1)`` to ``k``."""
        if not self.dequantized:
            return (x > 0.5).long()
        return torch.floor(x * self.levels).clamp(0, self.levels - 1).long()

    def from_levels(self, k: torch.Tensor) -> torch.Tensor:
        """Levels as data values in [0, 1] (``k / (levels - 1)``, as images are stored)."""
        return k.float() / (self.levels - 1)

    def _inputs(self, k: torch.Tensor) -> torch.Tensor:
        return 2.0 * k.to(self._dtype()) / (self.levels - 1) - 1.0

    def _dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def logits(self, k: torch.Tensor) -> torch.Tensor:  # pragma: no cover - each subclass
        raise NotImplementedError

    @property
    def order(self) -> torch.Tensor:
        return torch.arange(self.data_dim)

    def log_prob_levels(self, k: torch.Tensor) -> torch.Tensor:
        """:math:`\\log P(k)` of each example (nats), one network pass."""
        logp = torch.log_softmax(self.logits(k), dim=-1)
        return logp.gather(-1, k.unsqueeze(-1)).squeeze(-1).sum(-1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """The exact log-likelihood (binary data) or log-density on dequantized grey
        levels, :math:`\\log P(k) + D \\log L` (module docstring), of each example."""
        batch = x.shape[:-1]
        k = self.to_levels(x.reshape(-1, self.data_dim))
        lp = self.log_prob_levels(k).reshape(batch)
        return lp + self.data_dim * math.log(self.levels) if self.dequantized else lp

    def distribution(self) -> _Density:
        return _Density(self)

    @torch.no_grad()
    def _complete_levels(self, k: torch.Tensor, start: int) -> torch.Tensor:
        """Draw the values at positions ``order[start:]`` one at a time, each from its
        conditional given all before it: one network pass per value."""
        for t in range(start, self.data_dim):
            d = int(self.order[t])
            probs = torch.softmax(self.logits(k)[:, d], dim=-1)
            k[:, d] = torch.multinomial(probs, 1).squeeze(-1)
        return k

    def _draw(self, n: int) -> torch.Tensor:
        device = next(self.parameters()).device
        k = torch.zeros(n, self.data_dim, dtype=torch.long, device=device)
        return self.from_levels(self._complete_levels(k, 0))

    def sample(self, n: int, *, seed: int | None = None) -> torch.Tensor:
        """``n`` draws ``(n, D)`` in [0, 1] (grey values ``k / (levels - 1)``), made one
        value at a time: ``D`` network passes. ``seed`` seeds these draws only."""
        n = check_int("n", n, minimum=1)
        was = self.training
        self.eval()
        try:
            with rng.forked(seed):
                return self._draw(n)
        finally:
            self.train(was)

    def complete(self, x: torch.Tensor, given: int, *, seed: int | None = None) -> torch.Tensor:
        """Keep the first ``given`` values of each example in the generation order (for
        PixelCNN's raster order, ``given = rows * width`` keeps the top rows) and draw
        the rest from the model given them (the notes' prefix completion)."""
        x = check_data(x, name="x", event_shape=self.event_shape)
        given = check_int("given", given, minimum=0)
        if given > self.data_dim:
            raise ValueError(f"given={given} is more than the {self.data_dim} values of an example")
        was = self.training
        self.eval()
        try:
            with rng.forked(seed):
                k = self.to_levels(x.reshape(-1, self.data_dim).to(self._dtype()))
                return self.from_levels(self._complete_levels(k.clone(), given))
        finally:
            self.train(was)

    def validate_data(self, x, y=None, *, name: str = "x") -> None:
        x = check_data(x, name=name, event_shape=self.event_shape)
        if float(x.min()) < 0.0 or float(x.max()) > 1.0:
            raise ValueError(
                f"{name} must lie in [0, 1] (binary pixels, or grey levels dequantized by "
                f"pgen.data.dequantize); got values in [{float(x.min()):.3g}, {float(x.max()):.3g}]"
            )
        if not self.dequantized and not bool(((x == 0) | (x == 1)).all()):
            raise ValueError(
                f"{name} must be binary for levels=2 (binarize the images, or give levels > 2 for "
                "dequantized grey levels)"
            )


def _data_args(x, y):
    x = x.reshape(len(x), -1)
    return {"data_dim": int(x.shape[1]), "levels": levels_of(x)}


_READS = ("data_dim", "levels")


@registry.register("made", family="autoregressive", reads=_READS, data_args=_data_args)
class MADEDensity(DiscreteAutoregressive):
    """MADE as a density on flattened data (Germain et al. 2015): one masked MLP gives
    every conditional :math:`P(k_{o_t} | k_{o_{<t}})` in one pass.

    Args:
        data_dim: D, the size of one flattened example.
        levels: values per variable (2: binary data; more: dequantized grey levels; read
            off the data).
        hidden: the hidden widths (each >= D - 1).
        order: ``"natural"``, ``"reverse"`` or ``"random"`` (drawn with ``order_seed``).
        num_orders: with more than 1, an order-agnostic ensemble: the first order as
            ``order`` says, the others random; training cycles through them, one per
            step, and the likelihood is their mixture.
        order_seed: seeds the random orders.
    """

    @configured
    def __init__(
        self,
        data_dim: int,
        levels: int = 2,
        hidden: tuple[int, ...] = (500, 500),
        order: str = "natural",
        num_orders: int = 1,
        order_seed: int = 0,
    ):
        super().__init__(data_dim, levels)
        self.order_name = check_choice("order", order, ("natural", "reverse", "random"))
        self.num_orders = check_int("num_orders", num_orders, minimum=1)
        orders = [order_of(data_dim, order, seed=order_seed)]
        orders += [order_of(data_dim, "random", seed=order_seed + i) for i in range(1, self.num_orders)]
        hidden = check_int_tuple("hidden", hidden)
        self.made = MADE(data_dim, hidden, orders=orders, classes=levels)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    @property
    def order(self) -> torch.Tensor:
        return self.made.order

    def logits(self, k: torch.Tensor) -> torch.Tensor:
        return self.made(self._inputs(k))

    def log_prob_levels(self, k: torch.Tensor) -> torch.Tensor:
        if self.num_orders == 1:
            return super().log_prob_levels(k)
        if self.training and torch.is_grad_enabled():  # one order per training step
            self.made.use_order(int(self.step) % self.num_orders)
            self.step += 1
            return super().log_prob_levels(k)
        each = []
        for j in range(self.num_orders):
            self.made.use_order(j)
            each.append(super().log_prob_levels(k))
        self.made.use_order(0)
        return torch.logsumexp(torch.stack(each), 0) - math.log(self.num_orders)

    def _draw(self, n: int) -> torch.Tensor:
        """A draw from the mixture: an order at random per example group, then D passes."""
        if self.num_orders == 1:
            return super()._draw(n)
        which = torch.randint(self.num_orders, (n,))
        out = torch.empty(n, self.data_dim)
        for j in range(self.num_orders):
            rows = (which == j).nonzero().squeeze(-1)
            if len(rows):
                self.made.use_order(j)
                out[rows] = super()._draw(len(rows)).cpu()
        self.made.use_order(0)
        return out.to(next(self.parameters()).device)

    def complete(self, x: torch.Tensor, given: int, *, seed: int | None = None) -> torch.Tensor:
        """As :meth:`DiscreteAutoregressive.complete`, in the first order."""
        self.made.use_order(0)
        return super().complete(x, given, seed=seed)


# --------------------------------------------------------------------------- PixelCNN


class _MaskedConv(nn.Conv2d):
    """A k x k convolution whose kernel is zero outside a mask (1, 1, k, k)."""

    def __init__(self, cin: int, cout: int, kernel: int, mask: torch.Tensor):
        super().__init__(cin, cout, kernel, padding=kernel // 2)
        self.register_buffer("mask", mask.view(1, 1, kernel, kernel).to(self.weight.dtype), persistent=False)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


def _vertical_mask(kernel: int, include_centre_row: bool) -> torch.Tensor:
    """Rows above the centre (and the centre row itself if asked), every column."""
    m = torch.zeros(kernel, kernel)
    c = kernel // 2
    m[: c + 1 if include_centre_row else c] = 1
    return m


def _horizontal_mask(kernel: int, include_centre: bool) -> torch.Tensor:
    """The centre row, left of the centre (and the centre itself if asked)."""
    m = torch.zeros(kernel, kernel)
    c = kernel // 2
    m[c, : c + 1 if include_centre else c] = 1
    return m


class _GatedLayer(nn.Module):
    """One gated PixelCNN layer (van den Oord et al. 2016, fig. 2): the vertical stack
    sees the rows above, the horizontal stack the pixels to the left plus the vertical
    stack's features of the same position (which only know the rows above)."""

    def __init__(self, channels: int, kernel: int, first: bool, cin: int):
        super().__init__()
        self.first = first
        self.v = _MaskedConv(cin, 2 * channels, kernel, _vertical_mask(kernel, not first))
        self.h = _MaskedConv(cin, 2 * channels, kernel, _horizontal_mask(kernel, not first))
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h_out = nn.Conv2d(channels, channels, 1)

    @staticmethod
    def _gate(a: torch.Tensor) -> torch.Tensor:
        f, g = a.chunk(2, dim=1)
        return torch.tanh(f) * torch.sigmoid(g)

    def forward(self, v: torch.Tensor, h: torch.Tensor):
        v_pre = self.v(v)
        h_pre = self.h(h) + self.v_to_h(v_pre)
        h_new = self.h_out(self._gate(h_pre))
        if not self.first:  # a residual connection where the shapes allow it
            h_new = h_new + h
        return self._gate(v_pre), h_new


def _square_side(data_dim: int, image_shape) -> tuple[int, int]:
    if image_shape is not None:
        shape = tuple(check_int_tuple("image_shape", image_shape))
        if len(shape) != 2 or shape[0] * shape[1] != data_dim:
            raise ValueError(f"image_shape {image_shape} does not hold data_dim={data_dim} pixels")
        return shape
    side = math.isqrt(data_dim)
    if side * side != data_dim:
        raise ValueError(f"data_dim={data_dim} is not a square image; pass image_shape=(rows, cols)")
    return (side, side)


@registry.register("pixelcnn", family="autoregressive", reads=_READS, data_args=_data_args)
class PixelCNN(DiscreteAutoregressive):
    """Gated PixelCNN on one-channel images, raster order (module docstring).

    Args:
        data_dim: the number of pixels (a square image unless ``image_shape`` says).
        levels: values per pixel (2: binary; more: dequantized grey levels; read off the
            data).
        channels: feature maps of each stack.
        layers: gated layers (the first with "type A" masks that hide the pixel itself).
        kernel: the odd kernel size of the masked convolutions.
        image_shape: ``(rows, cols)``; default: square.
    """

    @configured
    def __init__(
        self,
        data_dim: int,
        levels: int = 2,
        channels: int = 32,
        layers: int = 5,
        kernel: int = 3,
        image_shape: tuple[int, int] | None = None,
    ):
        super().__init__(data_dim, levels)
        self.image_shape = _square_side(data_dim, image_shape)
        self.channels = check_int("channels", channels, minimum=1)
        self.num_layers = check_int("layers", layers, minimum=1)
        self.kernel = check_int("kernel", kernel, minimum=1)
        if self.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (a centre pixel to mask around); got {kernel}")
        self.gated = nn.ModuleList(
            _GatedLayer(self.channels, self.kernel, first=i == 0, cin=1 if i == 0 else self.channels)
            for i in range(self.num_layers)
        )
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(self.channels, 4 * self.channels, 1),
            nn.ReLU(),
            nn.Conv2d(4 * self.channels, levels, 1),
        )

    def logits(self, k: torch.Tensor) -> torch.Tensor:
        x = self._inputs(k).reshape(-1, 1, *self.image_shape)
        v = h = x
        for layer in self.gated:
            v, h = layer(v, h)
        out = self.head(h)  # (N, levels, rows, cols)
        return out.flatten(2).transpose(1, 2)  # (N, D, levels), raster order
