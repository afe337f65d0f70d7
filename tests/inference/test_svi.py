"""The shared SVI engine: correctness against exact answers, resume, guards, errors."""

import signal
import warnings

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch

import pgen
from pgen.inference import ELBO, NonFiniteLossError, scale_data_plate
from pgen.models import PPCA

from ..conftest import tiny_vae


def test_fit_reaches_the_closed_form_ppca_maximum_likelihood(ppca_data):
    # SVI with the amortized linear guide can reach the exact MLE of PPCA (the posterior
    # is diagonal at the MLE's rotation; Lucas et al. 2019). Tipping & Bishop's closed
    # form gives the target log-likelihood.
    x, _ = ppca_data
    mle = PPCA(5, 2).set_parameters(**PPCA.mle(x, 2))
    best = mle.log_prob(x).mean().item()
    torch.manual_seed(0)
    model = PPCA(5, 2)
    start = model.log_prob(x).mean().item()
    pgen.fit(
        model.model,
        model.guide,
        x,
        objective="meanfield",
        steps=1200,
        lr=0.03,
        batch_size=None,
        progress=False,
    )
    fitted = model.log_prob(x).mean().item()
    assert start < best - 1.0  # the test starts far from the optimum
    assert best - 2e-3 < fitted <= best + 1e-6  # the MLE is the maximum


def test_minibatch_objective_is_the_full_data_objective_scaled(ppca_data):
    # With the exact posterior as guide every importance weight equals p(x_i), so the
    # ELBO of a minibatch scaled by N/B equals (N/B) * sum of exact log p over the batch.
    x, true = ppca_data
    n, b = len(x), 100
    batch = x[:b]
    with torch.no_grad():
        exact = true.log_prob(batch).sum().item()
        loss = ELBO().loss(
            scale_data_plate(true.model, n / b), scale_data_plate(true.exact_guide, n / b), batch
        )
    assert loss == pytest.approx(-(n / b) * exact, rel=1e-5)


def test_epoch_train_elbo_estimates_the_full_data_value(ppca_data):
    # A tiny learning rate leaves the model as it was; the exact guide makes each
    # minibatch term exact, so one epoch's mean equals the exact mean log-likelihood.
    x, true = ppca_data
    model = PPCA(5, 2)
    model.load_state_dict(true.state_dict())
    result = pgen.fit(
        model.model,
        model.exact_guide,
        x,
        epochs=1,
        batch_size=128,
        optimizer="sgd",
        lr=1e-12,
        progress=False,
    )
    assert result.history["train_elbo"][0] == pytest.approx(true.log_prob(x).mean().item(), abs=1e-4)


def _interrupt_at(step, signum=signal.SIGINT):
    """A transform that sends ``signum`` (SIGINT) to this process at the given training step."""
    calls = {"n": 0}

    def transform(x, generator=None):
        calls["n"] += 1
        if calls["n"] == step + 1:
            signal.raise_signal(signum)
        return x

    transform.__qualname__ = "identity"  # same name as the uninterrupted runs' transform
    return transform


def identity(x, generator=None):
    return x


@pytest.mark.parametrize("jit", [False, True])
def test_interrupted_and_resumed_run_repeats_the_uninterrupted_losses(digits, tmp_path, jit):
    x, xv = digits
    common = dict(epochs=3, batch_size=64, val_data=xv, progress=False, jit=jit, seed=3)
    vae = tiny_vae(0)
    full = pgen.fit(vae.model, vae.guide, x, transform=identity, **common)
    assert len(full.losses) == 12

    vae = tiny_vae(0)
    with pytest.raises(KeyboardInterrupt, match="checkpoint saved"):
        pgen.fit(vae.model, vae.guide, x, transform=_interrupt_at(5), checkpoint_dir=tmp_path, **common)
    vae = tiny_vae(99)  # different initial weights: everything must come from the checkpoint
    resumed = pgen.fit(
        vae.model, vae.guide, x, transform=identity, checkpoint_dir=tmp_path, resume=True, **common
    )
    np.testing.assert_array_equal(resumed.losses, full.losses)
    assert resumed.history["val_elbo"] == full.history["val_elbo"]
    for name, value in full.params.items():
        torch.testing.assert_close(resumed.params[name], value, rtol=0, atol=0)


def test_resume_to_train_longer_equals_one_longer_run(digits, tmp_path):
    x, _ = digits
    vae = tiny_vae(0)
    long = pgen.fit(vae.model, vae.guide, x, epochs=4, batch_size=64, progress=False)
    vae = tiny_vae(0)
    pgen.fit(vae.model, vae.guide, x, epochs=2, batch_size=64, progress=False, checkpoint_dir=tmp_path)
    vae = tiny_vae(5)
    more = pgen.fit(
        vae.model,
        vae.guide,
        x,
        epochs=4,
        batch_size=64,
        progress=False,
        checkpoint_dir=tmp_path,
        resume=True,
    )
    np.testing.assert_array_equal(more.losses, long.losses)
    assert more.history["epoch"] == [1, 2, 3, 4]


def test_resume_mid_epoch_after_a_steps_budget(digits, tmp_path):
    x, _ = digits
    vae = tiny_vae(0)
    straight = pgen.fit(vae.model, vae.guide, x, steps=10, batch_size=64, progress=False)
    vae = tiny_vae(0)
    first = pgen.fit(vae.model, vae.guide, x, steps=6, batch_size=64, progress=False, checkpoint_dir=tmp_path)
    assert first.history["partial"][-1] is True
    vae = tiny_vae(1)
    rest = pgen.fit(
        vae.model,
        vae.guide,
        x,
        steps=10,
        batch_size=64,
        progress=False,
        checkpoint_dir=tmp_path,
        resume=True,
    )
    np.testing.assert_array_equal(rest.losses, straight.losses)


def test_resume_refuses_changed_settings_and_missing_checkpoints(digits, tmp_path):
    x, _ = digits
    vae = tiny_vae(0)
    pgen.fit(vae.model, vae.guide, x, epochs=1, batch_size=64, progress=False, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="batch_size: checkpoint 64, now 32"):
        pgen.fit(
            vae.model,
            vae.guide,
            x,
            epochs=2,
            batch_size=32,
            progress=False,
            checkpoint_dir=tmp_path,
            resume=True,
        )
    with pytest.raises(ValueError, match="data_sha1"):
        pgen.fit(
            vae.model,
            vae.guide,
            x[:-1],
            epochs=2,
            batch_size=64,
            progress=False,
            checkpoint_dir=tmp_path,
            resume=True,
        )
    other = tiny_vae(0, latent_dim=3)
    with pytest.raises(ValueError, match="shape"):
        pgen.fit(
            other.model,
            other.guide,
            x,
            epochs=2,
            batch_size=64,
            progress=False,
            checkpoint_dir=tmp_path,
            resume=True,
        )
    with pytest.raises(FileNotFoundError, match="does not exist"):
        pgen.fit(
            vae.model,
            vae.guide,
            x,
            epochs=2,
            progress=False,
            checkpoint_dir=tmp_path / "empty",
            resume=True,
        )


def test_early_stopping_restores_the_best_validation_parameters(digits, tmp_path):
    x, xv = digits
    vae = tiny_vae(0, hidden=(256,), latent_dim=16)
    # 24 training examples overfit quickly, so the validation bound peaks and falls
    result = pgen.fit(
        vae.model,
        vae.guide,
        x[:24],
        epochs=400,
        batch_size=24,
        lr=3e-3,
        val_data=xv,
        patience=5,
        checkpoint_dir=tmp_path,
        progress=False,
    )
    vals = result.history["val_elbo"]
    assert result.stop_reason == "early_stopping"
    assert result.epochs_completed < 400
    assert result.best_val_elbo == max(vals)
    assert result.best_epoch == int(np.argmax(vals)) + 1
    assert result.epochs_completed == result.best_epoch + 5
    saved = pgen.io.load(tmp_path / "checkpoint.pt", kind="svi")
    names = saved["param_names"]
    best = dict(zip(names, saved["early"]["best_params"], strict=True))
    last = saved["params"]
    changed = False
    for name, value in result.params.items():
        torch.testing.assert_close(value, best[name], rtol=0, atol=0)
        changed |= not torch.equal(value, last[name])
    assert changed  # the parameters returned are the best epoch's, not the last's


class _Poisoned:
    """A user's model whose observation mean becomes NaN once ``poison['on']`` is set."""

    def __init__(self):
        self.poison = {"on": False, "at": None, "calls": 0}

    def model(self, x, y=None):
        loc = pyro.param("loc", torch.zeros(x.shape[1]))
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(0.0, 1.0))
            mean = loc + z[:, None]
            if self.poison["on"]:
                mean = mean * float("nan")
            pyro.sample("obs", dist.Normal(mean, 1.0).to_event(1), obs=x)

    def guide(self, x, y=None):
        s = pyro.param("s", torch.ones(x.shape[0]), constraint=dist.constraints.positive)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(0.0, s))

    def optimizer(self, params):
        """Adam that switches the poison on after ``poison['at']`` steps."""
        poison = self.poison

        class Counting(torch.optim.Adam):
            def step(self, closure=None):
                poison["calls"] += 1
                if poison["calls"] == poison["at"]:
                    poison["on"] = True
                return super().step(closure)

        return Counting(params, lr=0.1)


def test_nonfinite_loss_stops_restores_and_names_the_site(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(40, 3)
    user = _Poisoned()
    user.poison["at"] = 6  # poisoned from step index 6; full batch: one step per epoch
    with pytest.raises(NonFiniteLossError) as info:
        pgen.fit(
            user.model,
            user.guide,
            x,
            epochs=10,
            batch_size=None,
            progress=False,
            checkpoint_dir=tmp_path,
            optimizer=user.optimizer,
        )
    err = info.value
    assert err.step == 6 and err.epoch == 6
    assert "model site 'obs'" in err.site and "'loc'" in err.site and "non-finite" in err.site
    assert "step 6" in str(err)
    saved = pgen.io.load(tmp_path / "checkpoint.pt", kind="svi")
    assert saved["step"] == 6  # the checkpoint from the end of the last good epoch
    torch.testing.assert_close(err.result.params["loc"], saved["params"]["loc"], rtol=0, atol=0)
    assert err.result.stop_reason == "nonfinite" and err.result.num_steps == 6


def test_nonfinite_can_warn_and_return():
    torch.manual_seed(0)
    x = torch.randn(40, 3)
    user = _Poisoned()
    user.poison["at"] = 2
    with pytest.warns(RuntimeWarning, match="non-finite"):
        result = pgen.fit(
            user.model,
            user.guide,
            x,
            epochs=5,
            batch_size=None,
            progress=False,
            optimizer=user.optimizer,
            on_nonfinite="warn",
        )
    assert result.stop_reason == "nonfinite" and result.num_steps == 2
    assert torch.isfinite(result.params["loc"]).all()


def test_two_fits_never_share_or_overwrite_parameters(digits):
    x, _ = digits
    a, b = tiny_vae(0), tiny_vae(1)
    pgen.fit(a.model, a.guide, x, epochs=1, batch_size=64, progress=False)
    a_after = {k: v.clone() for k, v in a.state_dict().items()}
    b_before = {k: v.clone() for k, v in b.state_dict().items()}
    result_b = pgen.fit(b.model, b.guide, x, epochs=1, batch_size=64, progress=False)
    for k, v in a.state_dict().items():
        torch.testing.assert_close(v, a_after[k], rtol=0, atol=0)  # fitting b left a alone
    assert any(not torch.equal(v, b_before[k]) for k, v in b.state_dict().items())
    torch.testing.assert_close(
        result_b.params["vae_decoder$$$net.net.0.weight"], b.decoder.net.net[0].weight.detach()
    )
    assert len(pyro.get_param_store()) == 0  # nothing leaked into the global store


def test_function_style_parameters_are_returned_and_scoped():
    x = torch.randn(200, 1) * 2.0 + 3.0

    def model(x, y=None):
        loc = pyro.param("loc", torch.zeros(1))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("obs", dist.Normal(loc, 2.0).to_event(1), obs=x)

    def guide(x, y=None):
        pass

    result = pgen.fit(model, guide, x, steps=600, lr=0.05, batch_size=None, progress=False)
    assert result.params["loc"].item() == pytest.approx(x.mean().item(), abs=1e-3)
    assert "loc" not in pyro.get_param_store()
    with result.param_scope():
        assert pyro.param("loc").item() == pytest.approx(result.params["loc"].item())


def test_dynamic_binarization_transform_trains_a_bernoulli_vae_on_grey_data():
    x, _ = pgen.data.load("digits")  # grey levels in [0, 1]
    x = x[:128]
    vae = tiny_vae(0)
    with pytest.raises(ValueError, match="must be binary"):
        pgen.fit(vae.model, vae.guide, x, epochs=1, progress=False)
    result = pgen.fit(
        vae.model,
        vae.guide,
        x,
        epochs=2,
        batch_size=64,
        progress=False,
        transform=pgen.data.dynamic_binarize,
    )
    assert np.isfinite(result.losses).all() and result.config["transform"].endswith("dynamic_binarize")


def test_minibatching_needs_the_data_plate():
    x = torch.randn(50, 2)

    def model(x, y=None):
        loc = pyro.param("loc", torch.zeros(2))
        pyro.sample("obs", dist.Normal(loc, 1.0).expand(x.shape).to_event(2), obs=x)

    def guide(x, y=None):
        pass

    with pytest.raises(ValueError, match="no plate named 'data'"):
        pgen.fit(model, guide, x, epochs=1, batch_size=10, progress=False)
    result = pgen.fit(model, guide, x, steps=5, batch_size=None, progress=False)
    assert result.num_steps == 5


def test_jit_refuses_a_model_it_cannot_trace_faithfully():
    rng = np.random.default_rng(0)
    x = torch.randn(30, 2)

    def model(x, y=None):
        loc = pyro.param("loc", torch.zeros(2))
        noise = float(rng.normal())  # drawn outside torch: a trace would freeze it
        with pyro.plate("data", x.shape[0]):
            pyro.sample("obs", dist.Normal(loc + noise, 1.0).to_event(1), obs=x)

    def guide(x, y=None):
        pass

    with pytest.raises(ValueError, match="a trace cannot follow"):
        pgen.fit(model, guide, x, steps=2, batch_size=None, jit=True, progress=False)


def test_bad_data_gets_clear_errors(digits):
    x, _ = digits
    vae = tiny_vae(0)
    bad = x.clone()
    bad[3, 5] = float("nan")
    bad[7, 1] = float("inf")
    cases = [
        (bad, r"2 non-finite value\(s\).*data\[3, 5\] = nan"),
        (x.long(), "dtype torch.int64.*floating-point"),
        (x[:0], "is empty"),
        (x[:, :32], r"shape \(256, 32\).*\(N, 64\)"),
        (x.reshape(256, 8, 8), r"flatten it"),
        (x * 0.5, "must be binary"),
        ((x, torch.zeros(5, dtype=torch.long)), "same length"),
        ("pixels", "torch.Tensor or a numpy array"),
    ]
    for data, match in cases:
        with pytest.raises((ValueError, TypeError), match=match):
            pgen.fit(vae.model, vae.guide, data, epochs=1, progress=False)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(epochs=1, steps=5), ValueError, "exactly one of epochs= or steps="),
        (dict(), ValueError, "exactly one of epochs= or steps="),
        (dict(epochs=0), ValueError, "epochs must be an integer >= 1, got 0"),
        (dict(epochs=1.5), TypeError, "epochs must be an integer"),
        (dict(epochs=1, batch_size=0), ValueError, "batch_size must be an integer >= 1"),
        (dict(epochs=1, lr=-0.1), ValueError, "lr must be > 0, got -0.1"),
        (dict(epochs=1, objective="vi"), ValueError, "objective must be one of 'elbo'"),
        (dict(epochs=1, optimizer="lbfgs"), ValueError, "optimizer must be one of 'adam'"),
        (dict(epochs=1, patience=3), ValueError, "patience needs val_data"),
        (dict(epochs=1, resume=True), ValueError, "resume=True needs checkpoint_dir"),
        (
            dict(epochs=1, objective="elbo", alpha=0.5),
            ValueError,
            "alpha applies to objective='renyi'",
        ),
        (dict(epochs=1, objective="renyi", alpha=1.0), ValueError, "alpha=1 is the ELBO"),
        (dict(epochs=1, on_nonfinite="ignore"), ValueError, "on_nonfinite must be one of"),
        (dict(epochs=1, clip_norm=0), ValueError, "clip_norm must be > 0"),
        (dict(epochs=1, transform="binarize"), TypeError, "transform must be callable"),
    ],
)
def test_bad_arguments_get_clear_errors(digits, kwargs, error, match):
    x, _ = digits
    vae = tiny_vae(0)
    with pytest.raises(error, match=match):
        pgen.fit(vae.model, vae.guide, x, progress=False, **kwargs)


def test_jit_gives_the_eager_losses(digits):
    x, _ = digits
    runs = []
    for jit in (False, True):
        vae = tiny_vae(0)
        runs.append(
            pgen.fit(
                vae.model,
                vae.guide,
                x,
                epochs=2,
                batch_size=100,
                progress=False,
                jit=jit,
                objective="meanfield",
            ).losses
        )
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-5)


def test_fit_returns_a_documented_result(digits, tmp_path):
    x, xv = digits
    vae = tiny_vae(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warnings on a normal run
        r = pgen.fit(
            vae.model,
            vae.guide,
            x,
            epochs=2,
            batch_size=64,
            val_data=xv,
            progress=False,
            checkpoint_dir=tmp_path,
        )
    assert r.num_steps == 8 and r.losses.shape == (8,) and r.step_times.shape == (8,)
    assert r.history["epoch"] == [1, 2] and len(r.history["val_elbo"]) == 2
    # the epoch's train bound is the size-weighted mean of its minibatch estimates
    assert r.history["train_elbo"][0] == pytest.approx(-r.losses[:4].mean() / len(x))
    assert r.history["train_elbo"][1] > r.history["train_elbo"][0]
    assert r.checkpoint_path == tmp_path / "checkpoint.pt" and r.checkpoint_path.exists()
    assert r.wall_time > 0 and r.steps_per_second == pytest.approx(8 / r.wall_time)
    assert r.stop_reason == "completed" and r.config["batch_size"] == 64


@pytest.mark.parametrize("jit", [False, True])
def test_fit_follows_a_hand_written_loop_step_for_step(digits, jit):
    # Same minibatches (the engine's shuffling generator), same noise (the global seed),
    # same N/B scaling, same closed-form-KL loss, same fused Adam: the same losses.
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from _baseline import vae_step

    x, _ = digits
    n = len(x)
    vae = tiny_vae(0)
    ours = pgen.fit(
        vae.model,
        vae.guide,
        x,
        steps=12,
        batch_size=64,
        objective="meanfield",
        jit=jit,
        progress=False,
        seed=4,
    ).losses
    vae = tiny_vae(0)
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3, fused=True)
    shuffle = torch.Generator().manual_seed(4)
    torch.manual_seed(4)
    theirs = []
    while len(theirs) < 12:
        for idx in torch.randperm(n, generator=shuffle).split(64):
            theirs.append(vae_step(vae.encoder, vae.decoder.net, opt, x[idx], n).item())
    np.testing.assert_allclose(ours, theirs[:12], rtol=2e-5)
