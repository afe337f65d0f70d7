"""Contrastive divergence as an objective of the SVI engine: its gradient is the exact
log-likelihood gradient when the chains are exact samples, its persistent chains survive a
checkpoint, and bad settings get clear errors."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch

import pgen
from pgen.inference.contrastive import ContrastiveDivergence, log_density_per_example
from pgen.models.ebm import BoltzmannMachine


def _machine(d=4, seed=0):
    torch.manual_seed(seed)
    bm = BoltzmannMachine(d)
    with torch.no_grad():
        bm.upper.normal_(0, 0.5)
        bm.bias.normal_(0, 0.3)
    return bm


class _ExactSampler:
    """A 'kernel' whose every transition is an exact draw from the machine (by enumeration):
    the objective's gradient then has the exact maximum-likelihood gradient as its mean."""

    def __init__(self, bm, num_chains, init):
        self.bm, self.n, self.init = bm, num_chains, init

    def setup(self, warmup_steps, *args, **kwargs):
        self.initial_params = {"y": self.init}

    def sample(self, params):
        states = self.bm.states()
        with torch.no_grad():
            p = self.bm.log_prob(states).exp()
        return {"y": states[torch.multinomial(p, self.n, replacement=True)]}


def test_the_gradient_is_the_exact_log_likelihood_gradient():
    bm = _machine()
    states = bm.states()
    y = states[torch.randint(0, len(states), (50,), generator=torch.Generator().manual_seed(1))]
    # exact: d/dtheta of the mean log-likelihood, log Z by enumeration (differentiable)
    log_z = torch.logsumexp(-bm.energy(states), 0)
    exact = torch.autograd.grad((-bm.energy(y) - log_z).mean(), [bm.upper, bm.bias])
    # the objective on one batch of 50 with 200,000 exact chain samples: its gradient / 50
    # estimates minus the exact gradient; Monte Carlo error about 1/sqrt(200,000) = 0.0022
    torch.manual_seed(0)
    cd = ContrastiveDivergence(lambda n, init: _ExactSampler(bm, n, init), num_chains=200_000)
    with pyro.get_param_store().scope():
        surrogate = cd.differentiable_loss(bm.model, bm.guide, y)
        estimate = torch.autograd.grad(surrogate, [bm.upper, bm.bias])
    for e, g in zip(exact, estimate, strict=True):
        torch.testing.assert_close(-g / len(y), e, atol=5 / math.sqrt(200_000), rtol=0)
    # the loss per example: mean log p~ of the chains minus that of the data
    with torch.no_grad():
        lp_chains = float((-bm.energy(cd.chains)).mean())
        lp_data = float((-bm.energy(y)).mean())
    assert float(surrogate.detach()) / len(y) == pytest.approx(lp_chains - lp_data, abs=1e-4)


def test_persistent_chains_resume_from_a_checkpoint(tmp_path):
    # a run stopped after 6 steps and resumed to 12 equals one that ran 12 straight:
    # only if the persistent chains are restored from the checkpoint
    y = _machine(5, 2).states()[torch.randint(0, 32, (40,), generator=torch.Generator().manual_seed(0))]

    def run(steps, folder, resume=False):
        torch.manual_seed(3)
        bm = BoltzmannMachine(5)
        cd = bm.contrastive_divergence(num_chains=30)
        result = pgen.fit(
            bm.model,
            bm.guide,
            y,
            objective=cd,
            steps=steps,
            batch_size=10,
            lr=0.05,
            checkpoint_dir=folder,
            resume=resume,
            progress=False,
        )
        return result.losses, cd.chains

    straight, chains = run(12, tmp_path / "a")
    run(6, tmp_path / "b")
    resumed, chains_b = run(12, tmp_path / "b", resume=True)
    assert list(resumed) == list(straight)
    torch.testing.assert_close(chains_b, chains, rtol=0, atol=0)


def test_replay_buffer_moves_a_subset_and_restarts_a_fraction():
    bm = _machine(6, 4)
    y = bm.states()[:20]
    seen = []

    def kernel(n, init):
        seen.append(n)
        return bm.gibbs_kernel(n, init=init)

    torch.manual_seed(0)
    cd = ContrastiveDivergence(kernel, num_chains=50, chains_per_step=8, restart=0.5, k=2)
    with pyro.get_param_store().scope():
        cd.loss(bm.model, bm.guide, y)  # sets the chains up; they do not move
        before = cd.chains.clone()
        cd.loss_and_grads(bm.model, bm.guide, y)
    assert seen == [8] and cd.chains.shape == (50, 6)
    assert int((cd.chains != before).any(1).sum()) <= 8


def test_bad_settings_and_models_get_clear_errors():
    bm = _machine()
    with pytest.raises(TypeError, match="kernel must be a callable"):
        ContrastiveDivergence("gibbs")
    with pytest.raises(ValueError, match="chains_per_step=20 exceeds num_chains=10"):
        ContrastiveDivergence(bm.gibbs_kernel, num_chains=10, chains_per_step=20)
    with pytest.raises(ValueError, match="persistent"):
        ContrastiveDivergence(bm.gibbs_kernel, persistent=False, restart=0.1)
    with pytest.raises(ValueError, match="init"):
        ContrastiveDivergence(bm.gibbs_kernel, init="zeros")
    with pytest.raises(TypeError, match="k must be an integer"):
        ContrastiveDivergence(bm.gibbs_kernel, k=0.5)

    def latent_model(x):
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        with pyro.plate("data", len(x)):
            pyro.sample("obs", dist.Normal(z, 1.0).expand([2]).to_event(1), obs=x)

    with pytest.raises(ValueError, match="site 'z' is latent"):
        log_density_per_example(latent_model, torch.zeros(3, 2))
