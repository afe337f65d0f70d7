"""device= of the engines (pgen.devices). On a CPU-only machine: the argument's checks,
device="cpu" changing nothing, and a checkpoint written on a GPU loading and resuming on
the CPU. The GPU tests run where torch sees one and skip elsewhere."""

import json

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch

import pgen
from pgen.devices import device_of, resolve_device, to_device
from pgen.inference.guides import make_guide

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only machine's errors")


def model(x):
    loc = pyro.sample("loc", dist.Normal(x.new_zeros(2), 1.0).to_event(1))
    with pyro.plate("data", len(x)):
        pyro.sample("obs", dist.Normal(loc, 1.0).to_event(1), obs=x)


def _x():
    return torch.randn(40, 2, generator=torch.Generator().manual_seed(0)) + 1.5


def test_devices_are_checked_by_name():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(
        ValueError, match=r"device='tpu' is not a device: use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'"
    ):
        resolve_device("tpu")
    with pytest.raises(TypeError, match="device must be a string"):
        resolve_device(0)
    with pytest.raises(ValueError, match="this machine has"):
        resolve_device(f"cuda:{torch.cuda.device_count() + 3}")


@cpu_only
def test_a_gpu_asked_for_on_a_cpu_machine_is_an_error_not_a_fallback():
    with pytest.raises(
        ValueError, match="device='cuda' asks for a GPU, but torch sees none here.*this machine has cpu"
    ):
        pgen.fit(model, make_guide("meanfield", model), _x(), steps=1, progress=False, device="cuda")
    with pytest.raises(ValueError, match="device='cuda:1' asks for a GPU"):
        pgen.sample(model, _x(), progress=False, device="cuda:1")


def test_to_device_and_device_of_walk_nested_arguments():
    value = {"a": (torch.zeros(1), [torch.ones(2), 3]), "b": "text"}
    moved = to_device(value, torch.device("cpu"))
    assert moved["b"] == "text" and moved["a"][1][1] == 3 and torch.equal(moved["a"][1][0], torch.ones(2))
    assert device_of((1, "x"), {"k": torch.zeros(1)}) == torch.device("cpu")


def test_device_cpu_gives_the_same_fit_and_the_same_chains():
    x = _x()
    kw = dict(steps=6, batch_size=10, progress=False, seed=2)
    a = pgen.fit(model, make_guide("meanfield", model), x, **kw)
    b = pgen.fit(model, make_guide("meanfield", model), x, device="cpu", **kw)
    np.testing.assert_array_equal(a.losses, b.losses)
    s = dict(chains=1, warmup=50, draws=50, progress=False, seed=1, warn=False)
    np.testing.assert_array_equal(
        pgen.sample(model, x, **s).draws_of("loc"), pgen.sample(model, x, device="cpu", **s).draws_of("loc")
    )


def test_a_checkpoint_written_on_a_gpu_resumes_on_the_cpu(tmp_path, monkeypatch):
    """The checkpoint's storages are tagged cuda:0, as torch.save writes them on a GPU;
    torch.load without a map_location cannot read it on a CPU-only machine, pgen can, and
    the resumed fit repeats the uninterrupted one's losses."""
    x = _x()
    kw = dict(batch_size=10, progress=False, seed=4)
    whole = pgen.fit(model, make_guide("fullrank", model), x, steps=8, **kw)
    run = tmp_path / "run"
    pgen.fit(model, make_guide("fullrank", model), x, steps=4, checkpoint_dir=run, **kw)
    path = run / "checkpoint.pt"
    payload = torch.load(path, weights_only=True)
    monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
    torch.save(payload, path)
    monkeypatch.undo()
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)  # what a map_location-less load does here
    resumed = pgen.fit(
        model, make_guide("fullrank", model), x, steps=8, checkpoint_dir=run, resume=True, **kw
    )
    np.testing.assert_array_equal(resumed.losses, whole.losses)


@cuda
def test_fit_on_the_gpu_keeps_everything_there_and_resumes_exactly(tmp_path):
    x = _x()
    kw = dict(batch_size=10, progress=False, seed=4, device="cuda")
    whole = pgen.fit(model, make_guide("fullrank", model), x, steps=8, **kw)
    assert all(v.device.type == "cuda" for v in whole.param_state["params"].values())
    run = tmp_path / "run"
    pgen.fit(model, make_guide("fullrank", model), x, steps=4, checkpoint_dir=run, **kw)
    resumed = pgen.fit(
        model, make_guide("fullrank", model), x, steps=8, checkpoint_dir=run, resume=True, **kw
    )
    np.testing.assert_array_equal(resumed.losses, whole.losses)
    on_cpu = pgen.fit(
        model,
        make_guide("fullrank", model),
        x,
        steps=8,
        checkpoint_dir=run,
        resume=True,
        **{**kw, "device": "cpu"},
    )
    assert len(on_cpu.losses) == 8  # the GPU's checkpoint continues on the CPU


@cuda
def test_nuts_on_the_gpu_matches_the_exact_posterior():
    x = _x()
    r = pgen.sample(model, x, chains=2, warmup=300, draws=500, progress=False, seed=0, device="cuda")
    # conjugate: posterior of loc is N(sum x / (n + 1), 1 / (n + 1)) per coordinate
    exact = (x.sum(0) / (len(x) + 1)).numpy()
    sd = (1 / (len(x) + 1)) ** 0.5
    assert np.all(np.abs(r.draws_of("loc").reshape(-1, 2).mean(0) - exact) < 5 * sd / np.sqrt(200))


def test_the_cli_takes_device_and_keeps_it_out_of_the_run(tmp_path, capsys):
    from pgen.cli import main

    run = tmp_path / "run"
    tiny = ["--data", "digits", "--epochs", "1", "--batch-size", "256", "--latent-dim", "2", "--no-figures"]
    assert main(["train", "vae", *tiny, "--out", str(run), "--no-progress", "--device", "cpu"]) == 0
    assert "device" not in (run / "config.json").read_text()  # resume may pick another device
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress", "--device", "auto"]) == 0
    metrics = run / "metrics.json"
    assert main(["evaluate", str(run), "--num-samples", "5", "--no-progress"]) == 0
    plain = json.loads(metrics.read_text())
    assert main(["evaluate", str(run), "--num-samples", "5", "--no-progress", "--device", "cpu"]) == 0
    on_cpu = json.loads(metrics.read_text())
    timed = {k for k in plain if "seconds" in k}
    assert {k: v for k, v in on_cpu.items() if k not in timed} == {
        k: v for k, v in plain.items() if k not in timed
    }
    assert main(["sample", str(run), "-n", "4", "--device", "cpu"]) == 0
    if not torch.cuda.is_available():
        assert (
            main(["train", "vae", *tiny, "--out", str(tmp_path / "gpu"), "--no-progress", "--device", "cuda"])
            == 2
        )
        assert "asks for a GPU" in capsys.readouterr().err
        assert not (tmp_path / "gpu").exists()  # refused before the folder was made
