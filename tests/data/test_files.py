"""Image sets on disk (pgen.data.files): each format written here, read back exactly,
memory-mapped, refused when truncated or foreign, and trained on by pgen.fit."""

import json
import pickle

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch

import pgen
from pgen.data import load, open_images
from pgen.data.files import CIFAR10_RECORD

from .test_datasets import _mnist_dir, _write_idx


def _cifar_dir(root, n_train=(3, 2, 2, 2, 2), n_test=4, seed=0):
    """CIFAR-10's binary layout: records of 1 label byte + 3,072 pixel bytes."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for fname, n in zip(names, (*n_train, n_test), strict=True):
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        pixels = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        records = np.concatenate([labels[:, None], pixels.reshape(n, -1)], 1)
        (root / fname).write_bytes(records.tobytes())
        out[fname] = (pixels, labels)
    return out


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_sets_are_memory_mapped_and_read_exactly(tmp_path, name):
    arrays = _mnist_dir(tmp_path, gz=False)
    files = open_images(name, "train", path=tmp_path)
    images, labels = arrays["train"]
    assert files.memory_mapped and len(files) == 12 and files.shape == (12, 784)
    assert files.image_shape == (1, 28, 28)
    torch.testing.assert_close(files[:], torch.tensor(images.reshape(12, -1) / 255.0, dtype=torch.float32))
    assert torch.equal(files.labels, torch.tensor(labels, dtype=torch.int64))
    idx = torch.tensor([5, 0, 11, 5])
    torch.testing.assert_close(files.index_select(0, idx), files[:][idx])
    torch.testing.assert_close(files[-1], files[:][11])
    x, y = load(name, "test", path=tmp_path)  # load reads the same files into memory
    torch.testing.assert_close(x, torch.tensor(arrays["t10k"][0].reshape(5, -1) / 255.0, dtype=torch.float32))
    with pytest.raises(IndexError, match="index 12 is out of range for .* of 12 images"):
        files[[12]]
    part = files.subset([7, 2, 9])  # still on disk, re-indexed from 0
    assert len(part) == 3 and part.labels.tolist() == files.labels[[7, 2, 9]].tolist()
    torch.testing.assert_close(part[1:], files[:][[2, 9]])


def test_gzipped_idx_is_read_into_memory(tmp_path):
    arrays = _mnist_dir(tmp_path, gz=True)
    files = open_images("fashion_mnist", "train", path=tmp_path)
    assert not files.memory_mapped
    torch.testing.assert_close(
        files[:], torch.tensor(arrays["train"][0].reshape(12, -1) / 255.0, dtype=torch.float32)
    )


def test_cifar10_binary_batches_in_order(tmp_path):
    written = _cifar_dir(tmp_path / "cifar-10-batches-bin")
    files = open_images("cifar10", "train", path=tmp_path, flatten=False)  # finds the sub-folder
    pixels = np.concatenate([written[f"data_batch_{i}.bin"][0] for i in range(1, 6)])
    labels = np.concatenate([written[f"data_batch_{i}.bin"][1] for i in range(1, 6)])
    assert files.memory_mapped and files.shape == (11, 3, 32, 32)
    torch.testing.assert_close(files[:], torch.tensor(pixels / 255.0, dtype=torch.float32))
    assert files.labels.tolist() == labels.tolist()
    # an index across batch files, in any order
    idx = np.array([10, 0, 3, 4, 2, 7])
    torch.testing.assert_close(files[idx], torch.tensor(pixels[idx] / 255.0, dtype=torch.float32))
    x, y = load("cifar10", "test", path=tmp_path / "cifar-10-batches-bin")
    assert x.shape == (4, 3072) and y.tolist() == written["test_batch.bin"][1].tolist()
    assert pgen.data.info("cifar10").image_shape == (3, 32, 32)


def test_cifar10_truncated_foreign_and_pickled_files_are_refused(tmp_path):
    root = tmp_path / "bin"
    _cifar_dir(root)
    batch = root / "data_batch_3.bin"
    batch.write_bytes(batch.read_bytes()[:-100])
    with pytest.raises(
        ValueError,
        match=r"data_batch_3.bin is not a CIFAR-10 binary batch: .* not a whole number of 3073-byte",
    ):
        open_images("cifar10", path=root)
    batch.write_bytes(bytes([200]) + bytes(CIFAR10_RECORD - 1))  # a label byte of 200
    with pytest.raises(ValueError, match="label 0..9, found 200"):
        open_images("cifar10", path=root)
    (root / "test_batch.bin").unlink()
    with pytest.raises(FileNotFoundError, match="lacks test_batch.bin.*never downloads"):
        open_images("cifar10", "test", path=root)
    py = tmp_path / "py"
    py.mkdir()
    (py / "data_batch_1").write_bytes(pickle.dumps({"data": [1]}))
    with pytest.raises(ValueError, match="python version .* unpickling a file runs whatever code"):
        open_images("cifar10", path=py)


def test_foreign_and_truncated_idx_files_are_refused(tmp_path):
    _mnist_dir(tmp_path, gz=False)
    images = tmp_path / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-1])
    with pytest.raises(
        ValueError, match="train-images-idx3-ubyte is truncated: shape \\(12, 28, 28\\) needs 9408 bytes"
    ):
        open_images("mnist", path=tmp_path)
    images.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(ValueError, match="is not an IDX file"):
        open_images("fashion_mnist", path=tmp_path)
    _write_idx(images, np.zeros((12, 28, 28), np.float32), 0x0D)
    with pytest.raises(ValueError, match="expected 8-bit images"):
        open_images("mnist", path=tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        open_images("mnist", path=tmp_path / "absent")
    with pytest.raises(ValueError, match="name must be one of"):
        open_images("cifar100", path=tmp_path)


def _png_folder(root, sizes, mode="L"):
    from PIL import Image

    rng = np.random.default_rng(0)
    kept = {}
    for cls, n in sizes.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            shape = (6, 5) if mode == "L" else (6, 5, 3)
            array = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(array, mode=mode).save(root / cls / f"{i:02d}.png")
            kept[(cls, i)] = array
    return kept


def test_an_image_folder_is_decoded_on_demand_with_a_fixed_split(tmp_path):
    kept = _png_folder(tmp_path, {"cat": 10, "dog": 10})
    train = open_images("image_folder", "train", path=tmp_path)
    test = open_images("image_folder", "test", path=tmp_path)
    assert (len(train), len(test)) == (18, 2) and train.image_shape == (1, 6, 5)
    assert sorted(test.labels.tolist()) == [0, 1]  # 10% of each class held out
    # every image appears once over the two splits, with its class as label
    seen = {
        (int(lab), tuple(img.tolist()))
        for f in (train, test)
        for img, lab in zip(f[:], f.labels, strict=True)
    }
    truth = {
        (int(cls == "dog"), tuple((a.reshape(-1) / 255.0).astype(np.float32).tolist()))
        for (cls, _), a in kept.items()
    }
    assert seen == truth
    meta = pgen.data.info("image_folder", path=tmp_path)
    assert meta.image_shape == (6, 5) and meta.num_classes == 2


def test_an_image_folder_refuses_mixed_sizes_and_unreadable_files(tmp_path):
    from PIL import Image

    _png_folder(tmp_path, {"a": 3, "b": 3}, mode="RGB")
    Image.fromarray(np.zeros((7, 5, 3), np.uint8)).save(tmp_path / "b" / "09.png")
    files = open_images("image_folder", "train", path=tmp_path)
    assert files.image_shape == (3, 6, 5)
    with pytest.raises(ValueError, match=r"09.png has shape \(7, 5\) .* must have the same size"):
        files[:]
    (tmp_path / "b" / "09.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot read image .*09.png"):
        open_images("image_folder", "train", path=tmp_path)[:]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="has no class folders"):
        open_images("image_folder", path=empty)


def test_fit_on_files_gives_the_losses_of_fit_on_tensors(tmp_path):
    """Minibatches read from disk are the same minibatches: the same seed gives the same
    losses and parameters as the tensors in memory, and resume checks the files."""
    _cifar_dir(tmp_path, n_train=(20, 20, 20, 20, 20))
    files = open_images("cifar10", path=tmp_path)
    x, y = files.tensors()
    assert x.shape == (100, 3072)

    def model(x, y=None):
        loc = pyro.param("loc", torch.zeros(3072))
        with pyro.plate("data", len(x)):
            pyro.sample("obs", dist.Normal(loc, 1.0).to_event(1), obs=x)

    def guide(x, y=None):
        pass

    kw = dict(steps=7, batch_size=32, lr=0.05, progress=False, seed=3)
    from_disk = pgen.fit(model, guide, files, checkpoint_dir=tmp_path / "run", **kw)
    in_memory = pgen.fit(model, guide, x, **kw)
    assert len(from_disk.losses) == 7
    np.testing.assert_array_equal(from_disk.losses, in_memory.losses)
    torch.testing.assert_close(from_disk.param_state["params"]["loc"], in_memory.param_state["params"]["loc"])
    # resume checks the files: other pixels are another data set
    _cifar_dir(tmp_path, n_train=(20, 20, 20, 20, 20), seed=1)
    with pytest.raises(ValueError, match="cannot resume .* data_sha1"):
        pgen.fit(
            model,
            guide,
            open_images("cifar10", path=tmp_path),
            checkpoint_dir=tmp_path / "run",
            resume=True,
            **{**kw, "steps": 9},
        )


def test_the_cli_trains_on_cifar10_files_read_a_minibatch_at_a_time(tmp_path, capsys, monkeypatch):
    from pgen.cli import main
    from pgen.data.files import ImageFiles

    reads = []
    select = ImageFiles.index_select
    monkeypatch.setattr(
        ImageFiles, "index_select", lambda self, d, i: reads.append(len(i)) or select(self, d, i)
    )
    _cifar_dir(tmp_path / "c", n_train=(8, 8, 8, 8, 8), n_test=10)
    out = tmp_path / "run"
    args = ["train", "vae", "--data", "cifar10", "--data-dir", str(tmp_path / "c"), "--epochs", "1"]
    assert (
        main([*args, "--batch-size", "16", "--val-fraction", "0.2", "--out", str(out), "--no-progress"]) == 0
    )
    assert reads == [16, 16]  # 32 of the 40 images train (8 held out), from the files, per minibatch
    config = (out / "config.json").read_text()
    assert '"cifar10"' in config and str(tmp_path / "c") in config
    assert (out / "reconstructions.png").is_file()
    assert main(["train", "vae", "--data", "cifar10", "--out", str(tmp_path / "r2"), "--no-progress"]) != 0
    assert "needs path= (--data-path)" in capsys.readouterr().err


def test_a_unet_diffusion_model_trains_on_cifar10_files(tmp_path):
    """Colour images end to end: the data's (3, 32, 32) layout reaches the U-Net."""
    from pgen.cli import main

    _cifar_dir(tmp_path / "c", n_train=(4, 4, 4, 4, 4), n_test=4)
    out = tmp_path / "run"
    args = [
        "train",
        "diffusion",
        "--data",
        "cifar10",
        "--data-dir",
        str(tmp_path / "c"),
        "--denoiser",
        "unet",
    ]
    args += ["--timesteps", "20", "--epochs", "1", "--batch-size", "10", "--out", str(out)]
    assert main([*args, "--no-progress", "--no-figures"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model_args"]["denoiser"] == "unet"
    from pgen.runs import load_run_model

    model = load_run_model(out)
    assert model.image_shape == (3, 32, 32) and model.denoiser.in_channels == 3
