r"""What every latent-variable model can do with its encoder and decoder: interpolate,
traverse and map the latent space (:class:`LatentVariableModel`), on top of ``encode``
and ``decode``.

References:
    Higgins et al. (2017), beta-VAE, ICLR (latent traversals).
    White (2016), Sampling Generative Networks (spherical interpolation).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch.nn import functional as F

from ..checks import check_choice, check_float, check_int

__all__ = ["LatentVariableModel", "lerp", "slerp"]


def lerp(z_a: torch.Tensor, z_b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear interpolation ``(1 - t) z_a + t z_b`` (broadcasting)."""
    return (1 - t) * z_a + t * z_b


def slerp(z_a: torch.Tensor, z_b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    r"""Spherical interpolation (Shoemake 1985; White 2016) along the last dimension.

    :math:`z_t = [\sin((1-t)\Omega)\, z_a + \sin(t\Omega)\, z_b] / \sin\Omega` with
    :math:`\cos\Omega = \hat z_a \cdot \hat z_b`; falls back to :func:`lerp` where the
    two are (anti)parallel. Between vectors of equal norm the norm stays constant.
    """
    cos = F.cosine_similarity(z_a, z_b, dim=-1).clamp(-1.0, 1.0).unsqueeze(-1)
    omega = torch.arccos(cos)
    sin = torch.sin(omega)
    safe = sin.abs() > 1e-6
    denom = torch.where(safe, sin, torch.ones_like(sin))
    w_a = torch.where(safe, torch.sin((1 - t) * omega) / denom, 1 - t)
    w_b = torch.where(safe, torch.sin(t * omega) / denom, t)
    return w_a * z_a + w_b * z_b


class LatentVariableModel:
    """A model with a continuous latent z and an amortized guide q(z|x) (VAE, PPCA).

    A subclass provides ``latent_dim``, ``encode(x) -> (loc, scale)`` of q(z|x) and
    ``decode(z)``, the mean of p(x|z); the helpers below are written on those two.
    """

    latent_dim: int

    def _latent_dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def _decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode(z)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean: ``decode(encode(x)[0])``."""
        return self.decode(self.encode(x)[0])

    @torch.no_grad()
    def interpolate(
        self,
        x_a: torch.Tensor,
        x_b: torch.Tensor,
        steps: int = 8,
        *,
        method: Literal["linear", "spherical"] = "linear",
    ) -> torch.Tensor:
        r"""Decode a path between the encodings of ``x_a`` and ``x_b``.

        ``linear``: :math:`z_t = (1-t) z_a + t z_b`. ``spherical`` (slerp; White 2016):
        :math:`z_t = [\sin((1-t)\Omega) z_a + \sin(t\Omega) z_b] / \sin\Omega`
        with :math:`\cos\Omega = \hat z_a \cdot \hat z_b`, which stays where a Gaussian
        prior puts its mass in high dimension. :math:`z_a, z_b` are posterior means.

        Args:
            x_a, x_b: one example each ``(data_dim,)`` or matching batches ``(m, data_dim)``.
            steps: points on the path, ends included (>= 2).
            method: ``"linear"`` or ``"spherical"``.

        Returns:
            ``(steps, data_dim)``, or ``(m, steps, data_dim)`` for batches.
        """
        steps = check_int("steps", steps, minimum=2)
        method = check_choice("method", method, ("linear", "spherical"))
        z_a, z_b = self.encode(x_a)[0], self.encode(x_b)[0]
        if z_a.shape != z_b.shape:
            raise ValueError(
                f"x_a and x_b must have the same shape, got {tuple(x_a.shape)} and {tuple(x_b.shape)}"
            )
        t = torch.linspace(0.0, 1.0, steps, dtype=z_a.dtype)
        path = lerp if method == "linear" else slerp
        z = path(z_a.unsqueeze(-2), z_b.unsqueeze(-2), t[:, None])
        return self._decode_mean(z)

    @torch.no_grad()
    def traverse(
        self,
        x: torch.Tensor | None = None,
        *,
        dims=None,
        values=None,
    ) -> torch.Tensor:
        r"""Latent traversals (Higgins et al. 2017): start from the posterior mean of ``x``
        (one example; the prior mean 0 if ``None``), set one latent coordinate to each of
        ``values`` with the others fixed, and decode.

        Args:
            x: one example ``(data_dim,)`` or ``None``.
            dims: the latent coordinates to vary (default: all).
            values: the values given to each (default: 9 points over ``[-3, 3]``).

        Returns:
            ``(len(dims), len(values), data_dim)``: row ``i`` varies ``dims[i]``.
        """
        dims = list(range(self.latent_dim)) if dims is None else [int(d) for d in dims]
        bad = [d for d in dims if not 0 <= d < self.latent_dim]
        if bad or not dims:
            raise ValueError(f"dims must be latent coordinates in [0, {self.latent_dim}), got {dims}")
        values = torch.linspace(-3.0, 3.0, 9) if values is None else torch.as_tensor(values)
        values = values.to(self._latent_dtype()).reshape(-1)
        if x is None:
            base = torch.zeros(self.latent_dim, dtype=self._latent_dtype())
        else:
            x = torch.as_tensor(x, dtype=self._latent_dtype())
            if x.dim() != 1:
                raise ValueError(f"traverse takes one example (data_dim,), got shape {tuple(x.shape)}")
            base = self.encode(x)[0]
        z = base.expand(len(dims), len(values), self.latent_dim).clone()
        for row, d in enumerate(dims):
            z[row, :, d] = values
        return self._decode_mean(z)

    @torch.no_grad()
    def manifold(self, n: int = 15, extent: float = 3.0) -> torch.Tensor:
        """Decode an ``n x n`` grid of z over ``[-extent, extent]^2`` (2-D latent only).

        Returns:
            ``(n, n, data_dim)``; entry ``[i, j]`` decodes ``z = (grid[j], grid[n-1-i])``
            so that, drawn as an image grid, z1 grows to the right and z2 upwards.
        """
        if self.latent_dim != 2:
            raise ValueError(f"manifold needs latent_dim=2, this VAE has latent_dim={self.latent_dim}")
        n = check_int("n", n, minimum=2)
        extent = check_float("extent", extent, positive=True)
        grid = torch.linspace(-extent, extent, n, dtype=self._latent_dtype())
        z1 = grid.repeat(n)
        z2 = grid.flip(0).repeat_interleave(n)
        return self._decode_mean(torch.stack([z1, z2], dim=1)).reshape(n, n, -1)
