"""Objectives: agreement with Pyro's estimators and with exact per-example bounds."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO

import pgen
from pgen.inference import ELBO, ImportanceWeightedELBO, MeanFieldELBO, make_objective
from pgen.inference.svi import scale_data_plate

from ..conftest import tiny_vae


def _same_draws(fn, seed=0):
    torch.manual_seed(seed)
    return fn()


def _grads(loss, params):
    return torch.autograd.grad(loss, params)


@pytest.mark.parametrize("ours, theirs", [(ELBO, Trace_ELBO), (MeanFieldELBO, TraceMeanField_ELBO)])
def test_values_and_gradients_equal_pyros(digits, ours, theirs):
    x, _ = digits
    vae = tiny_vae(0)
    params = list(vae.parameters())
    a = _same_draws(lambda: ours().differentiable_loss(vae.model, vae.guide, x[:50]))
    b = _same_draws(lambda: theirs().differentiable_loss(vae.model, vae.guide, x[:50]))
    assert a.item() == pytest.approx(b.item(), rel=1e-6)
    for ga, gb in zip(_grads(a, params), _grads(b, params), strict=True):
        torch.testing.assert_close(ga, gb)


def test_score_function_gradient_equals_pyros_for_a_discrete_latent():
    data = torch.tensor([0.0, 1.0, 2.5, 3.0])

    def model(x, y=None):
        with pyro.plate("data", len(x)):
            c = pyro.sample("c", dist.Bernoulli(0.5))
            pyro.sample("obs", dist.Normal(3.0 * c, 1.0), obs=x)

    def guide(x, y=None):
        p = pyro.param("p", torch.full((len(x),), 0.5), constraint=dist.constraints.unit_interval)
        with pyro.plate("data", len(x)):
            pyro.sample("c", dist.Bernoulli(p))

    a = _same_draws(lambda: ELBO().differentiable_loss(model, guide, data))
    b = _same_draws(lambda: Trace_ELBO().differentiable_loss(model, guide, data))
    p = pyro.param("p").unconstrained()
    assert a.item() == pytest.approx(b.item())
    torch.testing.assert_close(_grads(a, [p])[0], _grads(b, [p])[0])


def test_iwae_is_the_per_example_log_mean_exp_of_the_weights(ppca_data):
    x, true = ppca_data
    batch = x[:20]
    for k, alpha in [(7, 0.0), (7, 0.5), (1, 0.0)]:
        objective = ImportanceWeightedELBO(num_particles=k, alpha=alpha)
        loss = _same_draws(lambda obj=objective: obj.loss(true.model, true.guide, batch))
        log_w = _same_draws(lambda k=k: pgen.eval.log_weights(true.model, true.guide, batch, num_samples=k))
        expected = (torch.logsumexp((1 - alpha) * log_w, 0) - math.log(k)) / (1 - alpha)
        assert -loss == pytest.approx(expected.sum().item(), rel=1e-5)
    # K = 1 is the ELBO on the same draw
    elbo = _same_draws(lambda: ELBO().loss(true.model, true.guide, batch))
    iwae1 = _same_draws(lambda: ImportanceWeightedELBO(num_particles=1).loss(true.model, true.guide, batch))
    assert iwae1 == pytest.approx(elbo, rel=1e-6)


def test_iwae_with_the_exact_posterior_is_exact_and_scales_outside_the_log(ppca_data):
    # With q = p(z|x) every weight is p(x): the bound is exact for any K, and a
    # minibatch scaled by N/B gives (N/B) * sum of log p(x_i), the scale outside the log.
    x, true = ppca_data
    batch, n = x[:50], len(x)
    exact = true.log_prob(batch).sum().item()
    for k in (1, 16):
        loss = ImportanceWeightedELBO(num_particles=k).loss(
            scale_data_plate(true.model, n / 50), scale_data_plate(true.exact_guide, n / 50), batch
        )
        assert loss == pytest.approx(-(n / 50) * exact, rel=1e-5)


def test_iwae_refuses_what_it_cannot_bound(digits):
    x, _ = digits
    beta_vae = tiny_vae(0, beta=4.0)
    with pytest.raises(ValueError, match="different scale factors"):
        ImportanceWeightedELBO(3).loss(beta_vae.model, beta_vae.guide, x[:10])

    def model(x, y=None):
        with pyro.plate("data", len(x)):
            c = pyro.sample("c", dist.Bernoulli(0.5))
            pyro.sample("obs", dist.Normal(c, 1.0), obs=x)

    def guide(x, y=None):
        with pyro.plate("data", len(x)):
            pyro.sample("c", dist.Bernoulli(0.3))

    with pytest.raises(ValueError, match="guide site 'c'.*not"):
        ImportanceWeightedELBO(3).loss(model, guide, torch.zeros(4))


def test_make_objective():
    assert isinstance(make_objective("elbo"), ELBO)
    iw = make_objective("iwae", num_particles=12)
    assert isinstance(iw, ImportanceWeightedELBO) and iw.num_particles == 12 and iw.alpha == 0
    assert make_objective("renyi").alpha == 0.5 and make_objective("iwae").num_particles == 5
    obj = TraceMeanField_ELBO()
    assert make_objective(obj) is obj
    with pytest.raises(ValueError, match="set on an ELBO object"):
        make_objective(obj, num_particles=3)
    with pytest.raises(TypeError, match="objective must be a name"):
        make_objective(3)
