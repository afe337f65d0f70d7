"""What a conditional model's ``y`` is: the three tasks of :class:`Conditioning`
(a class label, the observed quadrants of an image, a feature vector) and how images
split into ``(x, y)`` for in-painting. Shared by :class:`~pgen.models.CVAE` and
:class:`~pgen.models.Baseline`.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..checks import check_choice, check_int, check_int_tuple
from ..data.validate import check_data, check_labels, check_same_length, check_unit_interval
from .protocols import ConditionalModel

__all__ = ["Conditioning", "quadrant_mask", "TASKS", "QUADRANT_ORDER"]

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


class Conditioning(ConditionalModel, nn.Module):
    """What a task's ``y`` becomes inside the networks, and how images split into
    ``(x, y)``. Shared by :class:`CVAE` and :class:`Baseline`."""

    stochastic = True  # False for a model whose output is a deterministic function of y

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
