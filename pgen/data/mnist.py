"""MNIST-format data from local files: IDX (optionally gzipped) or ``.npz``.

pgen never downloads. Point ``pgen.data.load("mnist", path=...)`` at either

* a directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``):
  the layout of MNIST, Fashion-MNIST, KMNIST and EMNIST; or
* an ``.npz`` file (or a directory holding ``mnist.npz``) with arrays ``x_train``,
  ``y_train``, ``x_test``, ``y_test``, as Keras distributes it.

The IDX format (LeCun et al.): two zero bytes, a type code, the number of dimensions,
then each dimension as a big-endian 32-bit integer, then the data in C order.
"""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["read_idx", "load_mnist_files"]

_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_SPLIT_PREFIX = {"train": "train", "test": "t10k"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (``.gz`` allowed) into a numpy array.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the header is not IDX, or the data is truncated or too long.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file {path} does not exist")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"cannot read IDX file {path}: {error}") from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(
            f"{path} is not an IDX file: it must start with two zero bytes and a type code "
            f"in {sorted(hex(k) for k in _IDX_TYPES)}"
        )
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated: its header needs {header} bytes, found {len(raw)}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header
    if found != expected:
        state = "truncated" if found < expected else "longer than its header says"
        raise ValueError(f"{path} is {state}: shape {shape} needs {expected} bytes of data, found {found}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _check_pair(images: np.ndarray, labels: np.ndarray, source: str) -> None:
    if images.ndim != 3:
        raise ValueError(f"{source}: images must have shape (N, rows, cols), got {images.shape}")
    if images.shape[0] == 0:
        raise ValueError(f"{source}: holds no images (shape {images.shape})")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{source}: labels must be integers, got dtype {labels.dtype}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"{source}: {images.shape[0]} images but labels of shape {labels.shape}")


def load_mnist_files(path: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Load one split of an MNIST-format data set from local files.

    Args:
        path: a directory of IDX files, an ``.npz`` file, or a directory holding ``mnist.npz``.
        split: ``"train"`` or ``"test"``.

    Returns:
        ``(images, labels)``: ``images`` of shape ``(N, rows, cols)`` with their stored
        values (uint8 for MNIST) and integer ``labels`` of shape ``(N,)``.
    """
    path = Path(path).expanduser()
    if path.is_dir() and (path / "mnist.npz").is_file():
        path = path / "mnist.npz"
    if path.is_file() and path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                keys = (f"x_{split}", f"y_{split}")
                missing = [k for k in keys if k not in archive.files]
                if missing:
                    raise ValueError(
                        f"{path} has arrays {sorted(archive.files)}; the {split} split needs {list(keys)}"
                    )
                images, labels = archive[keys[0]], archive[keys[1]]
        except (OSError, EOFError, zipfile.BadZipFile) as error:
            reason = f"{type(error).__name__}: {error}"
            raise ValueError(f"cannot read {path} as an .npz archive ({reason})") from error
        except ValueError as error:  # e.g. object arrays, which would need pickle
            raise ValueError(f"cannot read {path}: {error}") from error
        _check_pair(images, labels, str(path))
        return images, labels
    if not path.is_dir():
        raise FileNotFoundError(
            f"{path} is neither a directory of IDX files nor an .npz file. pgen never "
            "downloads: put train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (optionally .gz) in a directory, "
            "or an mnist.npz, and pass its path"
        )
    prefix = _SPLIT_PREFIX[split]
    image_file = _find(path, f"{prefix}-images-idx3-ubyte")
    label_file = _find(path, f"{prefix}-labels-idx1-ubyte")
    if image_file is None or label_file is None:
        raise FileNotFoundError(
            f"{path} lacks the {split} files {prefix}-images-idx3-ubyte and "
            f"{prefix}-labels-idx1-ubyte (optionally .gz); pgen never downloads them"
        )
    images, labels = read_idx(image_file), read_idx(label_file)
    _check_pair(images, labels, f"{image_file} and {label_file}")
    return images, labels
