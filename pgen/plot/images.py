"""Image figures: sample grids, reconstructions, interpolation strips, latent manifolds.

Each function follows ``plot_x(data, *, ax=None, **kw) -> Axes``: it draws into ``ax``
(a new figure if ``None``) and returns it. Data are arrays of flattened images
``(n, rows*cols)``; the image shape is inferred for square images or given.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..checks import check_int

__all__ = [
    "image_grid",
    "plot_images",
    "plot_reconstructions",
    "plot_interpolation",
    "plot_latent_manifold",
    "plot_conditional_grid",
    "plot_inpainting",
    "plot_samples_over_training",
]


def _numpy(a) -> np.ndarray:
    if torch.is_tensor(a):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


def _layout(dim: int, image_shape) -> tuple[int, int, int]:
    """``(channels, rows, cols)`` of flattened images of ``dim`` values: ``image_shape``
    is ``(rows, cols)`` (grey) or ``(channels, rows, cols)`` with 1 or 3 channels (RGB
    planes, as CIFAR-10 stores them); ``None`` means square grey images."""
    if image_shape is not None:
        shape = tuple(int(s) for s in image_shape)
        if len(shape) == 2:
            shape = (1, *shape)
        if len(shape) != 3 or shape[0] not in (1, 3):
            raise ValueError(
                f"image_shape must be (rows, cols) or (channels, rows, cols) with 1 or 3 channels; "
                f"got {tuple(image_shape)}"
            )
        if int(np.prod(shape)) != dim:
            raise ValueError(
                f"image_shape {tuple(image_shape)} holds {int(np.prod(shape))} pixels, not {dim}"
            )
        return shape
    side = math.isqrt(dim)
    if side * side != dim:
        raise ValueError(f"images of {dim} pixels are not square; pass image_shape=(rows, cols)")
    return 1, side, side


def _image_shape(dim: int, image_shape) -> tuple[int, int]:
    return _layout(dim, image_shape)[1:]


def image_grid(images, *, nrow: int | None = None, image_shape=None, pad: int = 1) -> np.ndarray:
    """Tile flattened images into one array, row by row, with ``pad`` pixels between.

    Args:
        images: ``(n, pixels)``, ``(n, rows, cols)`` or ``(n, channels, rows, cols)``.
        nrow: images per row (default: as square as possible).
        image_shape: ``(rows, cols)`` when grey images are not square;
            ``(3, rows, cols)`` for colour images stored as RGB planes.
        pad: pixels of background between images (NaN, drawn blank; white for colour).

    Returns:
        A ``(R*(rows+pad)-pad, C*(cols+pad)-pad)`` array, with a last axis of 3 for colour.
    """
    a = _numpy(images)
    if a.ndim == 4 and image_shape is None:
        image_shape = a.shape[1:]
    if a.ndim in (3, 4):
        a = a.reshape(len(a), -1)
    if a.ndim != 2 or len(a) == 0:
        raise ValueError(f"images must have shape (n, pixels) with n >= 1, got {a.shape}")
    channels, rows, cols = _layout(a.shape[1], image_shape)
    n = len(a)
    per_row = math.ceil(math.sqrt(n)) if nrow is None else check_int("nrow", nrow, minimum=1)
    n_rows = math.ceil(n / per_row)
    size = (n_rows * (rows + pad) - pad, per_row * (cols + pad) - pad)
    grid = np.full(size, np.nan) if channels == 1 else np.ones((*size, 3))
    for i, img in enumerate(a):
        r, c = divmod(i, per_row)
        img = (
            img.reshape(rows, cols)
            if channels == 1
            else np.clip(img.reshape(3, rows, cols).transpose(1, 2, 0), 0, 1)
        )
        grid[r * (rows + pad) : r * (rows + pad) + rows, c * (cols + pad) : c * (cols + pad) + cols] = img
    return grid


def _axes(ax, shape=None):
    """``ax``, or new Axes in a figure shaped for an image of ``shape`` (rows, cols)."""
    if ax is None:
        import matplotlib.pyplot as plt

        figsize = None
        if shape is not None:
            width = 7.0 if shape[1] >= shape[0] else 5.0
            figsize = (width, min(9.0, max(1.6, width * shape[0] / shape[1] + 0.7)))
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _show(ax, grid, title, cmap, vmin=0.0, vmax=1.0):
    ax = _axes(ax, grid.shape)
    ax.imshow(grid, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def plot_images(images, *, ax=None, nrow=None, image_shape=None, title=None, cmap="gray"):
    """A grid of images (e.g. samples), values in [0, 1]."""
    return _show(ax, image_grid(images, nrow=nrow, image_shape=image_shape), title, cmap)


def plot_reconstructions(
    originals,
    reconstructions,
    *,
    ax=None,
    image_shape=None,
    title="originals (top), reconstructions (bottom)",
    cmap="gray",
):
    """Originals in the top row, their reconstructions below."""
    a, b = _numpy(originals), _numpy(reconstructions)
    if a.shape != b.shape:
        raise ValueError(f"originals {a.shape} and reconstructions {b.shape} differ in shape")
    grid = image_grid(np.concatenate([a, b]), nrow=len(a), image_shape=image_shape)
    return _show(ax, grid, title, cmap)


def plot_interpolation(path, *, ax=None, image_shape=None, title=None, cmap="gray"):
    """Interpolation strips: ``(steps, pixels)`` is one row, ``(m, steps, pixels)`` m rows."""
    a = _numpy(path)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"path must have shape (steps, pixels) or (m, steps, pixels), got {a.shape}")
    grid = image_grid(a.reshape(-1, a.shape[-1]), nrow=a.shape[1], image_shape=image_shape)
    return _show(ax, grid, title, cmap)


def plot_latent_manifold(grid, *, ax=None, extent: float = 3.0, image_shape=None, title=None, cmap="gray"):
    """Decoded images over a 2-D latent grid (``VAE.manifold``), ``(n, n, pixels)``.

    Tick labels give the z coordinates: z1 to the right, z2 upwards.
    """
    a = _numpy(grid)
    if a.ndim != 3 or a.shape[0] != a.shape[1]:
        raise ValueError(f"grid must have shape (n, n, pixels), got {a.shape}")
    n = a.shape[0]
    rows, cols = _image_shape(a.shape[2], image_shape)
    ax = _show(ax, image_grid(a.reshape(n * n, -1), nrow=n, image_shape=image_shape, pad=0), title, cmap)
    ticks = [0, n // 2, n - 1]
    values = np.linspace(-extent, extent, n)
    ax.set_xticks([t * cols + cols / 2 - 0.5 for t in ticks], [f"{values[t]:.1f}" for t in ticks])
    ax.set_yticks([t * rows + rows / 2 - 0.5 for t in ticks], [f"{values[n - 1 - t]:.1f}" for t in ticks])
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    return ax


def plot_conditional_grid(
    samples, *, ax=None, row_labels=None, image_shape=None, title=None, cmap="gray", ylabel="class"
):
    """Samples per condition, one row each: ``(conditions, num, pixels)`` (e.g.
    ``CVAE.sample(torch.arange(10), num=8)``), rows labelled by ``row_labels``."""
    a = _numpy(samples)
    if a.ndim != 3:
        raise ValueError(f"samples must have shape (conditions, num, pixels), got {a.shape}")
    rows, _ = _image_shape(a.shape[2], image_shape)
    ax = _show(
        ax, image_grid(a.reshape(-1, a.shape[2]), nrow=a.shape[1], image_shape=image_shape), title, cmap
    )
    labels = list(range(len(a))) if row_labels is None else list(row_labels)
    if len(labels) != len(a):
        raise ValueError(f"row_labels has {len(labels)} entries for {len(a)} rows")
    ax.set_yticks([i * (rows + 1) + rows / 2 - 0.5 for i in range(len(a))], [str(v) for v in labels])
    ax.set_ylabel(ylabel)
    return ax


def plot_inpainting(images, mask, completions, *, ax=None, image_shape=None, title=None, cmap="gray"):
    """In-painting, one row per image: the input with its hidden pixels greyed (0.5),
    the completions, then the truth.

    Args:
        images: the true images ``(m, pixels)``.
        mask: ``(pixels,)`` booleans, ``True`` where observed.
        completions: ``(m, k, pixels)``, e.g. ``CVAE.complete(images, num=k)``.
    """
    x, c = _numpy(images), _numpy(completions)
    mask = _numpy(mask).astype(bool)
    if x.ndim != 2 or c.ndim != 3 or c.shape[0] != x.shape[0] or c.shape[2] != x.shape[1]:
        raise ValueError(
            f"images (m, pixels) and completions (m, k, pixels) do not match: {x.shape}, {c.shape}"
        )
    if mask.shape != (x.shape[1],):
        raise ValueError(f"mask has shape {mask.shape}; expected ({x.shape[1]},)")
    shown = np.where(mask, x, 0.5)
    rows = np.concatenate([shown[:, None], c, x[:, None]], axis=1)
    k = c.shape[1]
    ax = plot_interpolation(rows, ax=ax, image_shape=image_shape, title=title, cmap=cmap)
    r, cols = _image_shape(x.shape[1], image_shape)
    ticks = [cols / 2 - 0.5, (k + 1) * (cols + 1) + cols / 2 - 0.5]
    ax.set_xticks(ticks, ["input", "truth"])
    return ax


def plot_samples_over_training(steps, draws, *, image_shape=None, data=None, title=None, max_rows: int = 12):
    """Draws at the same latent values at several points of training: ``steps`` (m
    numbers) and ``draws`` ``(m, k, dims)``. Images: one row per step, labelled. 2-D
    points: one panel per step over ``data``. At most ``max_rows`` steps, spread evenly
    over the list with the first and last kept.

    Returns the figure.
    """
    import matplotlib.pyplot as plt

    a = _numpy(draws)
    steps = [int(s) for s in steps]
    if a.ndim != 3 or len(a) != len(steps) or len(a) == 0:
        raise ValueError(
            f"draws must have shape (m, k, dims) with m = len(steps) = {len(steps)}; got {a.shape}"
        )
    if len(a) > max_rows:
        keep = np.unique(np.round(np.linspace(0, len(a) - 1, max_rows)).astype(int))
        a, steps = a[keep], [steps[i] for i in keep]
    m, k, dims = a.shape
    if dims == 2:
        cols = min(m, 4)
        rows_of_panels = math.ceil(m / cols)
        fig, axes = plt.subplots(
            rows_of_panels, cols, figsize=(3.2 * cols, 3.2 * rows_of_panels), squeeze=False
        )
        ref = None if data is None else _numpy(data)
        span = ref if ref is not None else a[-1]  # the data's box (else the last draws'), padded
        lo, hi = span.min(0), span.max(0)
        lo, hi = lo - 0.25 * (hi - lo), hi + 0.25 * (hi - lo)
        for ax, step, pts in zip(axes.flat, steps, a, strict=False):
            if ref is not None:
                ax.scatter(ref[:, 0], ref[:, 1], s=2, color="0.7")
            ax.scatter(pts[:, 0], pts[:, 1], s=3, color="tab:blue")
            ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), aspect="equal", title=f"step {step}")
            ax.set_xticks([])
            ax.set_yticks([])
        for ax in list(axes.flat)[m:]:
            ax.set_visible(False)
    else:
        rows = _layout(dims, image_shape)[1]
        grid = image_grid(a.reshape(m * k, dims), nrow=k, image_shape=image_shape)
        fig, ax = plt.subplots(figsize=(min(12.0, 0.6 * k + 1.2), 0.6 * m + 0.8))
        ax.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([(rows + 1) * i + rows / 2 - 0.5 for i in range(m)], [str(s) for s in steps])
        ax.set_ylabel("generator step")
    if title:
        fig.suptitle(title)
    return fig
