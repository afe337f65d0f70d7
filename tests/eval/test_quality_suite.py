"""Sample-quality metrics on cases with a known answer."""

import math

import numpy as np
import pytest
import torch

from pgen.eval import density_coverage, inception_score, memorization, precision_recall


def _modes(n, centres, seed):
    g = torch.Generator().manual_seed(seed)
    which = torch.randint(len(centres), (n,), generator=g)
    return centres[which] + 0.05 * torch.randn(n, 2, generator=g)


CENTRES = (
    torch.tensor([[math.cos(a), math.sin(a)] for a in np.linspace(0, 2 * math.pi, 8, endpoint=False)]) * 4
)


def test_identical_sets_have_full_precision_recall_and_coverage():
    x = _modes(400, CENTRES, 0)
    assert precision_recall(x, x) == (1.0, 1.0)
    density, coverage = density_coverage(x, x)
    assert coverage == 1.0 and density >= 1.0  # each point is inside its own ball and k more


def test_samples_on_half_the_modes_keep_precision_and_lose_half_the_recall():
    """Eight well-separated modes of equal weight; samples on four of them. Precision is
    that of a fresh draw (measured 0.945 here, 0.96 for a fresh draw: the k-NN balls miss
    some tail points); recall and coverage fall to the fraction of data on those modes
    (0.535 here; measured 0.52 and 0.53); density stays near 1, since each sample still
    falls in as many data balls as a fresh one does."""
    data = _modes(400, CENTRES, 0)
    half = _modes(400, CENTRES[:4], 1)
    precision, recall = precision_recall(half, data)
    density, coverage = density_coverage(half, data)
    on_those_modes = float((torch.cdist(data, CENTRES).argmin(1) < 4).double().mean())
    assert precision > 0.9
    assert abs(recall - on_those_modes) < 0.05 and abs(coverage - on_those_modes) < 0.05
    assert 0.8 < density < 1.2


def test_samples_off_the_data_have_no_precision():
    data = _modes(300, CENTRES, 0)
    far = data + 100.0
    assert precision_recall(far, data) == (0.0, 0.0)
    assert density_coverage(far, data) == (0.0, 0.0)


def test_a_fresh_draw_from_the_data_distribution_scores_near_one():
    """Independent draws from the same distribution: precision and recall near 1
    (Kynkäänniemi et al. report about 0.9 with k = 3 on small sets), density near 1."""
    data, fresh = _modes(1000, CENTRES, 0), _modes(1000, CENTRES, 5)
    precision, recall = precision_recall(fresh, data)
    density, coverage = density_coverage(fresh, data)
    assert precision > 0.85 and recall > 0.85 and coverage > 0.9 and 0.8 < density < 1.2


def test_inception_score_ranges_from_one_to_the_number_of_classes():
    assert inception_score(torch.full((50, 10), 0.1)) == pytest.approx(1.0)
    confident = torch.eye(10).repeat(5, 1)  # each class equally often, with certainty
    assert inception_score(confident) == pytest.approx(10.0)
    one_class = torch.zeros(50, 10)
    one_class[:, 3] = 1.0  # certain but never diverse: mode collapse
    assert inception_score(one_class) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="sum to 1"):
        inception_score(torch.full((5, 4), 0.5))


def test_copies_of_the_training_set_are_flagged_as_memorized():
    train, held_out = _modes(500, CENTRES, 0), _modes(200, CENTRES, 1)
    copies = memorization(train[:300], train, held_out)
    assert copies.ratio < 1e-6 and copies.copies == 1.0
    fresh = memorization(_modes(300, CENTRES, 2), train, held_out)
    assert 0.7 < fresh.ratio < 1.4 and fresh.copies < 0.05


def test_bad_input_names_what_is_wrong():
    x = _modes(10, CENTRES, 0)
    with pytest.raises(ValueError, match="k=10 needs more than k points"):
        precision_recall(x, x, k=10)
    with pytest.raises(ValueError, match="samples have 2 features but reference has 3"):
        density_coverage(x, torch.zeros(10, 3))


def test_feature_network_is_trained_once_and_scores_real_digits_as_real(tmp_path):
    import pgen
    from pgen.eval.features import feature_network, sample_quality

    net = feature_network("digits", cache_dir=tmp_path)
    assert net.test_accuracy > 0.9  # measured 0.96
    assert len(list(tmp_path.iterdir())) == 1
    again = feature_network("digits", cache_dir=tmp_path)  # from the file
    x_test, _ = pgen.data.load("digits", "test")
    torch.testing.assert_close(net.features(x_test), again.features(x_test))

    real = sample_quality(x_test, "digits", cache_dir=tmp_path)
    assert real["frechet_distance"] < 1e-6 and real["precision"] == 1.0 and real["recall"] == 1.0
    x_train, _ = pgen.data.load("digits", "train")
    copied = sample_quality(x_train[:300], "digits", cache_dir=tmp_path)
    assert copied["memorization_ratio"] < 1e-3 and copied["near_copies"] == 1.0
    # uniform noise: worse on every count than real digits (measured: FD 134 against 3.4,
    # IS 2.3 against 9.1, precision 0.42, recall 0.13, density 0.24, coverage 0.25 against
    # about 0.9-1.0; k-NN precision is the most lenient, as Naeem et al. point out)
    noise = sample_quality(torch.rand(300, 64), "digits", cache_dir=tmp_path)
    assert noise["frechet_distance"] > 10 * copied["frechet_distance"]
    for key in ("inception_score", "precision", "recall", "density", "coverage"):
        assert noise[key] < 0.6 * copied[key], key


def test_classification_accuracy_score_of_real_and_of_mislabelled_samples():
    """CAS with the real training digits as 'samples' is the classifier's own accuracy
    (measured 0.96); with their labels shuffled, chance (0.1, binomial sd 0.022 on 179
    test digits)."""
    import pgen
    from pgen.eval.features import classification_accuracy_score

    x, y = pgen.data.load("digits", "train")
    assert classification_accuracy_score(x, y, "digits") > 0.9
    shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))]
    assert classification_accuracy_score(x, shuffled, "digits") < 0.1 + 3 * 0.022
    with pytest.raises(ValueError, match="one class per sample"):
        classification_accuracy_score(x, y[:5], "digits")


def test_mode_coverage_counts_the_modes_a_sample_set_reaches():
    from pgen.eval.quality import mode_coverage

    ring = CENTRES / 4  # the unit circle, as pgen.data's "gaussians"
    sd = 0.05
    assert mode_coverage(ring[torch.arange(800) % 8], ring, sd) == (8, 1.0)
    half = ring[torch.arange(800) % 4]  # only four modes
    assert mode_coverage(half, ring, sd) == (4, 1.0)
    off = torch.zeros(800, 2)  # all at the centre of the ring: no mode, no quality
    assert mode_coverage(off, ring, sd) == (0, 0.0)
    few = torch.cat([ring[torch.arange(790) % 7], ring[7:8].repeat(10, 1)])  # the eighth mode barely
    assert mode_coverage(few, ring, sd)[0] == 7  # 10 < 0.2 x 100


def test_quality_of_a_class_conditional_run_draws_each_class_and_scores_cas(tmp_path):
    """``pgen evaluate --quality`` on a CVAE: draws for the classes in turn (the draw for
    class c is the model's own draw for c), and the classification accuracy score."""
    import json

    from pgen import families, runs
    from pgen.cli import main

    run = tmp_path / "cvae"
    argv = ["train", "cvae", "--data", "digits", "--epochs", "3", "--no-progress", "--out", str(run)]
    assert main(argv) == 0
    m = runs.load_run_model(run)
    ctx = families.RunContext(run, runs.read_config(run), m)
    draws, labels = families.of_model("cvae").quality_draws(ctx, n=25, seed=0)
    assert draws.shape == (25, 64) and labels.tolist() == [i % 10 for i in range(25)]
    direct = m.sample(3, y=torch.arange(10), seed=0)  # (class, draw, pixels)
    torch.testing.assert_close(draws[:10], direct[:, 0])
    torch.testing.assert_close(draws[20:], direct[:5, 2])
    q = runs.quality(run, 200)
    assert json.loads((run / "quality.json").read_text()) == q
    assert 0.0 <= q["classification_accuracy_score"] <= 1.0 and q["n"] == 200


def test_frechet_distance_agrees_with_torchmetrics_fid_on_the_same_features():
    """torchmetrics' FID, given pgen's digit features as its custom feature network,
    computes the same number as ``pgen.eval.quality.frechet_distance`` (both in double
    precision; measured: equal to 7 digits)."""
    pytest.importorskip("torchmetrics")
    from torch import nn
    from torchmetrics.image.fid import FrechetInceptionDistance

    import pgen
    from pgen.eval.features import feature_network
    from pgen.eval.quality import frechet_distance

    net = feature_network("digits")

    class Features(nn.Module):
        num_features = int(net.features(torch.rand(2, 64)).shape[1])

        def forward(self, x):
            return net.features(x)

    x, _ = pgen.data.load("digits", "test")
    fake = torch.rand(300, 64, generator=torch.Generator().manual_seed(0))
    fid = FrechetInceptionDistance(feature=Features(), normalize=True, input_img_size=(64,))
    fid.update(x, real=True)
    fid.update(fake, real=False)
    ours = frechet_distance(net.features(fake), net.features(x))
    assert float(fid.compute()) == pytest.approx(ours, rel=1e-5)
    assert ours > 10  # noise is far from digits, so the agreement is not 0 == 0


def test_draws_of_a_dequantized_run_are_scored_on_their_grey_levels(tmp_path, monkeypatch):
    """A dequantized run's draws go back to their levels and meet the grey-level test
    digits: draws that are the dequantized test digits score as the test digits do
    (Fréchet distance 0, precision and recall 1)."""
    import pgen
    from pgen import families, runs
    from pgen.cli import main

    run = tmp_path / "maf"
    argv = ["train", "maf", "--data", "digits", "--binarize", "dequantize", "--steps", "2", "--no-figures"]
    assert main([*argv, "--no-progress", "--out", str(run)]) == 0
    x, _ = pgen.data.load("digits", "test")
    noisy = pgen.data.dequantize(x, 17, generator=torch.Generator().manual_seed(0))
    family = type(families.of_model("maf"))
    monkeypatch.setattr(family, "quality_draws", lambda self, run, *, n, seed: (noisy[:n], None))
    q = runs.quality(run, len(x))
    assert q["frechet_distance"] < 1e-6 and q["precision"] == 1.0 and q["recall"] == 1.0
