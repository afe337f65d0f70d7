"""Data transforms: scaling, binarization and uniform dequantization.

Transforms that draw random numbers take a ``generator`` so that a training run that
applies them to every minibatch (``pgen.fit(..., transform=dynamic_binarize)``) is
reproducible and resumable: the engine passes its own seeded generator.
"""

from __future__ import annotations

import torch

from ..checks import check_float, check_int
from .validate import check_unit_interval

__all__ = ["scale_to_unit", "binarize", "static_binarize", "dynamic_binarize", "dequantize", "requantize"]


def scale_to_unit(x: torch.Tensor, max_value: float = 255.0) -> torch.Tensor:
    """Scale data in ``[0, max_value]`` to ``[0, 1]``.

    Args:
        x: tensor with values in ``[0, max_value]`` (any numeric dtype).
        max_value: the largest possible value (255 for 8-bit images, 16 for sklearn digits).

    Returns:
        ``x / max_value`` as a float tensor.
    """
    max_value = check_float("max_value", max_value, positive=True)
    x = torch.as_tensor(x)
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > max_value:
        raise ValueError(f"x has values in [{lo:g}, {hi:g}]; expected values in [0, {max_value:g}]")
    return x.to(torch.get_default_dtype()) / max_value


def binarize(x: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Deterministic binarization: 1 where ``x > threshold``, else 0."""
    threshold = check_float("threshold", threshold)
    check_unit_interval(x)
    return (x > threshold).to(x.dtype)


def static_binarize(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """One fixed stochastic binarization, ``x_bin ~ Bernoulli(x)``, drawn once with ``seed``.

    This is the "static binarization" of Larochelle & Murray (2011): the same binary
    data set is used for every epoch and every evaluation.
    """
    seed = check_int("seed", seed, minimum=0)
    check_unit_interval(x)
    generator = torch.Generator().manual_seed(seed)
    return torch.bernoulli(x, generator=generator)


def dynamic_binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A fresh stochastic binarization ``x_bin ~ Bernoulli(x)`` on every call.

    Pass it as ``pgen.fit(..., transform=dynamic_binarize)`` to re-binarize each
    minibatch (Salakhutdinov & Murray 2008), a cheap regularizer on grey-scale digits.
    """
    check_unit_interval(x)
    return torch.bernoulli(x, generator=generator)


def dequantize(x: torch.Tensor, levels: int = 256, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Uniform dequantization of discrete data scaled to [0, 1].

    Data with ``levels`` discrete values is stored as ``k / (levels - 1)`` for
    ``k`` in ``{0, ..., levels - 1}``. Returns ``(k + u) / levels`` with
    ``u ~ U[0, 1)``, a continuous value in ``[0, 1)``. For a density ``p`` on the
    result, :math:`\log P(k) \ge E_u[\log p((k + u)/levels)] - D \log(levels)`
    (Theis et al. 2016, section 3.1): the continuous log-likelihood, shifted by
    ``D log(levels)``, lower-bounds the discrete one. ``pgen.eval.bits_per_dim(...,
    levels=levels)`` applies that shift.

    Args:
        x: tensor in [0, 1] holding values ``k / (levels - 1)``.
        levels: number of discrete levels (256 for 8-bit images, 17 for sklearn digits).
        generator: random generator (the engine passes its own when used as a transform).
    """
    levels = check_int("levels", levels, minimum=2)
    check_unit_interval(x)
    k = x * (levels - 1)
    rounded = torch.round(k)
    if not torch.allclose(k, rounded, atol=1e-3):
        worst = float((k - rounded).abs().max())
        raise ValueError(
            f"x does not hold {levels} discrete levels k/{levels - 1} (largest distance from a "
            f"level: {worst / (levels - 1):.3g}); dequantize the original discrete data"
        )
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype)
    return (rounded + u) / levels


def requantize(x: torch.Tensor, levels: int = 256) -> torch.Tensor:
    """The inverse of :func:`dequantize`: values in [0, 1] (a dequantized model's draws)
    back to their levels, ``k = floor(levels x)`` (1.0 to the top level), as
    ``k / (levels - 1)``. ``requantize(dequantize(x, L), L) == x`` for data on the levels."""
    levels = check_int("levels", levels, minimum=2)
    check_unit_interval(x)
    return (x * levels).floor().clamp(0, levels - 1) / (levels - 1)
