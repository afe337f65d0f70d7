import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import pgen
from pgen.eval import auroc, corrupt, likelihood_auroc


def test_auroc_is_the_mann_whitney_probability_with_ties_halved():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, 40).astype(float)  # many ties
    b = rng.integers(-1, 3, 30).astype(float)
    expected = roc_auc_score(np.r_[np.ones(40), np.zeros(30)], np.r_[a, b])
    assert auroc(a, b) == pytest.approx(expected, abs=1e-12)
    brute = np.mean([(ai > bi) + 0.5 * (ai == bi) for ai in a for bi in b])
    assert auroc(a, b) == pytest.approx(brute, abs=1e-12)
    assert auroc([2.0, 3.0], [0.0, 1.0]) == 1.0 and auroc([0.0], [1.0]) == 0.0
    with pytest.raises(ValueError, match="scores on both sides"):
        auroc([], [1.0])
    with pytest.raises(ValueError, match="must be finite"):
        auroc([np.nan], [1.0])


def test_corruptions():
    x = torch.bernoulli(torch.full((200, 16), 0.3))
    flipped = corrupt(x, "flip", amount=0.1, seed=0)
    share = (flipped != x).float().mean().item()
    assert abs(share - 0.1) < 4 * (0.1 * 0.9 / x.numel()) ** 0.5  # binomial error
    torch.testing.assert_close(corrupt(x, "invert"), 1 - x)
    turned = x
    for _ in range(4):
        turned = corrupt(turned, "rotate")
    torch.testing.assert_close(turned, x)
    assert not torch.equal(corrupt(x, "rotate"), x)
    noise = corrupt(x, "noise", seed=1)
    assert abs(noise.mean().item() - x.mean().item()) < 0.02 and set(noise.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="kind must be one of"):
        corrupt(x, "blur")
    with pytest.raises(ValueError, match="not square"):
        corrupt(torch.zeros(2, 6), "rotate")


def test_a_trained_vae_ranks_held_out_digits_above_noise():
    x, _ = pgen.data.load("digits", "train", binarize="threshold")
    xt, _ = pgen.data.load("digits", "test", binarize="threshold")
    torch.manual_seed(0)
    vae = pgen.models.VAE(64, latent_dim=6, hidden=(128,))
    pgen.fit(vae.model, vae.guide, x, epochs=20, progress=False, seed=0)
    score, s_in, s_out = likelihood_auroc(vae.model, vae.guide, xt, corrupt(xt, "noise"), num_samples=20)
    assert score > 0.95 and s_in.mean() > s_out.mean()  # measured 1.0
    flipped, _, _ = likelihood_auroc(vae.model, vae.guide, xt, corrupt(xt, "flip"), num_samples=20)
    assert 0.8 < flipped <= score  # 10% flipped pixels still look like digits, a bit
