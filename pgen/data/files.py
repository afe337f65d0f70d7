r"""Image data sets from local files, read on demand so memory stays bounded.

pgen never downloads. Each reader checks a file's size against its header before
anything is read, refuses truncated and foreign files with the file's name and what was
expected, and keeps the pixels on disk: uncompressed files are memory-mapped
(``numpy.memmap``), so a minibatch reads only its own rows and the operating system's
page cache, not the process, holds the rest. Labels (a byte per image) are read whole.

=================== ========================================================= ============
name                files                                                     image
=================== ========================================================= ============
``mnist``           ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, 1 x 28 x 28
                    ``t10k-...`` (IDX; LeCun et al. 1998), or ``mnist.npz``
``fashion_mnist``   the same four IDX files (Xiao et al. 2017)                1 x 28 x 28
``cifar10``         the *binary* version: ``data_batch_1.bin`` ...           3 x 32 x 32
                    ``data_batch_5.bin``, ``test_batch.bin``, 10,000 records
                    of 1 label byte + 3,072 pixel bytes (R, G, B planes)
``image_folder``    ``root/<class>/*.png|jpg|...`` (one folder per class,     as found
                    sorted names are the labels), or ``root/train/<class>``
                    and ``root/test/<class>``
=================== ========================================================= ============

CIFAR-10's "python version" stores pickles, and unpickling a file runs whatever code it
names; pgen refuses it and says which version to get. Gzipped IDX files (``.gz``) cannot
be memory-mapped: they are decompressed into memory (gunzip them to map them). An image
folder is decoded file by file as minibatches ask for them (Pillow); its images must all
have the size and the number of channels of the first.

:class:`ImageFiles` is what :func:`open_images` returns and what :func:`pgen.fit` accepts
as ``data`` in place of a tensor: ``files[index]`` gives float images in [0, 1].
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["ImageFiles", "open_images", "FILE_SETS", "CIFAR10_RECORD"]

FILE_SETS = ("mnist", "fashion_mnist", "cifar10", "image_folder")
CIFAR10_RECORD = 1 + 3 * 32 * 32
_CIFAR10_FILES = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}
_IDX_PREFIX = {"train": "train", "test": "t10k"}
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


# --------------------------------------------------------------------------- readers


class _Rows:
    """Rows of one or more uint8 arrays of shape ``(n_i, C, H, W)`` as one sequence."""

    def __init__(self, arrays: list[np.ndarray]):
        self.arrays = arrays
        self.ends = np.cumsum([len(a) for a in arrays])

    def __len__(self) -> int:
        return int(self.ends[-1])

    def read(self, idx: np.ndarray) -> np.ndarray:
        if len(self.arrays) == 1:
            return np.asarray(self.arrays[0][idx])
        which = np.searchsorted(self.ends, idx, side="right")
        starts = np.concatenate([[0], self.ends[:-1]])
        out = np.empty((len(idx), *self.arrays[0].shape[1:]), dtype=np.uint8)
        for k in np.unique(which):
            sel = which == k
            out[sel] = self.arrays[k][idx[sel] - starts[k]]
        return out


class _Subset:
    """Some rows of another reader, in a given order."""

    def __init__(self, rows, idx: np.ndarray):
        self.rows, self.idx = rows, np.asarray(idx, dtype=np.int64)
        self.arrays = getattr(rows, "arrays", None)

    def __len__(self) -> int:
        return len(self.idx)

    def read(self, idx: np.ndarray) -> np.ndarray:
        return self.rows.read(self.idx[idx])


class _Folder:
    """Image files decoded on demand, each checked against the first's shape."""

    def __init__(self, paths: list[Path], shape: tuple[int, int, int], mode: str):
        self.paths, self.shape, self.mode = paths, shape, mode

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, idx: np.ndarray) -> np.ndarray:
        return np.stack([_decode(self.paths[i], self.mode, self.shape) for i in idx])


def _decode(path: Path, mode: str, shape: tuple[int, int, int]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert(mode), dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as error:
        raise ValueError(f"cannot read image {path}: {error}") from error
    array = array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
    if array.shape != shape:
        raise ValueError(
            f"image {path} has shape {array.shape[1:]} ({array.shape[0]} channel(s)); the folder's "
            f"first image has {shape[1:]} ({shape[0]}): every image of an image folder must have "
            "the same size"
        )
    return array


# --------------------------------------------------------------------------- the data set


@dataclass
class ImageFiles:
    """Images kept on disk, with their labels in memory.

    Indexing works as on a tensor of shape ``(N, C*H*W)`` (``flatten=True``) or
    ``(N, C, H, W)``: ``files[i]``, ``files[a:b]``, ``files[index_tensor]`` and
    ``files.index_select(0, index)`` read those images and return them as floats in
    [0, 1] (the stored value divided by 255), optionally thresholded at 0.5.

    Attributes:
        name: the data set's name.
        split: ``"train"`` or ``"test"``.
        labels: int64 tensor of shape ``(N,)``.
        image_shape: ``(C, H, W)``.
        source: the files, in words.
    """

    name: str
    split: str
    rows: object
    labels: torch.Tensor
    image_shape: tuple[int, int, int]
    source: str
    flatten: bool = True
    threshold: bool = False
    levels: int = 256
    device: torch.device | None = None  # where minibatches go (pgen.fit sets it)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> torch.Size:
        event = (int(np.prod(self.image_shape)),) if self.flatten else self.image_shape
        return torch.Size((len(self), *event))

    @property
    def dtype(self) -> torch.dtype:
        return torch.get_default_dtype()

    def dim(self) -> int:
        return len(self.shape)

    @property
    def memory_mapped(self) -> bool:
        """True when every pixel stays on disk until a minibatch reads it."""
        arrays = getattr(self.rows, "arrays", None)
        if arrays is None:
            return isinstance(self.rows, _Folder)
        return all(isinstance(a, np.memmap) for a in arrays)

    def _indices(self, key) -> np.ndarray:
        n = len(self)
        if isinstance(key, slice):
            return np.arange(n)[key]
        if torch.is_tensor(key):
            key = key.detach().cpu().numpy()
        idx = np.asarray(key)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise IndexError(f"a boolean index of {self.name} needs shape ({n},), got {idx.shape}")
            return np.flatnonzero(idx)
        if not np.issubdtype(idx.dtype, np.integer):
            raise IndexError(f"{self.name} is indexed by integers, slices or booleans, got {idx.dtype}")
        idx = idx.reshape(-1)
        bad = (idx < -n) | (idx >= n)
        if bad.any():
            raise IndexError(f"index {int(idx[bad][0])} is out of range for {self.name} of {n} images")
        return np.where(idx < 0, idx + n, idx)

    def __getitem__(self, key) -> torch.Tensor:
        single = isinstance(key, (int, np.integer))
        idx = self._indices([key] if single else key)
        pixels = self.rows.read(idx)
        x = torch.from_numpy(pixels.astype(np.float32) / 255.0).to(torch.get_default_dtype())
        if self.threshold:
            x = (x > 0.5).to(x.dtype)
        x = x.reshape(len(idx), -1) if self.flatten else x.reshape(len(idx), *self.image_shape)
        if self.device is not None:
            x = x.to(self.device)
        return x[0] if single else x

    def subset(self, index) -> ImageFiles:
        """The images at ``index`` (e.g. a training part without its validation
        examples), still on disk."""
        idx = self._indices(index)
        labels = self.labels[torch.as_tensor(idx, device=self.labels.device)]
        return dataclasses.replace(self, rows=_Subset(self.rows, idx), labels=labels)

    def to(self, device) -> ImageFiles:
        """The same files, with minibatches delivered on ``device`` (labels too)."""
        device = torch.device(device)
        return dataclasses.replace(self, device=device, labels=self.labels.to(device))

    def index_select(self, dim: int, index: torch.Tensor) -> torch.Tensor:
        if dim != 0:
            raise ValueError("ImageFiles selects examples (dim 0) only")
        return self[index]

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Everything read into memory: ``(x, y)`` as :func:`pgen.data.load` returns."""
        return self[:], self.labels

    def fingerprint(self) -> str:
        """A cheap digest for resume checks: name, split, shape, labels and the pixels
        of up to 64 images spread over the set."""
        h = hashlib.sha1(f"{self.name}{self.split}{tuple(self.shape)}{self.threshold}".encode())
        h.update(self.labels.cpu().numpy().tobytes())
        n = len(self)
        h.update(self.rows.read(np.unique(np.linspace(0, n - 1, min(n, 64)).astype(np.int64))).tobytes())
        return h.hexdigest()


# --------------------------------------------------------------------------- IDX


def _idx_header(path: Path, head: bytes) -> tuple[np.dtype, tuple[int, ...], int]:
    from .mnist import _IDX_TYPES

    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_TYPES:
        raise ValueError(
            f"{path} is not an IDX file: it must start with two zero bytes and a type code in "
            f"{sorted(hex(k) for k in _IDX_TYPES)}, found bytes {list(head[:4])}"
        )
    ndim = head[3]
    size = 4 + 4 * ndim
    if len(head) < size:
        raise ValueError(f"{path} is truncated: its header needs {size} bytes, found {len(head)}")
    shape = tuple(int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return _IDX_TYPES[head[2]], shape, size


def _open_idx(path: Path) -> np.ndarray:
    """An IDX file as an array: memory-mapped when it is not gzipped."""
    if path.suffix == ".gz":
        from .mnist import read_idx

        return read_idx(path)
    with open(path, "rb") as f:
        head = f.read(4 + 4 * 255)
    dtype, shape, offset = _idx_header(path, head)
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = path.stat().st_size - offset
    if found != expected:
        state = "truncated" if found < expected else "longer than its header says"
        raise ValueError(f"{path} is {state}: shape {shape} needs {expected} bytes of data, found {found}")
    if expected == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)


def _open_idx_set(name: str, directory: Path, split: str) -> tuple[_Rows, np.ndarray, str]:
    from .mnist import _find

    prefix = _IDX_PREFIX[split]
    image_file = _find(directory, f"{prefix}-images-idx3-ubyte")
    label_file = _find(directory, f"{prefix}-labels-idx1-ubyte")
    if image_file is None or label_file is None:
        raise FileNotFoundError(
            f"{directory} lacks the {name} {split} files {prefix}-images-idx3-ubyte and "
            f"{prefix}-labels-idx1-ubyte (optionally .gz); pgen never downloads them"
        )
    images, labels = _open_idx(image_file), np.asarray(_open_idx(label_file))
    source = f"{image_file} and {label_file}"
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"{image_file}: expected 8-bit images of shape (N, rows, cols), got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{source}: {len(images)} images but labels of shape {labels.shape}")
    if len(images) == 0:
        raise ValueError(f"{image_file} holds no images")
    return _Rows([images[:, None]]), labels, source


# --------------------------------------------------------------------------- CIFAR-10


def _open_cifar10(directory: Path, split: str) -> tuple[_Rows, np.ndarray, str]:
    for sub in ("cifar-10-batches-bin",):
        if not (directory / _CIFAR10_FILES[split][0]).is_file() and (directory / sub).is_dir():
            directory = directory / sub
    if (directory / "data_batch_1").is_file() or (directory / "cifar-10-batches-py").is_dir():
        raise ValueError(
            f"{directory} holds CIFAR-10's python version (pickled batches). pgen reads only the "
            "binary version (cifar-10-binary.tar.gz: data_batch_1.bin ... test_batch.bin), "
            "because unpickling a file runs whatever code it names"
        )
    arrays, labels = [], []
    for fname in _CIFAR10_FILES[split]:
        path = directory / fname
        if not path.is_file():
            raise FileNotFoundError(
                f"{directory} lacks {fname}: CIFAR-10's binary version has data_batch_1.bin ... "
                "data_batch_5.bin and test_batch.bin; pgen never downloads them"
            )
        size = path.stat().st_size
        if size == 0 or size % CIFAR10_RECORD:
            raise ValueError(
                f"{path} is not a CIFAR-10 binary batch: {size} bytes is not a whole number of "
                f"{CIFAR10_RECORD}-byte records (1 label byte + 3,072 pixel bytes); truncated or "
                "another format"
            )
        records = np.memmap(path, dtype=np.uint8, mode="r", shape=(size // CIFAR10_RECORD, CIFAR10_RECORD))
        label = np.asarray(records[:, 0]).astype(np.int64)
        if label.max() > 9:
            raise ValueError(
                f"{path} is not a CIFAR-10 binary batch: a record's first byte is a label 0..9, "
                f"found {int(label.max())} (CIFAR-100's binary files have two label bytes)"
            )
        arrays.append(records[:, 1:].reshape(len(records), 3, 32, 32))
        labels.append(label)
    return _Rows(arrays), np.concatenate(labels), f"{directory} ({', '.join(_CIFAR10_FILES[split])})"


# --------------------------------------------------------------------------- image folder


def _class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _open_folder(root: Path, split: str) -> tuple[_Folder, np.ndarray, str]:
    from .datasets import _stratified_split

    has_splits = (root / "train").is_dir() and (root / "test").is_dir()
    base = root / split if has_splits else root
    classes = _class_folders(base)
    if not classes:
        raise ValueError(
            f"{base} has no class folders: an image folder holds one folder per class "
            "(root/<class>/*.png), or root/train/<class> and root/test/<class>"
        )
    paths, labels = [], []
    for label, folder in enumerate(classes):
        found = sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file())
        paths += found
        labels += [label] * len(found)
    if not paths:
        raise ValueError(
            f"{base}: the class folders {[c.name for c in classes]} hold no images "
            f"({sorted(_IMAGE_SUFFIXES)})"
        )
    labels = np.asarray(labels, dtype=np.int64)
    if not has_splits:  # the same fixed split as the bundled sets: 10% of each class held out
        keep = _stratified_split(labels, split)
        paths, labels = [paths[i] for i in keep], labels[keep]
    from PIL import Image

    with Image.open(paths[0]) as first:
        mode = "L" if first.mode in ("1", "L", "I", "I;16", "F") else "RGB"  # grey, else RGB
    first_array = _decode(paths[0], mode, _probe_shape(paths[0], mode))
    shown = ", ".join(c.name for c in classes[:5]) + (" ..." if len(classes) > 5 else "")
    where = f"{base} ({len(classes)} classes: {shown})"
    return _Folder(paths, first_array.shape, mode), labels, where


def _probe_shape(path: Path, mode: str) -> tuple[int, int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, UnidentifiedImageError) as error:
        raise ValueError(f"cannot read image {path}: {error}") from error
    return (1 if mode == "L" else 3, height, width)


# --------------------------------------------------------------------------- entry point


def open_images(
    name: str, split: str = "train", *, path, flatten: bool = True, threshold: bool = False
) -> ImageFiles:
    """Open a data set of image files for reading on demand (see the module table).

    Args:
        name: ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"`` or ``"image_folder"``.
        split: ``"train"`` or ``"test"``.
        path: the folder holding the files (for ``mnist`` also an ``.npz`` file, read
            into memory).
        flatten: images as ``(C*H*W,)`` vectors, else ``(C, H, W)``.
        threshold: binarize each image at 0.5 as it is read.

    Raises:
        FileNotFoundError: the folder or a file it needs is missing (named).
        ValueError: a truncated or foreign file (named, with what was expected).
    """
    from ..checks import check_choice

    name = check_choice("name", name, FILE_SETS)
    split = check_choice("split", split, ("train", "test"))
    if path is None:
        raise ValueError(f"{name} is read from local files: pass path= (pgen never downloads)")
    root = Path(path).expanduser()
    if name == "mnist" and (root.suffix == ".npz" or (root / "mnist.npz").is_file()):
        from .mnist import load_mnist_files

        images, labels = load_mnist_files(root, split)
        rows, source = _Rows([np.asarray(images, dtype=np.uint8)[:, None]]), str(root)
    elif not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; {name} is read from a folder of local files")
    elif name in ("mnist", "fashion_mnist"):
        rows, labels, source = _open_idx_set(name, root, split)
    elif name == "cifar10":
        rows, labels, source = _open_cifar10(root, split)
    else:
        rows, labels, source = _open_folder(root, split)
    first = rows.read(np.array([0]))
    labels = torch.as_tensor(np.asarray(labels).astype(np.int64))
    return ImageFiles(
        name,
        split,
        rows,
        labels,
        tuple(int(d) for d in first.shape[1:]),
        source,
        flatten=flatten,
        threshold=threshold,
    )
