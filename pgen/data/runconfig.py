"""The data part of a run: which data set, how images are made binary or dequantized,
and the validation split, checked when made and loaded the same way by every command.

A run's data configuration is a plain dict (it is stored in ``config.json``):
``{"name", "path", "binarize", "seed", "val_fraction", "n"}``. Training minibatches may be
re-drawn every step (``dynamic`` binarization, ``dequantize``); every evaluation, the
validation split included, sees one fixed draw of the same kind.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from ..checks import check_choice, check_float, check_int
from . import datasets, transforms
from .files import FILE_SETS, ImageFiles, open_images

__all__ = ["BINARIZE", "EVAL_SEED", "data_config", "load_split", "split_validation", "Split"]

BINARIZE = ("threshold", "static", "dynamic", "dequantize", "none")
EVAL_SEED = 12345  # the fixed draw that evaluates runs trained on re-drawn minibatches


def data_config(
    name: str = "digits",
    *,
    path: str | None = None,
    binarize: str | None = None,
    seed: int = 0,
    val_fraction: float = 0.0,
    n: int | None = None,
    default_binarize: str = "threshold",
) -> dict:
    """Check and complete the data part of a run's configuration.

    Args:
        name: a data set of :func:`pgen.data.names`.
        path: the folder of a set read from local files (``mnist``, ``fashion_mnist``,
            ``cifar10``, ``image_folder``; :mod:`pgen.data.files`).
        binarize: images: one of :data:`BINARIZE`; ``None`` takes ``default_binarize``
            (a model family's choice: ``dequantize`` for densities on grey levels).
        seed: toys: their seed; images: the seed of static binarization.
        val_fraction: share of the training split held out for validation.
        n: toys: number of points.
    """
    meta = datasets.info(name)
    if name in FILE_SETS and path is None:
        raise ValueError(
            f"data {name!r} is read from local files and needs path= (--data-path): "
            + (
                "a directory of MNIST-format IDX files or an .npz file"
                if name == "mnist"
                else f"its folder ({meta.source})"
            )
            + " (pgen never downloads); for bundled data use 'mnist5k' or 'digits'"
        )
    if path is not None and name not in FILE_SETS:
        raise ValueError(
            f"path= (--data-path) is for data read from local files ({', '.join(FILE_SETS)}), not {name!r}"
        )
    meta = datasets.info(name, path)
    if binarize is None:
        binarize = default_binarize if meta.kind == "image" else "none"
    binarize = check_choice("binarize", binarize, BINARIZE)
    if meta.kind != "image" and binarize != "none":
        raise ValueError(f"binarize={binarize!r} applies to image data, not to {name!r}")
    if meta.kind == "image" and n is not None:
        raise ValueError(f"n applies to toy data sets, not to the image set {name!r}")
    return {
        "name": name,
        "path": None if path is None else str(path),
        "binarize": binarize,
        "seed": check_int("seed", seed, minimum=0),
        "val_fraction": check_float("val_fraction", val_fraction, nonnegative=True, below=1.0),
        "n": None if n is None else check_int("n", n, minimum=1),
    }


class Split:
    """A loaded split: ``x``, ``y``, and for training data the ``transform`` that redraws
    each minibatch (``None`` if fixed) with ``fixed``, the one-draw version of it that
    evaluation and validation use."""

    def __init__(self, x, y, transform: Callable | None = None, fixed: Callable | None = None):
        self.x, self.y, self.transform, self.fixed = x, y, transform, fixed

    def __iter__(self):  # (x, y, transform), the form run code unpacks
        return iter((self.x, self.y, self.transform))


def _fixed_dequantize(x, levels):
    return transforms.dequantize(x, levels=levels, generator=torch.Generator().manual_seed(EVAL_SEED))


def load_split(cfg: dict, split: str, *, stream: bool = False) -> Split:
    """Load a run's ``split`` (``"train"`` or ``"test"``) as configured: images scaled to
    [0, 1] and binarized or dequantized. ``dynamic`` and ``dequantize`` re-draw every
    training minibatch (``Split.transform``); other splits get one fixed draw.

    With ``stream``, the training split of a set read from local files stays on disk
    (:class:`~pgen.data.files.ImageFiles`, read a minibatch at a time) unless its
    treatment needs every image at once (``static`` binarization)."""
    meta = datasets.info(cfg["name"], cfg.get("path"))
    if meta.kind != "image":
        x, y = datasets.load(cfg["name"], split, n=cfg.get("n"), seed=cfg["seed"])
        return Split(x, y)
    mode = cfg["binarize"]
    on_disk = stream and split == "train" and cfg["name"] in FILE_SETS and mode != "static"
    if on_disk and mode in ("none", "threshold"):
        files = open_images(cfg["name"], split, path=cfg["path"], threshold=mode == "threshold")
        return Split(files, files.labels)
    if mode in ("dequantize", "dynamic"):
        if on_disk:
            files = open_images(cfg["name"], split, path=cfg["path"])
            x, y = files, files.labels
        else:
            x, y = datasets.load(cfg["name"], split, path=cfg["path"])
        if mode == "dequantize":  # grey levels (k + u) / levels: a density model's data (Theis et al. 2016)
            train = functools.partial(transforms.dequantize, levels=meta.levels)
            fixed = functools.partial(_fixed_dequantize, levels=meta.levels)
        else:
            train = transforms.dynamic_binarize
            fixed = functools.partial(transforms.static_binarize, seed=EVAL_SEED)
        return Split(x, y, train, fixed) if split == "train" else Split(fixed(x), y)
    x, y = datasets.load(
        cfg["name"], split, path=cfg["path"], seed=cfg["seed"], binarize=None if mode == "none" else mode
    )
    return Split(x, y)


def split_validation(data: Split, fraction: float, seed: int):
    """``((x, y), validation)``: the training part and a held-out ``fraction`` (``None``
    for 0), the latter in its fixed evaluation form (one binarization or dequantization
    draw, as the test split)."""
    x, y = data.x, data.y
    if fraction == 0.0:
        return (x, y), None
    k = max(1, int(round(fraction * len(x))))
    if k >= len(x):
        raise ValueError(
            f"val_fraction={fraction} of {len(x)} training example(s) holds out {k}, leaving none to "
            "train on; use a smaller val_fraction or more data"
        )
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    val, keep = perm[:k], perm[k:]
    vx = x[val] if data.fixed is None else data.fixed(x[val])
    train_x = x.subset(keep) if isinstance(x, ImageFiles) else x[keep]  # files stay on disk
    return (train_x, y[keep]), (vx, y[val])
