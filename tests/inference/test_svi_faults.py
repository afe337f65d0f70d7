"""Faults of the SVI engine, the evaluation functions and checkpoint files (issue 15):
each as a user met it, each with a clear error or a kept promise."""

import errno
import math
import os
import pickle
import random
import signal
import zipfile

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch

import pgen
from pgen.io import CheckpointError

from ..conftest import tiny_vae
from .test_svi import _interrupt_at, identity


def test_a_checkpoint_dir_holding_another_run_is_not_overwritten(digits, tmp_path):
    x, _ = digits
    vae = tiny_vae(0)
    pgen.fit(vae.model, vae.guide, x, epochs=1, batch_size=64, progress=False, checkpoint_dir=tmp_path)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    other = pgen.models.PPCA(64, 2)
    with pytest.raises(FileExistsError, match="already holds checkpoint.pt"):
        pgen.fit(other.model, other.guide, x, epochs=1, progress=False, checkpoint_dir=tmp_path)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before


def _branching(x, y=None):
    loc = pyro.param("loc", torch.zeros(2))
    scale = 1.0 if float(x.sum()) > 0 else 3.0  # the structure depends on the minibatch
    with pyro.plate("data", x.shape[0]):
        pyro.sample("obs", dist.Normal(loc, scale).to_event(1), obs=x)


def test_jit_refuses_a_model_that_branches_on_its_data():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(32, 2, generator=g) + 3, torch.randn(32, 2, generator=g) - 3])
    eager = pgen.fit(
        _branching, lambda x, y=None: None, x, epochs=3, batch_size=8, shuffle=False, progress=False
    )
    with pytest.raises(ValueError, match="turns a tensor into a Python value"):
        pgen.fit(
            _branching,
            lambda x, y=None: None,
            x,
            epochs=3,
            batch_size=8,
            shuffle=False,
            progress=False,
            jit=True,
        )
    assert np.isfinite(eager.losses).all()


def test_jit_checks_the_trace_against_eager_while_training():
    calls = {"n": 0}

    def drifting(x, y=None):  # takes another path from its 5th call on, without looking at x
        calls["n"] += 1
        loc = pyro.param("loc", torch.zeros(2))
        scale = 1.0 if calls["n"] < 5 else 2.0
        with pyro.plate("data", x.shape[0]):
            pyro.sample("obs", dist.Normal(loc, scale).to_event(1), obs=x)

    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"at step \d+ the compiled objective gives"):
        pgen.fit(drifting, lambda x, y=None: None, x, epochs=5, batch_size=16, progress=False, jit=True)


def _model(x, y=None):
    w = pyro.sample("w", dist.Normal(0.0, 1.0))
    with pyro.plate("data", x.shape[0]):
        pyro.sample("obs", dist.Normal(w, 1.0).expand([x.shape[0], x.shape[1]]).to_event(1), obs=x)


def _guide_with(*names):
    def guide(x, y=None):
        loc = pyro.param("loc", torch.zeros(()))
        for name in names:
            pyro.sample(name, dist.Normal(loc, 1.0))

    return guide


@pytest.mark.parametrize("objective", ["elbo", "meanfield", "iwae"])
def test_model_guide_mismatches_are_named(objective):
    x = torch.randn(20, 2)
    kw = dict(steps=2, batch_size=None, progress=False, objective=objective)
    with pytest.raises(ValueError, match=r"no site for the model's latent site\(s\) \['w'\]"):
        pgen.fit(_model, _guide_with(), x, **kw)
    with pytest.raises(ValueError, match=r"samples site\(s\) \['v'\] that the model does not have"):
        pgen.fit(_model, _guide_with("w", "v"), x, **kw)


def test_a_model_that_observes_nothing_and_a_module_passed_for_its_method():
    x = torch.randn(20, 2)

    def prior_only(x, y=None):
        loc = pyro.param("loc", torch.zeros(()))
        pyro.sample("w", dist.Normal(loc, 1.0))

    with pytest.raises(ValueError, match="the model observes nothing"):
        pgen.fit(prior_only, _guide_with("w"), x, steps=2, batch_size=None, progress=False)
    vae = tiny_vae(0)
    with pytest.raises(TypeError, match=r"model is a VAE object.*pgen.fit\(m.model, m.guide, x\)"):
        pgen.fit(vae, vae.guide, torch.zeros(4, 64), steps=1, progress=False)


@pytest.mark.parametrize("guide_name", ["meanfield", "fullrank", "laplace"])
def test_a_model_written_for_nuts_without_plates_names_the_site_and_the_fix(guide_name):
    """A latent of batch shape [2] with no plate or to_event: Pyro's NUTS samples it, its
    SVI raises "invalid log_prob shape"; pgen says which site and what to write."""
    from pgen.inference.guides import make_guide

    def model(y):
        mu = pyro.sample("mu", dist.Normal(torch.zeros(2), 1.0))
        pyro.sample("y", dist.Normal(mu, 1.0).to_event(1), obs=y)

    y = torch.tensor([0.5, -0.5])
    with pytest.raises(
        ValueError,
        match=r"model site 'mu' has a Normal of batch shape \[2\], and no "
        r"pyro.plate covers its dim -1 \(size 2\).*Normal\(\.\.\.\)\.to_event\(1\).*"
        r"pyro.plate\('mu_plate', 2, dim=-1\)",
    ) as info:
        pgen.fit(model, make_guide(guide_name, model), None, model_args=(y,), steps=2, progress=False)
    assert "invalid log_prob shape" in str(info.value.__cause__)  # Pyro's message kept as the cause

    def plated(y):  # the fix the message gives works
        with pyro.plate("mu_plate", 2, dim=-1):
            mu = pyro.sample("mu", dist.Normal(torch.zeros(2), 1.0))
        pyro.sample("y", dist.Normal(mu, 1.0).to_event(1), obs=y)

    fit = pgen.fit(plated, make_guide(guide_name, plated), None, model_args=(y,), steps=2, progress=False)
    assert len(fit.history["train_elbo"]) == 2


def test_an_unwritable_checkpoint_dir_fails_before_training(digits, tmp_path):
    x, _ = digits
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    vae = tiny_vae(0)
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    with pytest.raises(OSError, match="checkpoint_dir .* cannot be written"):
        pgen.fit(vae.model, vae.guide, x, epochs=1, progress=False, checkpoint_dir=blocker / "ckpt")
    assert all(torch.equal(v, before[k]) for k, v in vae.state_dict().items())  # nothing trained


def test_a_full_disk_keeps_the_last_checkpoint(digits, tmp_path, monkeypatch):
    x, _ = digits
    real_save, calls = pgen.io.save, {"n": 0}

    def save(path, state, *, kind):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(path, state, kind=kind)

    monkeypatch.setattr(pgen.io, "save", save)
    vae = tiny_vae(0)
    with pytest.raises(
        OSError, match=r"could not write checkpoint .*No space left.*last checkpoint .* is intact"
    ):
        pgen.fit(vae.model, vae.guide, x, epochs=3, batch_size=64, progress=False, checkpoint_dir=tmp_path)
    assert pgen.io.load(tmp_path / "checkpoint.pt", kind="svi")["epoch"] == 1


def test_stale_temporary_checkpoints_are_removed(digits, tmp_path):
    x, _ = digits
    vae = tiny_vae(0)
    pgen.fit(vae.model, vae.guide, x, epochs=1, batch_size=64, progress=False, checkpoint_dir=tmp_path)
    stale = tmp_path / ".checkpoint.pt.k3j2.tmp"  # what a SIGKILL mid-write leaves
    stale.write_bytes(b"partial")
    pgen.fit(
        vae.model, vae.guide, x, epochs=2, batch_size=64, progress=False, checkpoint_dir=tmp_path, resume=True
    )
    assert not stale.exists()


def test_sigterm_stops_a_fit_like_ctrl_c_and_it_resumes_exactly(digits, tmp_path):
    x, _ = digits
    common = dict(epochs=3, batch_size=64, progress=False, seed=3)
    vae = tiny_vae(0)
    full = pgen.fit(vae.model, vae.guide, x, transform=identity, **common)
    vae = tiny_vae(0)
    with pytest.raises(KeyboardInterrupt, match=r"SIGTERM.*checkpoint saved"):
        pgen.fit(
            vae.model,
            vae.guide,
            x,
            transform=_interrupt_at(5, signal.SIGTERM),
            checkpoint_dir=tmp_path,
            **common,
        )
    vae = tiny_vae(9)
    resumed = pgen.fit(
        vae.model, vae.guide, x, transform=identity, checkpoint_dir=tmp_path, resume=True, **common
    )
    np.testing.assert_array_equal(resumed.losses, full.losses)


def test_data_beyond_float32_and_huge_seeds(digits):
    vae = tiny_vae(0, likelihood="gaussian")
    x = np.zeros((10, 64))
    x[3, 2] = 1e300  # finite in float64
    with pytest.raises(ValueError, match="beyond the range of torch.float32"):
        pgen.fit(vae.model, vae.guide, x, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"seed must be at most 2\*\*63 - 1"):
        pgen.fit(vae.model, vae.guide, digits[0], epochs=1, progress=False, seed=2**70)


def test_a_non_finite_gradient_names_its_parameter():
    x = torch.randn(20, 2)

    def model(x, y=None):
        loc = pyro.param("loc", torch.zeros(2))
        gap = pyro.param("gap", torch.zeros(()))
        with pyro.plate("data", x.shape[0]):
            # the loss is finite but d sqrt(gap^2)/d gap at 0 is 0/0
            pyro.sample("obs", dist.Normal(loc + torch.sqrt(gap**2), 1.0).to_event(1), obs=x)

    with pytest.raises(pgen.inference.NonFiniteLossError, match="the gradient of parameter.*'gap'"):
        pgen.fit(model, lambda x, y=None: None, x, steps=3, batch_size=None, progress=False, clip_norm=1.0)


def test_engines_leave_the_callers_random_streams_alone(digits):
    x, _ = digits

    def draws():
        return torch.rand(3), np.random.rand(3), random.random()

    def run(engine):
        torch.manual_seed(123)
        np.random.seed(123)
        random.seed(123)
        engine()
        return draws()

    vae = tiny_vae(0)
    from pgen.models.bayes import CorrelatedGaussian

    model = CorrelatedGaussian().model
    baseline = run(lambda: None)
    for engine in (
        lambda: pgen.fit(vae.model, vae.guide, x, steps=2, progress=False, seed=0),
        lambda: pgen.sample(model, chains=1, warmup=5, draws=5, progress=False, warn=False, seed=0),
    ):
        after = run(engine)
        torch.testing.assert_close(after[0], baseline[0])
        np.testing.assert_array_equal(after[1], baseline[1])
        assert after[2] == baseline[2]


def test_evaluation_runs_the_models_own_checks(digits):
    x, _ = digits
    vae = tiny_vae(0)
    with pytest.raises(ValueError, match=r"shape \(5, 63\), but the model expects \(N, 64\)"):
        pgen.eval.log_likelihood(vae.model, vae.guide, x[:5, :63], num_samples=2)
    with pytest.raises(ValueError, match="must be binary"):
        pgen.eval.log_likelihood(vae.model, vae.guide, x[:5] * 0.5, num_samples=2)
    gaussian = tiny_vae(0, likelihood="gaussian", sigma=1.0)
    with pytest.raises(ValueError, match=r"log-likelihood of 1 example\(s\) is not finite"):
        pgen.eval.log_likelihood(
            gaussian.model, gaussian.guide, torch.cat([x[:4], x[4:5] * 1e30]), num_samples=2
        )


def test_malformed_files_are_checkpoint_errors(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("these are notes, not a checkpoint\n" * 20)
    link = tmp_path / "link.pt"
    link.symlink_to(text)
    tiny = tmp_path / "tiny.pt"
    tiny.write_bytes(pickle.dumps(5))  # a 5-byte pickle
    good = pgen.io.save(tmp_path / "good.pt", {"w": torch.arange(1000.0), "name": "x"}, kind="svi")
    flipped = tmp_path / "flipped.pt"
    with zipfile.ZipFile(good) as z:
        inner = next(n for n in z.namelist() if n.endswith("data.pkl"))
        entries = {n: z.read(n) for n in z.namelist()}
    data = bytearray(entries[inner])
    for i in range(len(data) // 3, len(data) // 3 + 6):
        data[i] ^= 0x5A
    entries[inner] = bytes(data)
    with zipfile.ZipFile(flipped, "w", zipfile.ZIP_STORED) as z:
        for n, b in entries.items():
            z.writestr(n, b)
    for path in (link, tiny, flipped):
        with pytest.raises(CheckpointError):
            pgen.io.load(path)
    assert math.isfinite(float(pgen.io.load(good)["w"].sum()))
    assert os.path.exists(good)
