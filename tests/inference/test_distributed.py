"""Data-parallel SVI on torch.distributed (gloo, two CPU processes spawned here) against
one process with the same global minibatches."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import pgen

ROOT = Path(__file__).resolve().parents[2]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **extra}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _one(out, *args):
    subprocess.run(
        [sys.executable, "-m", "tests.inference.ddp_worker", str(out), *map(str, args)],
        cwd=ROOT,
        env=_env(),
        check=True,
        timeout=300,
    )
    return torch.load(f"{out}.0.pt")


def _torchrun(module, *args, **env):
    """``python -m torch.distributed.run --nproc_per_node 2 -m module args`` (two gloo ranks)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command += ["--master_port", str(_port()), "-m", module, *map(str, args)]
    return subprocess.run(command, cwd=ROOT, env=_env(**env), capture_output=True, text=True, timeout=300)


def _output(run) -> str:
    """What a failed torchrun printed: the start and end of both streams."""
    err = run.stderr if len(run.stderr) < 6000 else run.stderr[:3000] + "\n...\n" + run.stderr[-3000:]
    return f"exit {run.returncode}\nstdout:\n{run.stdout[-2000:]}\nstderr:\n{err}"


def _two(out, *args, check=True, **env):
    run = _torchrun("tests.inference.ddp_worker", out, *args, **env)
    if check:
        assert run.returncode == 0, _output(run)
        return [torch.load(f"{out}.{r}.pt") for r in (0, 1)]
    return run


def test_two_gloo_ranks_repeat_one_process_and_resume_after_a_kill(tmp_path):
    """A point-mass guide makes the objective deterministic, so the split minibatches must
    give the one-process losses and parameters to float tolerance. Rank 1 then dies in the
    middle of a run; the resumed job continues from the last checkpoint to the same losses."""
    one = _one(tmp_path / "one", "map", 9)
    ranks = _two(tmp_path / "two", "map", 9)
    for r in ranks:
        torch.testing.assert_close(r["losses"], one["losses"], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(
            r["params"]["AutoDelta.w"], one["params"]["AutoDelta.w"], rtol=1e-5, atol=1e-6
        )
    assert torch.equal(ranks[0]["params"]["AutoDelta.w"], ranks[1]["params"]["AutoDelta.w"])

    run = tmp_path / "run"
    died = _two(tmp_path / "died", "map", 9, run, check=False, DIE_AT="8")  # 3 steps an epoch
    assert died.returncode != 0 and (run / "checkpoint.pt").exists()
    saved = pgen.io.load(run / "checkpoint.pt", kind="svi")
    assert 0 < saved["step"] < 9 and saved["world_size"] == 2
    resumed = _two(tmp_path / "resumed", "map", 9, run, "resume")
    for r in resumed:
        torch.testing.assert_close(r["losses"], one["losses"], rtol=1e-6, atol=1e-6)
    with pytest.raises(subprocess.CalledProcessError):  # one process cannot continue a 2-rank run
        _one(tmp_path / "alone", "map", 12, run, "resume")


def test_a_stochastic_guide_stays_identical_on_every_rank(tmp_path):
    """Rank 1 draws its own random numbers, so the loss is another estimate than one
    process's; the parameters must still be the same tensor on both ranks."""
    ranks = _two(tmp_path / "mf", "meanfield", 12)
    one = _one(tmp_path / "one", "meanfield", 12)
    assert not torch.equal(ranks[0]["losses"], one["losses"])  # the batches were split
    torch.testing.assert_close(ranks[0]["losses"][0], one["losses"][0], rtol=0.5, atol=0)
    assert ranks[0]["params"].keys() == ranks[1]["params"].keys()
    for name in ranks[0]["params"]:
        assert torch.equal(ranks[0]["params"][name], ranks[1]["params"][name]), name
    torch.testing.assert_close(ranks[0]["losses"], ranks[1]["losses"])  # the summed loss


def test_pgen_train_under_torchrun_writes_one_run(tmp_path):
    out = tmp_path / "run"
    args = [
        "train",
        "vae",
        "--data",
        "digits",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--latent-dim",
        "2",
        "--out",
        str(out),
        "--no-progress",
        "--no-figures",
    ]
    run = _torchrun("pgen", *args)
    assert run.returncode == 0, _output(run)
    assert run.stdout.count("trained 26 steps") == 1  # rank 0 reports
    assert (out / "model.pt").exists() and (out / "checkpoint.pt").exists()
    assert pgen.io.load(out / "checkpoint.pt", kind="svi")["world_size"] == 2


def test_chains_gathered_from_two_ranks_equal_one_process(tmp_path):
    import numpy as np

    subprocess.run(
        [sys.executable, "-m", "tests.inference.mcmc_ddp_worker", str(tmp_path / "one")],
        cwd=ROOT,
        env=_env(),
        check=True,
        timeout=300,
    )
    run = _torchrun("tests.inference.mcmc_ddp_worker", tmp_path / "two")
    assert run.returncode == 0, _output(run)
    one = np.load(tmp_path / "one.0.npz")
    for rank in (0, 1):  # 3 chains: chains 0 and 2 ran on rank 0, chain 1 on rank 1
        two = np.load(tmp_path / f"two.{rank}.npz")
        assert two["mu"].shape == one["mu"].shape == (120,)  # 3 chains x 40, chain after chain
        np.testing.assert_array_equal(two["mu"], one["mu"])
        np.testing.assert_array_equal(two["sigma"], one["sigma"])
        assert len(two["ran"]) == (2 if rank == 0 else 1)  # each rank ran only its own chains
    assert len(one["ran"]) == 3
