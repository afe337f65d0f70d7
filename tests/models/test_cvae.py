import math

import pyro
import pyro.distributions as dist
import pytest
import torch

import pgen
from pgen.models import CVAE, Baseline
from pgen.models.cvae import quadrant_mask


def test_quadrants_are_observed_in_the_documented_order():
    one = quadrant_mask((4, 4), 1).reshape(4, 4)
    assert one[2:, :2].all() and one.sum() == 4  # bottom-left
    two = quadrant_mask((4, 4), 2).reshape(4, 4)
    assert two[2:].all() and two.sum() == 8  # bottom half
    three = quadrant_mask((28, 28), 3).reshape(28, 28)
    assert not three[:14, 14:].any() and three.sum() == 3 * 196  # all but top-right


def test_split_and_merge_are_inverse_and_completions_keep_the_observed_pixels():
    torch.manual_seed(0)
    m = CVAE(16, latent_dim=2, hidden=(8,), task="inpaint", quadrants=1)
    images = torch.bernoulli(torch.full((5, 16), 0.5))
    hidden, observed = m.split(images)
    assert hidden.shape == (5, 12) and observed.shape == (5, 4)
    torch.testing.assert_close(m.merge(hidden, observed), images)
    done = m.complete(images, n=3, seed=0)
    assert done.shape == (5, 3, 16)
    torch.testing.assert_close(done[..., m.mask], images[:, None, m.mask].expand(-1, 3, -1))
    torch.testing.assert_close(done, m.complete(images, n=3, seed=0))  # seeded


class _LinearGaussianCVAE:
    r"""z | y ~ N(a y, 1), x | y, z ~ N(w z + b y, s^2 I): p(x | y) is Gaussian with
    mean (w a + b) y and covariance w w^T + s^2 I, the exact answer."""

    def __init__(self, dim=3):
        g = torch.Generator().manual_seed(0)
        self.a, self.b = 0.7, torch.randn(dim, generator=g)
        self.w, self.s = torch.randn(dim, generator=g), 0.5

    def model(self, x=None, *, y):
        with pyro.plate("data", len(y)):
            z = pyro.sample("z", dist.Normal(self.a * y, 1.0))
            loc = z[..., None] * self.w + y[:, None] * self.b
            return pyro.sample("obs", dist.Normal(loc, self.s).to_event(1), obs=x)

    def posterior(self, x, y):
        """The exact q(z | x, y): precision 1 + |w|^2 / s^2."""
        prec = 1.0 + self.w @ self.w / self.s**2
        resid = x - y[:, None] * self.b
        mean = (self.a * y + resid @ self.w / self.s**2) / prec
        return mean, prec**-0.5

    def exact(self, x, y):
        cov = torch.outer(self.w, self.w) + self.s**2 * torch.eye(len(self.w))
        mean = y[:, None] * (self.w * self.a + self.b)
        return dist.MultivariateNormal(mean, covariance_matrix=cov).log_prob(x)


def test_conditional_importance_sampled_likelihood_matches_the_exact_answer():
    lg = _LinearGaussianCVAE()
    torch.manual_seed(1)
    y = torch.randn(20)
    x = pyro.infer.Predictive(lg.model, num_samples=1)(y=y)["obs"][0]
    exact = lg.exact(x, y)

    def exact_guide(x=None, *, y):
        mean, sd = lg.posterior(x, y)
        with pyro.plate("data", len(y)):
            pyro.sample("z", dist.Normal(mean, sd))

    def wide_guide(x=None, *, y):  # right mean, twice the sd: weights vary, the estimate is unbiased
        mean, sd = lg.posterior(x, y)
        with pyro.plate("data", len(y)):
            pyro.sample("z", dist.Normal(mean + 0.3 * sd, 2 * sd))

    # with the exact posterior every weight equals p(x | y): the estimate is exact for any K
    ll = pgen.eval.log_likelihood(lg.model, exact_guide, x, y, num_samples=3)
    torch.testing.assert_close(ll, exact, atol=1e-4, rtol=0)
    ll, se = pgen.eval.log_likelihood(lg.model, wide_guide, x, y, num_samples=4000, return_stderr=True)
    assert ((ll - exact).abs() < 4 * se + 1e-3).all()
    elbo = pgen.eval.elbo(lg.model, wide_guide, x, y, num_samples=200)
    assert (elbo < exact).all()  # the ELBO is a strict lower bound for the wrong guide


def test_baseline_likelihood_is_exact_cross_entropy():
    torch.manual_seed(0)
    m = Baseline(16, hidden=(8,), task="inpaint", quadrants=2)
    images = torch.bernoulli(torch.full((7, 16), 0.4))
    x, y = m.prepare_data(images)
    ll = pgen.eval.log_likelihood(m.model, m.guide, x, y, num_samples=2)
    p = m.predict(y)
    expected = (x * p.log() + (1 - x) * (1 - p).log()).sum(-1)
    torch.testing.assert_close(ll, expected, atol=1e-4, rtol=0)


def test_class_conditional_cvae_learns_the_classes_and_its_likelihood_beats_its_elbo():
    x, labels = pgen.data.load("digits", "train", binarize="threshold")
    xt, lt = pgen.data.load("digits", "test", binarize="threshold")
    torch.manual_seed(0)
    m = CVAE(64, latent_dim=4, hidden=(64,), task="class", num_classes=10, conditional_prior=True)
    pgen.fit(m.model, m.guide, (x, labels), epochs=30, lr=3e-3, progress=False, seed=0)
    ll, se = pgen.eval.log_likelihood(m.model, m.guide, xt, lt, num_samples=200, return_stderr=True)
    elbo = pgen.eval.elbo(m.model, m.guide, xt, lt, num_samples=20)
    assert ll.mean() > elbo.mean() and ((ll - elbo) > -4 * se - 0.05).all()  # log p >= ELBO
    # the label carries information: a wrong label makes the digits less likely
    wrong = (lt + 1) % 10
    ll_wrong = pgen.eval.log_likelihood(m.model, m.guide, xt, wrong, num_samples=200)
    assert ll.mean() - ll_wrong.mean() > 3.0
    # samples of class k look most like the training digits of class k
    draws = m.sample(20, y=torch.arange(10), seed=0).mean(1)  # (10, 64)
    means = torch.stack([x[labels == k].mean(0) for k in range(10)])
    nearest = torch.cdist(draws, means).argmin(1)
    assert (nearest == torch.arange(10)).sum() >= 9


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="task='class' needs num_classes"):
        CVAE(64, task="class")
    with pytest.raises(ValueError, match="quadrants must be 1, 2 or 3"):
        CVAE(64, task="inpaint", quadrants=4)
    with pytest.raises(ValueError, match="quadrants must be an integer >= 1"):
        CVAE(64, task="inpaint", quadrants=0)
    with pytest.raises(ValueError, match="not a square image"):
        CVAE(60, task="inpaint")
    with pytest.raises(ValueError, match=r"mask has shape \(10,\); expected \(64,\)"):
        CVAE(64, task="inpaint", mask=[1] * 10)
    with pytest.raises(ValueError, match="observes every pixel"):
        CVAE(64, task="inpaint", mask=[1] * 64)
    with pytest.raises(ValueError, match="hides every pixel"):
        Baseline(64, task="inpaint", mask=[0] * 64)
    m = CVAE(16, latent_dim=2, hidden=(4,), task="class", num_classes=3)
    with pytest.raises(ValueError, match=r"y has 1 label\(s\) outside \[0, 2\]; the first is y\[1\] = 3"):
        m.model(torch.zeros(2, 16), y=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="needs y, the condition"):
        m.model(torch.zeros(2, 16))
    with pytest.raises(ValueError, match="split is for task='inpaint'"):
        m.split(torch.zeros(2, 16))
    inpaint = CVAE(16, latent_dim=2, hidden=(4,), task="inpaint")
    with pytest.raises(ValueError, match=r"y has shape \(2, 5\); expected \(..., 4\) observed pixels"):
        inpaint.model(torch.zeros(2, 12), y=torch.zeros(2, 5))
    with pytest.raises(ValueError, match="fit it on \\(x, y\\) pairs"):
        pgen.fit(inpaint.model, inpaint.guide, torch.zeros(4, 12), steps=1, progress=False)
    custom = CVAE(16, latent_dim=2, hidden=(4,), task="inpaint", mask=[1, 0] * 8)
    assert custom.cond_dim == 8 and custom.config["mask"] == [1, 0] * 8
    assert math.isclose(custom.target_dim, 8)


def test_samples_of_a_class_are_that_class_with_the_default_prior():
    # Issue 15: with an N(0, I) prior the class went into z and the decoder ignored y, so
    # rows of "samples of class k" held random digits. Measured as the issue measured it,
    # on 28x28 digits (8x8 digits do not show it): a classifier trained on the real
    # digits (0.92 on the test digits) labels the samples' means.
    from pgen.models.ssvae import Classifier

    x, labels = pgen.data.load("mnist5k", "train", binarize="threshold")
    xt, lt = pgen.data.load("mnist5k", "test", binarize="threshold")
    torch.manual_seed(0)
    clf = Classifier(784, 10, hidden=(128,))
    pgen.fit(clf.model, clf.guide, (x, labels), epochs=10, lr=1e-3, progress=False, seed=0)
    assert float((clf.classify(xt) == lt).float().mean()) > 0.85
    agree = {}
    for prior in (True, False):
        torch.manual_seed(0)
        m = CVAE(784, latent_dim=20, hidden=(200,), task="class", num_classes=10, conditional_prior=prior)
        pgen.fit(m.model, m.guide, (x, labels), epochs=10, lr=1e-3, progress=False, seed=0)
        draws = m.sample(30, y=torch.arange(10), seed=0)  # (10, 30, 784)
        labelled = clf.classify(draws.reshape(-1, 784)).reshape(10, 30)
        agree[prior] = float((labelled == torch.arange(10)[:, None]).float().mean())
    # measured 0.85 with the learned prior, 0.31 with N(0, I)
    assert agree[True] > 0.75 and agree[False] < 0.5, agree
    assert CVAE(784, task="class", num_classes=10).conditional_prior  # the default
