"""The adversarial game as an engine objective: the generator's gradients at the optimal
discriminator, a 1-D Wasserstein GAN against a known Gaussian, and exact resume."""

import math

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from torch import nn

import pgen
from pgen.inference.adversarial import LOSSES, Adversarial
from pgen.models import GAN

from .test_svi import _interrupt_at, identity


class _Fixed(nn.Module):
    """A critic that is a given function of x (no parameters to train)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return self.fn(x).reshape(len(x)) + 0 * self.dummy


def _shift_model(mu):
    def model(x=None, *, n=None):
        n = len(x) if x is not None else n
        with pyro.plate("data", n):
            z = pyro.sample("z", dist.Normal(torch.zeros(1), 1.0).to_event(1))
            return pyro.deterministic("obs", mu + z, event_dim=1)

    return model


@pytest.mark.parametrize(
    ("loss", "closed_form"), [("minimax", "5 E_q[D*]"), ("nonsaturating", "5 E_q[1 - D*]")]
)
def test_generator_gradients_at_the_optimal_discriminator(loss, closed_form):
    """p = N(0, 1), q = N(mu, 1) with mu = 5, and the optimal discriminator D* = p/(p+q),
    whose logit is log p - log q = 12.5 - 5x. The minimax generator loss log(1 - D*(x))
    has gradient 5 D*(x) in x, the non-saturating -log D*(x) has 5 (1 - D*(x)): where q
    sits D* is about 4e-6, so the minimax gradient nearly vanishes (E_q = 0.047; the
    notes' saturation) and the non-saturating one does not (4.95). Checked against Gauss-Hermite quadrature of
    E_q[.], within 4 Monte Carlo standard errors."""
    game = Adversarial(_Fixed(lambda x: 12.5 - 5 * x), loss=loss)
    torch.manual_seed(0)
    fake = _shift_model(torch.tensor(5.0))(n=20000).requires_grad_(True)
    # d loss / d mu = mean over draws of d loss_i / d x_i, since x_i = mu + z_i
    (per_example,) = torch.autograd.grad(game.generator_loss(fake) * len(fake), fake)
    per_example = per_example.reshape(-1).numpy()
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)  # E over N(0, 1)
    d_star = 1 / (1 + np.exp(-(12.5 - 5 * (5.0 + nodes))))
    exact = float(
        (weights * (5 * d_star if loss == "minimax" else 5 * (1 - d_star))).sum() / math.sqrt(2 * math.pi)
    )
    se = per_example.std() / math.sqrt(len(per_example))
    assert abs(per_example.mean() - exact) < 4 * se + 1e-9, (closed_form, per_example.mean(), exact)
    if loss == "minimax":
        assert exact < 0.1  # saturated: measured 0.047, a hundredth of the non-saturating one
    else:
        assert exact > 4.9


def test_a_wasserstein_generator_recovers_a_gaussian():
    """WGAN with a one-sided gradient penalty, a linear generator mu + s z, and data
    N(3, 0.5^2): measured over seeds 1-3, mean 3.00-3.02 and |s| 0.48-0.50 after 1,000
    steps (the Monte Carlo spread of the game: the critic sees 256 draws a step). The
    two-sided penalty cannot flip the sign of a 1-D critic (its slope must pass through
    0, where the penalty is largest) and overshoots the data here; a zero-initialized
    last layer keeps the critic from starting with the wrong sign."""
    torch.manual_seed(1)
    x = 3.0 + 0.5 * torch.randn(2000, 1)
    lin = nn.Linear(1, 1)

    def model(x=None, *, n=None):
        pyro.module("g", lin)
        n = len(x) if x is not None else n
        with pyro.plate("data", n):
            z = pyro.sample("z", dist.Normal(torch.zeros(1), 1.0).to_event(1))
            return pyro.deterministic("obs", lin(z), event_dim=1)

    critic = nn.Sequential(
        nn.Linear(1, 32), nn.LeakyReLU(0.2), nn.Linear(32, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1)
    )
    nn.init.zeros_(critic[-1].weight)
    nn.init.zeros_(critic[-1].bias)
    game = Adversarial(critic, loss="wgan-gp", critic_steps=5, lr=1e-3, betas=(0.5, 0.9), one_sided=True)
    pgen.fit(
        model,
        lambda *a, **k: None,
        x,
        objective=game,
        steps=1000,
        batch_size=256,
        lr=1e-2,
        lr_final=1e-3,
        seed=1,
        progress=False,
    )
    assert abs(float(lin.bias.detach()) - 3.0) < 0.1 and abs(abs(float(lin.weight.detach())) - 0.5) < 0.1


def test_an_interrupted_game_resumes_to_the_same_losses(tmp_path):
    """Ctrl-C (a real SIGINT) at step 7, then resume: the same losses as one
    uninterrupted run. The critic's weights, its optimizer, its step count and the
    snapshots travel in the checkpoint."""
    x, _ = pgen.data.load("moons", n=300, seed=0)
    common = dict(steps=20, batch_size=50, seed=3, progress=False)

    def new_game(seed=0):
        torch.manual_seed(seed)
        m = GAN(2, latent_dim=2, hidden=(16,), output="linear")
        return m, m.adversarial(loss="wgan-gp", critic_steps=2)

    m, game1 = new_game()
    uninterrupted = pgen.fit(m.model, m.guide, x, objective=game1, transform=identity, **common)
    m, interrupted = new_game()
    with pytest.raises(KeyboardInterrupt, match="checkpoint saved"):
        pgen.fit(
            m.model,
            m.guide,
            x,
            objective=interrupted,
            transform=_interrupt_at(7),
            checkpoint_dir=tmp_path,
            **common,
        )
    m, game2 = new_game(seed=99)  # other initial weights: everything must come from the checkpoint
    resumed = pgen.fit(
        m.model,
        m.guide,
        x,
        objective=game2,
        transform=identity,
        checkpoint_dir=tmp_path,
        resume=True,
        **common,
    )
    np.testing.assert_array_equal(resumed.losses, uninterrupted.losses)
    assert game2.critic_updates == game1.critic_updates == 40
    game = game1
    # the draws at fixed z after 0, 1, 2, 4, 8, 16 generator steps, kept across the resume
    steps = [step for step, _ in game.snapshots]
    assert [step for step, _ in game2.snapshots] == steps == [0, 1, 2, 4, 8, 16]
    for (_, a), (_, b) in zip(game.snapshots, game2.snapshots, strict=True):
        torch.testing.assert_close(a, b)
    assert game.snapshots[0][1].shape == (256, 2)  # points: 256 draws
    assert not torch.equal(game.snapshots[0][1], game.snapshots[-1][1])  # the generator moved
    m.eval()
    torch.testing.assert_close(m.progress_draws(256), m.sample(256, seed=0))  # the same z each time


def test_bad_settings_name_the_argument():
    with pytest.raises(ValueError, match="loss must be one of"):
        Adversarial(nn.Linear(2, 1), loss="hinge")
    with pytest.raises(TypeError, match="critic must be a torch.nn.Module"):
        Adversarial(lambda x: x)
    with pytest.raises(ValueError, match="side divisible by 4"):
        GAN(30, architecture="dcgan")
    assert set(LOSSES) == {"minimax", "nonsaturating", "lsgan", "wgan-gp", "wgan"}


def test_cli_trains_evaluates_and_draws_a_gan(tmp_path):
    """``pgen train`` / ``evaluate`` on a conditional GAN (digits) and a WGAN (moons):
    the figures, including the draws at fixed z over training, and sample metrics."""
    import json

    from pgen.cli import main

    run = tmp_path / "cgan"
    argv = ["train", "gan", "--data", "digits", "--num-classes", "10", "--hidden", "32", "--epochs", "2"]
    assert main([*argv, "--no-progress", "--out", str(run)]) == 0
    for name in ("samples.png", "samples_over_training.png", "training.png"):
        assert (run / name).is_file(), name
    assert main(["evaluate", str(run), "--num-samples", "100", "--quality", "100", "--no-progress"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["family"] == "adversarial"
    assert 0 <= metrics["quality"]["classification_accuracy_score"] <= 1
    moons = tmp_path / "wgan"
    argv = ["train", "wgan", "--data", "moons", "--hidden", "16", "--steps", "20", "--gp-weight", "0.1"]
    assert main([*argv, "--no-progress", "--out", str(moons)]) == 0
    assert (moons / "critic.png").is_file() and (moons / "samples_over_training.png").is_file()
    assert json.loads((moons / "config.json").read_text())["objective_args"]["gp_weight"] == 0.1
