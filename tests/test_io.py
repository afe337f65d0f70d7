"""Safe checkpoints: round trips, atomic writes, and every kind of bad file."""

import os
import pickle

import numpy as np
import pytest
import torch

import pgen
from pgen.io import CheckpointError, load, save

STATE = {
    "weights": torch.randn(3, 4),
    "half": torch.randn(5).to(torch.bfloat16),
    "mask": torch.tensor([True, False]),
    "scalar": torch.tensor(2.5),
    "nested": {"steps": 7, "lr": 1e-3, "name": "vae", "none": None, "flags": [True, False]},
    "pair": (1, "two"),
}


def test_round_trip(tmp_path):
    path = save(tmp_path / "sub" / "c.pt", STATE, kind="test")
    loaded = load(path, kind="test")
    for key in ("weights", "half", "mask", "scalar"):
        assert torch.equal(loaded[key], STATE[key]) and loaded[key].dtype == STATE[key].dtype
    assert loaded["nested"] == STATE["nested"] and tuple(loaded["pair"]) == (1, "two")
    assert [p.name for p in path.parent.iterdir()] == ["c.pt"]  # no temporary files left


class _Boom(Exception):
    pass


@pytest.mark.parametrize("interrupt", [_Boom, KeyboardInterrupt])
def test_a_crash_mid_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch, interrupt):
    path = save(tmp_path / "c.pt", {"v": torch.ones(3)}, kind="test")
    before = path.read_bytes()
    real_save = torch.save

    def crash(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.truncate(100)  # half-written
        raise interrupt("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(interrupt):
        save(path, {"v": torch.zeros(3)}, kind="test")
    assert path.read_bytes() == before
    assert torch.equal(load(path, kind="test")["v"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt does not exist"):
        load(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="is a directory"):
        load(tmp_path)


def test_truncated_empty_and_garbage_files(tmp_path):
    good = save(tmp_path / "good.pt", STATE, kind="test").read_bytes()
    for name, content in [
        ("half.pt", good[: len(good) // 2]),
        ("empty.pt", b""),
        ("garbage.pt", bytes(np.random.default_rng(0).integers(0, 256, 700, dtype=np.uint8))),
    ]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match=name):
            load(tmp_path / name)


def test_corrupted_tensor_bytes_are_detected(tmp_path):
    path = save(tmp_path / "c.pt", {"w": torch.zeros(4096)}, kind="test")
    raw = bytearray(path.read_bytes())
    start = raw.find(bytes(4096 * 4)[:512])  # inside the zeros of the tensor's storage
    assert start > 0
    raw[start + 100 : start + 104] = b"\x01\x02\x03\x04"
    path.write_bytes(bytes(raw))
    # torch itself loads this silently as wrong numbers; the checksum catches it
    assert not torch.equal(torch.load(path, weights_only=True)["state"]["w"], torch.zeros(4096))
    with pytest.raises(CheckpointError, match="corrupted: its contents do not match the checksum"):
        load(path)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["pickle", "torch"])
def test_a_file_with_code_in_it_is_refused_and_nothing_runs(tmp_path, writer):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    obj = {"__pgen__": {"format_version": 1}, "state": _Payload(marker)}
    if writer == "pickle":
        path.write_bytes(pickle.dumps(obj))
    else:
        torch.save(obj, path)
    with pytest.raises(CheckpointError, match="ran nothing from it"):
        load(path)
    assert not marker.exists()


def test_foreign_future_and_wrong_kind_files(tmp_path):
    torch.save({"model": torch.ones(2)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not a pgen checkpoint"):
        load(tmp_path / "plain.pt")
    save(tmp_path / "c.pt", {"a": 1}, kind="svi")
    payload = torch.load(tmp_path / "c.pt", weights_only=True)
    payload["__pgen__"]["format_version"] = 99
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format 99.*upgrade pgen"):
        load(tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="'svi' checkpoint; a 'model' checkpoint was expected"):
        load(tmp_path / "c.pt", kind="model")


def test_only_plain_data_can_be_saved(tmp_path):
    with pytest.raises(TypeError, match=r"state\['a'\]\['b'\] is a float64"):
        save(tmp_path / "c.pt", {"a": {"b": np.float64(1.0)}}, kind="test")
    with pytest.raises(TypeError, match="is a object"):
        save(tmp_path / "c.pt", {"a": object()}, kind="test")
    assert not (tmp_path / "c.pt").exists()


def test_model_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    vae = pgen.models.VAE(16, latent_dim=3, hidden=(8,), likelihood="gaussian")
    pgen.models.save_model(tmp_path / "vae.pt", vae)
    again = pgen.models.load_model(tmp_path / "vae.pt")
    assert again.config == vae.config
    z = torch.randn(5, 3)
    x = torch.randn(5, 16)
    torch.testing.assert_close(again.decode(z), vae.decode(z), rtol=0, atol=0)
    torch.testing.assert_close(again.encode(x), vae.encode(x), rtol=0, atol=0)
    with pytest.raises(CheckpointError, match="'model' checkpoint was expected"):
        save(tmp_path / "other.pt", {}, kind="svi")
        pgen.models.load_model(tmp_path / "other.pt")
