"""The energy models through the CLI and run folders: train (contrastive divergence or
score matching through pgen.fit), resume, evaluate (AIS or importance-sampled log Z,
checked against exact answers), sample, figures, and clear errors."""

import json
import math

import numpy as np
import pytest
import torch

import pgen
from pgen.cli import main
from pgen.eval.energy import importance_log_partition
from pgen.models.rbm import exact_log_partition


def _metrics(run):
    return json.loads((run / "metrics.json").read_text())


def test_rbm_run_trains_resumes_and_evaluates_with_ais(tmp_path, capsys):
    run = tmp_path / "rbm"
    argv = ["train", "rbm", "--data", "digits", "--hidden", "12", "--method", "pcd", "--k", "2"]
    assert main([*argv, "--epochs", "2", "--batch-size", "200", "--out", str(run), "--no-progress"]) == 0
    assert "contrastive gap" in capsys.readouterr().out
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["fit"]["objective"] == "contrastive_divergence"
    assert cfg["objective_args"] == {"method": "pcd", "k": 2, "num_chains": 100, "init": "data"}
    for name in ("training.png", "samples.png", "filters.png", "chain.png"):
        assert (run / name).stat().st_size > 0, name
    assert main(["train", "--resume", str(run), "--epochs", "3", "--no-progress"]) == 0
    assert len(json.loads((run / "history.json").read_text())["epoch"]) == 3
    argv = ["evaluate", str(run), "--num-samples", "100", "--ais-betas", "500", "--raise-betas", "500"]
    assert main([*argv, "--no-progress"]) == 0
    m, rbm = _metrics(run), pgen.runs.load_run_model(run)
    exact = exact_log_partition(rbm)  # 2^12 hidden states
    assert m["log_z_method"] == "ais" and (run / "ais.png").exists()
    assert abs(m["log_z"] - exact) < 4 * m["log_z_se"] + 0.05, (m["log_z"], exact, m["log_z_se"])
    x, _, _ = pgen.runs.load_data(cfg["data"], "test")
    with torch.no_grad():
        ll = float((-rbm.free_energy(x)).mean()) - exact
    assert m["log_likelihood"] == pytest.approx(ll, abs=4 * m["log_z_se"] + 0.05)
    assert m["bits_per_dim"] == pytest.approx(-m["log_likelihood"] / (64 * math.log(2)))
    # reverse AIS: conservative, and close to the exact value on this small machine
    assert ll - 0.5 < m["raise_log_likelihood"] < ll + 4 * m["raise_log_likelihood_se"], (m, ll)
    assert main(["sample", str(run), "-n", "5", "--steps", "20"]) == 0  # 20 Gibbs sweeps
    draws = np.load(run / "samples.npz")["samples"]
    assert draws.shape == (5, 64) and draws.min() >= 0 and draws.max() <= 1
    assert main(["sample", str(run), "--sampler", "ddim"]) == 2
    assert "--sampler applies to diffusion runs" in capsys.readouterr().err


def test_ebm_run_and_its_log_z_agrees_with_quadrature(tmp_path):
    run = tmp_path / "ebm"
    argv = ["train", "ebm", "--data", "swiss_roll", "--n", "300", "--hidden", "16", "--steps", "30"]
    extra = ["--k", "5", "--num-chains", "200", "--chains-per-step", "32", "--out", str(run)]
    assert main([*argv, *extra, "--no-progress"]) == 0
    for name in ("samples.png", "landscape.png", "chain.png"):
        assert (run / name).exists(), name
    assert main(["evaluate", str(run), "--no-progress"]) == 0
    m = _metrics(run)
    ebm = pgen.runs.load_run_model(run)
    # the midpoint rule over [-60, 60]^2 (6 base standard deviations) on a 0.2 grid
    *_, log_z = pgen.plot.energy_grid(ebm.total_energy, (-60, 60, -60, 60), grid=600)
    assert m["log_z"] == pytest.approx(log_z, abs=max(0.03, 4 * m["log_z_se"]))
    assert m["log_z_method"] == "defensive importance sampling" and m["ess"] > 1000


def test_score_run_with_an_objective_flag(tmp_path, capsys):
    run = tmp_path / "score"
    argv = ["train", "score", "--data", "moons", "--n", "200", "--hidden", "16", "--matching", "exact"]
    assert main([*argv, "--steps", "10", "--out", str(run), "--no-progress"]) == 0
    assert json.loads((run / "config.json").read_text())["model_args"]["matching"] == "exact"
    for name in ("samples.png", "score_field.png", "chain.png"):
        assert (run / name).exists(), name
    assert main(["evaluate", str(run), "--no-progress"]) == 0
    m = _metrics(run)
    assert m["matching"] == "exact" and m["log_likelihood"] is None and math.isfinite(m["score_matching"])
    assert main(["sample", str(run), "-n", "7"]) == 0
    assert np.load(run / "samples.npz")["samples"].shape == (7, 2)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "rbm", "--objective", "elbo"], "trains by contrastive divergence"),
        (["train", "score", "--objective", "simple"], "--objective for score is one of"),
        (["train", "vae", "--objective", "sliced"], "vae has no such loss"),
        (["train", "rbm", "--data", "moons"], "binary 0/1 values"),
    ],
)
def test_energy_model_errors(tmp_path, capsys, argv, message):
    assert main([*argv, "--steps", "1", "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert message in capsys.readouterr().err


def test_defensive_importance_sampling_of_a_gaussian_log_z():
    # log p~(x) = -|x - mu|^2 / (2 s^2): Z = 2 pi s^2 in 2-D
    mu, s = torch.tensor([1.0, -0.5]), 0.3
    train = mu + s * torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
    est = importance_log_partition(
        lambda x: -0.5 * ((x - mu) ** 2).sum(-1) / s**2, train, base_scale=5.0, num_samples=100_000
    )
    exact = math.log(2 * math.pi * s**2)
    assert abs(est["log_z"] - exact) < 4 * est["log_z_se"] and est["log_z_se"] < 0.01
    with pytest.raises(ValueError, match="train must be"):
        importance_log_partition(lambda x: x[:, 0], torch.zeros(3), base_scale=1.0)


def test_score_run_on_images_draws_its_annealing_chains(tmp_path):
    run = tmp_path / "digits"
    argv = ["train", "score", "--data", "digits", "--binarize", "none", "--hidden", "8", "--steps", "3"]
    assert main([*argv, "--out", str(run), "--no-progress"]) == 0
    assert (run / "samples.png").exists() and (run / "chain.png").exists()
    assert main(["sample", str(run), "-n", "4", "--steps", "5"]) == 0  # 5 steps per noise level
    assert np.load(run / "samples.npz")["samples"].shape == (4, 64)
