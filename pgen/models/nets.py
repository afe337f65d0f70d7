"""Plain ``nn.Module`` networks used by pgen's models: no Pyro inside.

Models wrap these with ``pyro.module``; the benchmarks' hand-written loops use the same
classes, so both sides train identical networks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..checks import check_choice, check_float, check_int, check_int_tuple

__all__ = ["MLP", "GaussianEncoder", "ACTIVATIONS", "MLPDenoiser", "UNetDenoiser", "timestep_embedding"]

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "softplus": nn.Softplus, "elu": nn.ELU}


class MLP(nn.Module):
    """``in_dim -> hidden[0] -> ... -> out_dim``, with an activation after each hidden layer.

    Args:
        in_dim: input features.
        hidden: widths of the hidden layers (may be empty: one linear map).
        out_dim: output features (no activation on the output).
        activation: one of ``relu``, ``tanh``, ``softplus``, ``elu``.
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int, activation: str = "relu"):
        super().__init__()
        in_dim = check_int("in_dim", in_dim, minimum=1)
        out_dim = check_int("out_dim", out_dim, minimum=1)
        hidden = check_int_tuple("hidden", hidden)
        act = ACTIVATIONS[check_choice("activation", activation, ACTIVATIONS)]
        layers: list[nn.Module] = []
        width = in_dim
        for h in hidden:
            layers += [nn.Linear(width, h), act()]
            width = h
        layers.append(nn.Linear(width, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class GaussianEncoder(nn.Module):
    r"""Amortized diagonal Gaussian :math:`q(z|x) = N(\mu(x), \mathrm{diag}\,\sigma(x)^2)`.

    Hidden layers are shared; two linear heads give :math:`\mu` and
    :math:`\sigma = \mathrm{softplus}(\cdot) + \sigma_{\min}` (softplus keeps the scale
    positive without the overflow of ``exp``).

    Returns:
        ``(loc, scale)``, each of shape ``(..., latent_dim)``.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        latent_dim: int,
        activation: str = "relu",
        min_scale: float = 1e-4,
    ):
        super().__init__()
        hidden = check_int_tuple("hidden", hidden)
        latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        self.min_scale = check_float("min_scale", min_scale, nonnegative=True)
        act = ACTIVATIONS[check_choice("activation", activation, ACTIVATIONS)]
        layers: list[nn.Module] = []
        width = check_int("in_dim", in_dim, minimum=1)
        for h in hidden:
            layers += [nn.Linear(width, h), act()]
            width = h
        self.body = nn.Sequential(*layers)
        self.loc = nn.Linear(width, latent_dim)
        self.raw_scale = nn.Linear(width, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.loc(h), F.softplus(self.raw_scale(h)) + self.min_scale


# --------------------------------------------------------------------------- denoisers


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    r"""Sinusoidal features of integer timesteps (Vaswani et al. 2017, as in Ho et al.
    2020): :math:`[\cos(t\omega_k), \sin(t\omega_k)]` with
    :math:`\omega_k = \text{max\_period}^{-k/(dim/2)}`. ``t``: ``(N,)``; returns ``(N, dim)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t.to(torch.float32)[:, None] * freqs[None, :]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class _TimeAndLabel(nn.Module):
    """Embedding of the timestep (sinusoidal features, then an MLP) plus, for a
    class-conditional denoiser, a learned embedding of the label; label
    ``num_classes`` is "no label" (classifier-free guidance)."""

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.dim, self.num_classes = dim, num_classes
        self.time = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.label = nn.Embedding(num_classes + 1, dim) if num_classes else None

    def forward(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        emb = self.time(timestep_embedding(t, self.dim).to(self.time[0].weight.dtype))
        if self.label is not None:
            if y is None:
                y = torch.full_like(t, self.num_classes)
            emb = emb + self.label(y)
        elif y is not None:
            raise ValueError("this denoiser is unconditional; it takes no labels y")
        return emb


class MLPDenoiser(nn.Module):
    """``(x_t, t[, y]) -> `` a vector the size of ``x_t``: the noise, x_0 or v
    prediction of a diffusion model, from an MLP on ``x_t`` with the time (and label)
    embedding added to every hidden layer.

    Args:
        data_dim: size of one flattened example.
        hidden: hidden widths (at least one layer).
        time_dim: size of the time embedding (defaults to the first hidden width).
        num_classes: 0 for unconditional; else labels ``0..num_classes-1``, and
            ``num_classes`` (or ``y=None``) for none.
        outputs: vectors the size of ``x_t`` to return, concatenated (2: a prediction
            and a variance interpolation, Nichol & Dhariwal 2021).
    """

    def __init__(
        self,
        data_dim: int,
        hidden: Sequence[int] = (256, 256, 256),
        num_classes: int = 0,
        outputs: int = 1,
    ):
        super().__init__()
        data_dim = check_int("data_dim", data_dim, minimum=1)
        outputs = check_int("outputs", outputs, minimum=1)
        hidden = check_int_tuple("hidden", hidden)
        if not hidden:
            raise ValueError("hidden must have at least one layer for an MLP denoiser")
        num_classes = check_int("num_classes", num_classes, minimum=0)
        self.embed = _TimeAndLabel(hidden[0], num_classes)
        self.inp = nn.Linear(data_dim, hidden[0])
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(hidden[:-1], hidden[1:], strict=True))
        self.emb_proj = nn.ModuleList(nn.Linear(hidden[0], b) for b in hidden[1:])
        self.out = nn.Linear(hidden[-1], data_dim * outputs)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.embed(t, y)
        h = F.silu(self.inp(x) + emb)
        for layer, proj in zip(self.layers, self.emb_proj, strict=True):
            h = F.silu(layer(h) + proj(emb))
        return self.out(h)


def _groups(channels: int, most: int = 8) -> int:
    """The largest number of GroupNorm groups <= ``most`` that divides ``channels``."""
    return max(g for g in range(1, most + 1) if channels % g == 0)


class _ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb_dim: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, cout)
        self.norm2 = nn.GroupNorm(_groups(cout), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class UNetDenoiser(nn.Module):
    """A small convolutional U-Net (Ronneberger et al. 2015; as in Ho et al. 2020,
    without attention) on grey or colour images, taking and returning flattened vectors
    (colour images as channel planes, as CIFAR-10 stores them).

    One residual block per resolution on the way down (halving the size after each
    but the last) and one on the way up, with skip connections; the time (and label)
    embedding is added inside every block.

    Args:
        image_shape: ``(rows, cols)`` or ``(image channels, rows, cols)``; rows and cols
            must be divisible by ``2**(len(channels)-1)``.
        channels: widths per resolution, e.g. ``(16, 32, 32)``.
        num_classes, outputs: as in :class:`MLPDenoiser` (each output has the image's
            channels, output after output).
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        channels: Sequence[int] = (16, 32, 32),
        num_classes: int = 0,
        outputs: int = 1,
    ):
        super().__init__()
        self.outputs = check_int("outputs", outputs, minimum=1)
        shape = tuple(check_int_tuple("image_shape", image_shape))
        channels = check_int_tuple("channels", channels)
        if len(shape) not in (2, 3) or not channels:
            raise ValueError(
                "image_shape must be (rows, cols) or (channels, rows, cols) and channels non-empty; "
                f"got {image_shape}, {channels}"
            )
        self.in_channels, self.image_shape = (1, shape) if len(shape) == 2 else (shape[0], shape[1:])
        factor = 2 ** (len(channels) - 1)
        if any(s % factor for s in self.image_shape):
            raise ValueError(
                f"image_shape {self.image_shape} must be divisible by 2**(len(channels)-1) = {factor}"
            )
        emb_dim = 4 * channels[0]
        self.embed = _TimeAndLabel(emb_dim, check_int("num_classes", num_classes, minimum=0))
        self.inp = nn.Conv2d(self.in_channels, channels[0], 3, padding=1)
        self.down = nn.ModuleList()
        previous = channels[0]
        for c in channels:
            self.down.append(_ResBlock(previous, c, emb_dim))
            previous = c
        self.mid = _ResBlock(previous, previous, emb_dim)
        self.up = nn.ModuleList()
        for c in reversed(channels):
            self.up.append(_ResBlock(previous + c, c, emb_dim))
            previous = c
        self.out = nn.Sequential(
            nn.GroupNorm(_groups(previous), previous),
            nn.SiLU(),
            nn.Conv2d(previous, self.outputs * self.in_channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.embed(t, y)
        h = self.inp(x.reshape(-1, self.in_channels, *self.image_shape))
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, emb)
            skips.append(h)
            if i < len(self.down) - 1:
                h = F.avg_pool2d(h, 2)
        h = self.mid(h, emb)
        for i, block in enumerate(self.up):
            if i > 0:
                h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h).reshape(*x.shape[:-1], self.outputs * x.shape[-1])
