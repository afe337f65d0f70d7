"""Checkpointed MCMC runs: stopped by Ctrl-C or killed, and continued with the same
draws as a run never stopped (issue 16, "nothing is lost")."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch

import pgen
from pgen.io import CheckpointError

Y = torch.tensor([0.3, -0.5, 1.2, 0.8, 2.0])
STOP = {"after": None, "calls": 0}


def model(y):
    """A normal mean and scale; raises KeyboardInterrupt once, after STOP["after"]
    evaluations (as Ctrl-C would, mid-chain)."""
    STOP["calls"] += 1
    if STOP["after"] is not None and STOP["calls"] > STOP["after"]:
        STOP["after"] = None  # once, as a Ctrl-C
        raise KeyboardInterrupt
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    sigma = pyro.sample("sigma", dist.HalfNormal(2.0))
    with pyro.plate("n", len(y)):
        pyro.sample("y", dist.Normal(mu, sigma), obs=y)


OPTIONS = dict(chains=2, warmup=60, draws=60, seed=3, jit=False, parallel=False, progress=False, warn=False)


def _run(folder=None, **extra):
    return pgen.sample(model, Y, checkpoint=folder, **{**OPTIONS, "checkpoint_every": 20, **extra})


def test_a_run_stopped_by_ctrl_c_continues_with_the_same_draws(tmp_path):
    STOP.update(after=None)
    whole = _run()
    STOP.update(after=None, calls=0)
    _run(tmp_path / "probe1", chains=1)  # evaluations of one chain, and of two
    one = STOP["calls"]
    STOP.update(calls=0)
    _run(tmp_path / "probe2")
    total = STOP["calls"]
    STOP.update(after=one + (total - one) // 3, calls=0)  # stop in the second chain
    first = _run(tmp_path / "run")
    assert first.partial and first.samples["mu"].shape[0] == 1
    assert sorted(p.name for p in (tmp_path / "run").glob("chain-*.pt")) == ["chain-0.pt", "chain-1.pt"]
    STOP.update(after=None, calls=0)
    resumed = _run(tmp_path / "run", resume=True)
    assert not resumed.partial
    for site in ("mu", "sigma"):
        np.testing.assert_array_equal(resumed.samples[site], whole.samples[site])
    np.testing.assert_array_equal(resumed.sample_stats["step_size"], whole.sample_stats["step_size"])
    assert STOP["calls"] < 0.6 * total  # chain 0 was not run again, chain 1 only from its checkpoint
    # a finished run resumes at once, to the same result
    again = _run(tmp_path / "run", resume=True)
    np.testing.assert_array_equal(again.samples["mu"], whole.samples["mu"])


def test_a_killed_run_continues_with_the_same_draws(tmp_path):
    # SIGKILL at any moment, mid-write included: the atomic writes leave the last good
    # checkpoint of each chain, and the run continues from there
    folder = tmp_path / "run"
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import torch, pgen
        from test_mcmc_checkpoint import model, Y, OPTIONS
        import test_mcmc_checkpoint as t
        slow = t.model
        def model_slow(y):
            time.sleep(0.0005)
            return slow(y)
        t.model = model_slow
        pgen.sample(model_slow, Y, checkpoint={str(folder)!r}, checkpoint_every=5, **OPTIONS)
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(pgen.__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    deadline = time.time() + 120
    while not (folder / "chain-0.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (folder / "chain-0.pt").exists()
    STOP.update(after=None, calls=0)
    resumed = _run(folder, resume=True)
    whole = _run()
    np.testing.assert_array_equal(resumed.samples["mu"], whole.samples["mu"])
    assert not list(folder.glob(".*.tmp"))  # what a killed write left is cleared


def test_checkpoints_refuse_what_would_lose_or_mix_runs(tmp_path):
    STOP.update(after=None)
    _run(tmp_path / "run")
    with pytest.raises(ValueError, match="already holds a run.*resume=True"):
        _run(tmp_path / "run")
    with pytest.raises(ValueError, match=r"other settings \(draws: 60 then, 80 now\)"):
        _run(tmp_path / "run", resume=True, draws=80)
    with pytest.raises(ValueError, match="other data"):
        pgen.sample(model, Y + 1, checkpoint=tmp_path / "run", checkpoint_every=20, resume=True, **OPTIONS)
    with pytest.raises(ValueError, match="resume=True needs checkpoint="):
        pgen.sample(model, Y, resume=True, **OPTIONS)
    with pytest.raises(ValueError, match="works with pgen's 'nuts' and 'hmc'"):
        pgen.sample(model, Y, kernel=pyro.infer.NUTS(model), checkpoint=tmp_path / "p", **OPTIONS)
    with pytest.raises(ValueError, match="checkpoint_every"):
        _run(tmp_path / "q", checkpoint_every=0)
    damaged = tmp_path / "run" / "chain-1.pt"
    damaged.write_bytes(damaged.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="chain-1.pt"):
        _run(tmp_path / "run", resume=True)
