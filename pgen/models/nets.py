"""Plain ``nn.Module`` networks used by pgen's models: no Pyro inside.

Models wrap these with ``pyro.module``; the benchmarks' hand-written loops use the same
classes, so both sides train identical networks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..checks import check_choice, check_float, check_int, check_int_tuple

__all__ = ["MLP", "GaussianEncoder", "ACTIVATIONS"]

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
