"""Two-dimensional toy data sets, generated from a seed.

Each generator takes ``(n, noise, generator)`` and returns ``(x, y)`` with ``x`` of
shape ``(n, 2)``. ``y`` is the component or class of each point (``int64``), except
for the swiss roll where it is the position ``t`` along the roll (float).
"""

from __future__ import annotations

import math

import torch

__all__ = ["moons", "swiss_roll", "rings", "gaussians", "pinwheel", "TOYS"]


def _normal(n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(n, 2, generator=generator)


def moons(n: int, noise: float, generator: torch.Generator):
    """Two interleaving half circles; ``y`` in {0, 1} says which."""
    y = torch.randint(0, 2, (n,), generator=generator)
    theta = math.pi * torch.rand(n, generator=generator)
    upper = torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)
    lower = torch.stack([1.0 - torch.cos(theta), 0.5 - torch.sin(theta)], dim=1)
    x = torch.where(y[:, None] == 0, upper, lower)
    x = x - torch.tensor([0.5, 0.25]) + noise * _normal(n, generator)
    return x, y


def swiss_roll(n: int, noise: float, generator: torch.Generator):
    """The 2-D swiss roll ``t (cos t, sin t) / 10`` with ``t ~ U[1.5 pi, 4.5 pi]``; ``y = t``."""
    t = 1.5 * math.pi * (1.0 + 2.0 * torch.rand(n, generator=generator))
    x = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1) / 10.0
    return x + noise * _normal(n, generator), t


def rings(n: int, noise: float, generator: torch.Generator):
    """Three concentric circles of radii 0.5, 1.0 and 1.5; ``y`` is the ring."""
    y = torch.randint(0, 3, (n,), generator=generator)
    radius = 0.5 * (y + 1).to(torch.get_default_dtype())
    theta = 2 * math.pi * torch.rand(n, generator=generator)
    x = radius[:, None] * torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)
    return x + noise * _normal(n, generator), y


def gaussians(n: int, noise: float, generator: torch.Generator):
    """Eight Gaussians (standard deviation ``noise``) evenly spaced on the unit circle."""
    y = torch.randint(0, 8, (n,), generator=generator)
    angle = 2 * math.pi * y.to(torch.get_default_dtype()) / 8
    centres = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return centres + noise * _normal(n, generator), y


def pinwheel(n: int, noise: float, generator: torch.Generator, num_arms: int = 5):
    """The pinwheel of Johnson et al. (2016): five curved arms; ``y`` is the arm.

    Radial standard deviation 0.3, tangential standard deviation ``noise``, rate 0.25.
    """
    y = torch.randint(0, num_arms, (n,), generator=generator)
    features = _normal(n, generator) * torch.tensor([0.3, noise])
    features[:, 0] += 1.0
    angle = 2 * math.pi * y.to(torch.get_default_dtype()) / num_arms
    angle = angle + 0.25 * torch.exp(features[:, 0])
    cos, sin = torch.cos(angle), torch.sin(angle)
    x = torch.stack(
        [cos * features[:, 0] - sin * features[:, 1], sin * features[:, 0] + cos * features[:, 1]],
        dim=1,
    )
    return x, y


# name -> (generator function, default noise, number of classes or None)
TOYS = {
    "moons": (moons, 0.1, 2),
    "swiss_roll": (swiss_roll, 0.05, None),
    "rings": (rings, 0.05, 3),
    "gaussians": (gaussians, 0.05, 8),
    "pinwheel": (pinwheel, 0.05, 5),
}
