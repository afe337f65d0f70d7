"""MADE and PixelCNN as exact-likelihood models: the autoregressive property by gradients,
the likelihood against enumeration of a tiny space, sequential sampling against the
model's own probabilities, completion, and training on real digits."""

import itertools
import math

import pytest
import torch

import pgen
from pgen.models import MADEDensity, PixelCNN
from pgen.models.autoregressive import levels_of


def _all_levels(d, levels):
    return torch.tensor(list(itertools.product(range(levels), repeat=d)))


def _logits_of_inputs(model, inputs):
    """Logits as a function of the network's continuous inputs (for gradients)."""
    if isinstance(model, MADEDensity):
        return model.made(inputs)
    v = h = inputs.reshape(-1, 1, *model.image_shape)
    for layer in model.gated:
        v, h = layer(v, h)
    return model.head(h).flatten(2).transpose(1, 2)


def _models():
    torch.manual_seed(0)
    return {
        "made natural": MADEDensity(6, levels=3, hidden=(16, 16)),
        "made random": MADEDensity(6, levels=3, hidden=(16,), order="random", order_seed=4),
        "made ensemble": MADEDensity(6, levels=2, hidden=(16,), num_orders=3),
        "pixelcnn": PixelCNN(6, levels=3, channels=6, layers=3, image_shape=(2, 3)),
        "pixelcnn 5x5 kernel": PixelCNN(6, levels=2, channels=4, layers=2, kernel=5, image_shape=(3, 2)),
    }


@pytest.mark.parametrize("name", list(_models()))
def test_each_output_depends_only_on_the_values_before_it(name):
    """d logits[order[t]] / d input[order[s]] = 0 for s >= t, and (no blind spot) not
    zero for every s < t in these small networks."""
    model = _models()[name]
    for j in range(getattr(model, "num_orders", 1)):
        if isinstance(model, MADEDensity):
            model.made.use_order(j)
        order = model.order.tolist()
        inputs = torch.randn(1, model.data_dim, requires_grad=True)
        logits = _logits_of_inputs(model, inputs)
        for t, d in enumerate(order):
            (grad,) = torch.autograd.grad(logits[0, d].sum(), inputs, retain_graph=True)
            seen = {s for s, e in enumerate(order) if grad[0, e].abs() > 0}
            assert seen == set(range(t)), (name, j, t, sorted(seen))


@pytest.mark.parametrize("name", list(_models()))
def test_probabilities_of_every_configuration_sum_to_one(name):
    """Enumerate all levels^6 examples: sum P(k) = 1 to float error."""
    model = _models()[name].eval()
    k = _all_levels(6, model.levels)
    with torch.no_grad():
        total = torch.logsumexp(model.log_prob_levels(k).double(), 0)
    assert abs(float(total)) < 1e-5


def test_log_density_on_dequantized_data_is_log_p_plus_d_log_levels():
    torch.manual_seed(0)
    model = PixelCNN(6, levels=3, channels=4, layers=2, image_shape=(2, 3)).eval()
    k = torch.randint(0, 3, (10, 6))
    x = pgen.data.dequantize(k / 2.0, levels=3)
    with torch.no_grad():
        expected = model.log_prob_levels(k) + 6 * math.log(3)
        torch.testing.assert_close(model.log_prob(x), expected)
        torch.testing.assert_close(model.log_prob(k / 2.0), expected)  # grey values k/(L-1) too


def test_sequential_samples_follow_the_models_probabilities():
    """Frequencies of 6,000 draws over the 8 binary 1x3 images against P(k): a chi-square
    statistic with 7 degrees of freedom, under its 0.999 quantile (24.3)."""
    torch.manual_seed(1)
    model = PixelCNN(3, levels=2, channels=4, layers=2, image_shape=(1, 3)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))  # far from uniform
        probs = model.log_prob_levels(_all_levels(3, 2)).exp()
    draws = model.sample(6000, seed=0)
    index = (draws.long() * torch.tensor([4, 2, 1])).sum(-1)
    counts = torch.bincount(index, minlength=8).double()
    expected = 6000 * probs.double()
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 24.3, (chi2, counts, expected)


def test_completion_keeps_the_given_prefix_and_is_reproducible():
    torch.manual_seed(0)
    model = PixelCNN(16, levels=5, channels=4, layers=2)
    x = torch.randint(0, 5, (4, 16)) / 4.0
    done = model.complete(x, 8, seed=3)
    torch.testing.assert_close(done[:, :8], x[:, :8])
    torch.testing.assert_close(done, model.complete(x, 8, seed=3))
    assert not torch.equal(done[:, 8:], model.complete(x, 8, seed=4)[:, 8:])
    with pytest.raises(ValueError, match="given=17"):
        model.complete(x, 17)


def test_levels_are_read_off_the_data():
    assert levels_of(torch.tensor([[0.0, 1.0, 1.0]])) == 2
    assert levels_of(torch.arange(17) / 16.0) == 17
    assert levels_of(torch.tensor([0.0, 3.0, 4.0]) / 255.0) == 256


def test_bad_settings_and_data_name_the_argument():
    with pytest.raises(ValueError, match="kernel must be odd"):
        PixelCNN(16, kernel=4)
    with pytest.raises(ValueError, match="not a square image"):
        PixelCNN(15)
    with pytest.raises(ValueError, match="order must be one of"):
        MADEDensity(6, order="sideways")
    with pytest.raises(ValueError, match="binary"):
        MADEDensity(4, levels=2, hidden=(8,)).validate_data(torch.full((2, 4), 0.5))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        PixelCNN(4, levels=3).validate_data(torch.full((2, 4), 2.0))


def test_order_agnostic_ensemble_likelihood_is_the_mixture_of_its_orders():
    torch.manual_seed(0)
    model = MADEDensity(5, levels=2, hidden=(12,), num_orders=3).eval()
    k = _all_levels(5, 2)
    with torch.no_grad():
        mixture = model.log_prob_levels(k)
        each = []
        for j in range(3):
            model.made.use_order(j)
            each.append(MADEDensity.__mro__[1].log_prob_levels(model, k))
        model.made.use_order(0)
    torch.testing.assert_close(mixture, torch.logsumexp(torch.stack(each), 0) - math.log(3))


@pytest.mark.parametrize("name", ["made", "pixelcnn"])
def test_training_on_binarized_digits_beats_independent_pixels(name):
    """Through pgen.fit: held-out log-likelihood above that of the best independent-pixel
    model (per-pixel Bernoulli frequencies of the training set), the baseline any model
    with dependencies must beat."""
    x, _ = pgen.data.load("digits", "train", binarize="threshold")
    xt, _ = pgen.data.load("digits", "test", binarize="threshold")
    x, xt = x[:600], xt[:200]
    torch.manual_seed(0)
    model = (
        MADEDensity(64, levels=2, hidden=(200,))
        if name == "made"
        else PixelCNN(64, levels=2, channels=16, layers=3)
    )
    pgen.fit(model.model, model.guide, x, epochs=25, batch_size=64, lr=3e-3, seed=0, progress=False)
    p = x.mean(0).clamp(1e-3, 1 - 1e-3)
    independent = (xt * p.log() + (1 - xt) * (1 - p).log()).sum(-1).mean()
    with torch.no_grad():
        ll = model.eval().log_prob(xt).mean()
    assert ll > independent + 3.0, (float(ll), float(independent))
