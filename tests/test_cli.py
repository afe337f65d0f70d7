"""The pgen command: every path on tiny settings, with checks on what it writes."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import pgen
from pgen import runs
from pgen.cli import main

TINY = ["--data", "digits", "--hidden", "32", "--latent-dim", "2", "--batch-size", "256", "--no-progress"]


def _train(out, *extra):
    return main(["train", "vae", *TINY, "--out", str(out), *extra])


def test_train_writes_a_complete_reproducible_run(tmp_path, capsys):
    assert _train(tmp_path / "run", "--epochs", "2") == 0
    assert "trained 14 steps (2 full epochs)" in capsys.readouterr().out
    run = tmp_path / "run"
    for name in (
        "config.json",
        "checkpoint.pt",
        "model.pt",
        "history.json",
        "training.png",
        "samples.png",
        "reconstructions.png",
        "interpolation.png",
        "latent.png",
        "manifold.png",
    ):
        assert (run / name).is_file(), name
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"] == "vae" and cfg["data"]["binarize"] == "threshold"
    assert cfg["model_args"] == {
        "latent_dim": 2,
        "hidden": [32],
        "likelihood": "bernoulli",
        "sigma": "learned",
        "beta": 1.0,
        "activation": "relu",
    }
    assert cfg["fit"]["epochs"] == 2 and cfg["fit"]["batch_size"] == 256
    model = pgen.models.load_model(run / "model.pt")
    assert model.config == {"data_dim": 64, **cfg["model_args"]}
    # the run folder reproduces in Python from config.json alone
    x, _, _ = runs.load_data(cfg["data"], "train")
    import torch

    torch.manual_seed(cfg["fit"]["seed"])
    again = pgen.models.VAE(64, **cfg["model_args"])
    result = pgen.fit(again.model, again.guide, x, progress=False, **cfg["fit"])
    history = json.loads((run / "history.json").read_text())
    assert result.history["train_elbo"] == history["train_elbo"]


def test_resume_continues_exactly(tmp_path):
    assert _train(tmp_path / "straight", "--epochs", "3") == 0
    assert _train(tmp_path / "split", "--epochs", "1") == 0
    assert main(["train", "--resume", str(tmp_path / "split"), "--epochs", "3", "--no-progress"]) == 0
    straight = json.loads((tmp_path / "straight" / "history.json").read_text())
    split = json.loads((tmp_path / "split" / "history.json").read_text())
    assert split["epoch"] == [1, 2, 3]
    assert split["train_elbo"] == straight["train_elbo"]


def test_sample_and_evaluate(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run, "--epochs", "2") == 0
    assert main(["sample", str(run), "-n", "9", "--seed", "1"]) == 0
    samples = np.load(run / "samples.npz")["samples"]
    assert samples.shape == (9, 64) and samples.min() >= 0 and samples.max() <= 1
    assert main(["evaluate", str(run), "--num-samples", "50", "--no-progress"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n"] == 179 and metrics["dims"] == 64 and metrics["num_samples"] == 50
    assert metrics["log_likelihood"] > metrics["elbo"]  # the IWAE bound is tighter
    assert metrics["bits_per_dim"] == pytest.approx(metrics["nll"] / (64 * math.log(2)))
    assert "IS log-likelihood (K=50)" in capsys.readouterr().out


def test_cvae_inpainting_and_class_runs(tmp_path, capsys):
    tiny = ["--data", "digits", "--hidden", "32", "--latent-dim", "2", "--no-progress", "--epochs", "2"]
    run = tmp_path / "inpaint"
    argv = ["train", "cvae", "--task", "inpaint", "--quadrants", "3", *tiny, "--out", str(run)]
    assert main(argv) == 0
    assert (run / "inpainting.png").stat().st_size > 1000
    assert main(["evaluate", str(run), "--num-samples", "20", "--no-progress"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["conditional"] and metrics["dims"] == 16  # the hidden top-right quadrant of 8x8
    assert metrics["log_likelihood"] > metrics["elbo"]
    assert "conditional IS log-likelihood log p(x|y)" in capsys.readouterr().out
    assert main(["sample", str(run), "-n", "3"]) == 0
    draws = np.load(run / "samples.npz")["samples"]
    x, _, _ = runs.load_data(runs.read_config(run)["data"], "test")
    observed = pgen.models.cvae.quadrant_mask((8, 8), 3).numpy()
    assert draws.shape == (8, 3, 64) and np.array_equal(
        draws[:, :, observed], np.repeat(x[:8, None, observed], 3, 1)
    )
    base = tmp_path / "baseline"
    argv = ["train", "cvae_baseline", "--task", "inpaint", "--quadrants", "3", "--data", "digits"]
    assert main([*argv, "--epochs", "2", "--no-progress", "--out", str(base)]) == 0
    assert main(["evaluate", str(base), "--num-samples", "2", "--no-progress"]) == 0
    exact = json.loads((base / "metrics.json").read_text())
    assert exact["elbo"] == pytest.approx(exact["log_likelihood"], abs=1e-4)  # no latent: both exact
    cls = tmp_path / "class"
    assert main(["train", "cvae", "--task", "class", "--conditional-prior", *tiny, "--out", str(cls)]) == 0
    assert main(["sample", str(cls), "-n", "4"]) == 0
    assert np.load(cls / "samples.npz")["samples"].shape == (10, 4, 64)
    assert (cls / "conditional_samples.png").is_file() and (cls / "latent.png").is_file()
    assert (
        main(
            [
                "train",
                "cvae",
                "--task",
                "inpaint",
                "--binarize",
                "dynamic",
                *tiny,
                "--out",
                str(tmp_path / "d"),
            ]
        )
        == 2
    )
    assert "binarize='dynamic'" in capsys.readouterr().err


def test_toy_data_with_a_gaussian_vae(tmp_path):
    run = tmp_path / "moons"
    argv = [
        "train",
        "vae",
        "--data",
        "moons",
        "--likelihood",
        "gaussian",
        "--sigma",
        "learned",
        "--latent-dim",
        "2",
        "--hidden",
        "16",
        "--epochs",
        "2",
        "--n",
        "300",
        "--no-progress",
        "--out",
        str(run),
    ]
    assert main(argv) == 0
    assert (run / "samples.png").is_file() and not (run / "manifold.png").exists()
    assert main(["evaluate", str(run), "--num-samples", "20", "--no-progress"]) == 0
    assert json.loads((run / "metrics.json").read_text())["bits_per_dim"] is None


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "vae", "--latent-dim", "0", "--epochs", "1"], "latent_dim must be an integer >= 1, got 0"),
        (["train"], "name a model to train"),
        (["train", "--resume", "{tmp}/nothing"], "is not a pgen run folder"),
        (["evaluate", "{tmp}"], "is not a pgen run folder"),
        (
            ["train", "vae", "--data", "moons", "--binarize", "static", "--epochs", "1"],
            "applies to image data",
        ),
        (["train", "vae", "--epochs", "1", "--patience", "2"], "patience needs val_data"),
        (["train", "vae", "--data", "mnist", "--epochs", "1"], "needs path="),
    ],
)
def test_errors_are_reported_plainly(tmp_path, capsys, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if argv[:2] == ["train", "vae"]:
        argv += ["--out", str(tmp_path / "run"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("pgen: error:") and message in err


def test_a_run_folder_is_never_overwritten(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run, "--epochs", "1") == 0
    before = (run / "model.pt").read_bytes()
    assert _train(run, "--epochs", "1") == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (run / "model.pt").read_bytes() == before
    (run / "model.pt").unlink()
    assert main(["sample", str(run)]) == 2
    assert "has no trained model" in capsys.readouterr().err


def test_demo_on_small_settings_is_repeatable(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = [
        "demo",
        "--data",
        "digits",
        "--epochs",
        "2",
        "--latent2d-epochs",
        "1",
        "--num-samples",
        "20",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(argv) == 0
    first = json.loads((out / "metrics.json").read_text())
    assert (out / "latent2d" / "manifold.png").is_file() and (out / "samples.png").is_file()
    assert main(argv) == 0  # runs again over its own folder
    assert json.loads((out / "metrics.json").read_text())["log_likelihood"] == first["log_likelihood"]
    assert "IS log-likelihood (K=20)" in capsys.readouterr().out
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    assert main([*argv[:-3], "--out", str(other), "--no-progress"]) == 2
    assert (other / "notes.txt").read_text() == "keep"


def test_the_console_script_is_installed():
    script = Path(sys.executable).parent / "pgen"
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"pgen {pgen.__version__}"


def test_diffusion_run_trains_evaluates_the_bound_and_samples(tmp_path, capsys):
    out = tmp_path / "diff"
    argv = ["train", "diffusion", "--data", "digits", "--timesteps", "50", "--hidden", "32", "32"]
    assert main([*argv, "--loss", "simple", "--epochs", "2", "--out", str(out), "--no-progress"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_args"]["loss"] == "simple" and cfg["fit"]["objective"] == "meanfield"
    assert cfg["data"]["binarize"] == "dequantize"  # the diffusion default: a density on grey levels
    for name in ("samples.png", "forward.png", "reverse.png", "terms.png", "samplers.png", "inpainting.png"):
        assert (out / name).is_file(), name
    assert not (out / "guidance.png").exists()  # unconditional
    # class-conditional, learned variances, weighted timesteps, compiled: the ELBO pair traces
    cond = tmp_path / "cond"
    extra = ["--num-classes", "10", "--variance", "learned", "--timestep-proposal", "weighted", "--jit"]
    assert main([*argv, *extra, "--epochs", "1", "--out", str(cond), "--no-progress"]) == 0
    cfg_c = json.loads((cond / "config.json").read_text())
    assert cfg_c["model_args"]["variance"] == "learned" and cfg_c["fit"]["jit"] is True
    assert (cond / "guidance.png").is_file()
    # 2-D toys are used as they are (images are mapped from [0, 1] to [-1, 1] and clipped)
    toy = tmp_path / "toy"
    assert (
        main(
            [
                "train",
                "diffusion",
                "--data",
                "moons",
                "--n",
                "64",
                "--timesteps",
                "20",
                "--hidden",
                "8",
                "--epochs",
                "1",
                "--out",
                str(toy),
                "--no-progress",
            ]
        )
        == 0
    )
    assert main(["sample", str(toy), "-n", "200", "--sampler", "ddim", "--steps", "5"]) == 0
    assert np.abs(np.load(toy / "samples.npz")["samples"]).max() > 1.0  # not clipped to [-1, 1]
    capsys.readouterr()
    assert main(["evaluate", str(out), "--no-progress"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["log_likelihood"] is None and len(m["denoising_per_t"]) == 49
    # the bound is its terms; bits/dim = (nll + D log 17) / (D log 2) for 17 grey levels
    assert m["elbo"] == pytest.approx(m["reconstruction"] - m["prior_matching"] - m["denoising"], rel=1e-5)
    assert m["bits_per_dim"] == pytest.approx((-m["elbo"] + 64 * math.log(17)) / (64 * math.log(2)))
    assert "bits/dim" in capsys.readouterr().out
    assert main(["sample", str(out), "-n", "8", "--sampler", "ddim", "--steps", "10"]) == 0
    assert np.load(out / "samples.npz")["samples"].shape == (8, 64)
    assert main([*argv, "--objective", "iwae", "--out", str(tmp_path / "bad"), "--no-progress"]) == 2
    assert "--objective for diffusion is one of ['meanfield', 'elbo']" in capsys.readouterr().err


def test_exact_likelihood_runs_made_pixelcnn_and_a_flow(tmp_path, capsys):
    """pgen train made|pixelcnn|realnvp on digits: exact test log-likelihood and bits/dim
    that agree with the model loaded back, sample grids, and prefix completions."""
    quick = ["--data", "digits", "--epochs", "2", "--no-progress"]
    made = tmp_path / "made"
    assert (
        main(["train", "made", *quick, "--binarize", "threshold", "--hidden", "80", "--out", str(made)]) == 0
    )
    assert (
        main(["train", "pixelcnn", *quick, "--channels", "8", "--layers", "2", "--out", str(tmp_path / "pc")])
        == 0
    )
    assert (
        main(
            [
                "train",
                "realnvp",
                *quick,
                "--transforms",
                "2",
                "--hidden",
                "32",
                "--out",
                str(tmp_path / "nvp"),
            ]
        )
        == 0
    )
    for run, levels in ((made, 2), (tmp_path / "pc", 17), (tmp_path / "nvp", None)):
        assert main(["evaluate", str(run), "--no-progress"]) == 0
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["exact"] and metrics["n"] == 179
        model = runs.load_run_model(run)
        if levels is not None:
            assert model.levels == levels
        cfg = json.loads((run / "config.json").read_text())
        with torch.no_grad():
            ll = model.log_prob(runs.load_data(cfg["data"], "test").x).double().mean()
        assert float(ll) == pytest.approx(metrics["log_likelihood"], rel=1e-5)
        shift = 0.0 if levels == 2 else 64 * math.log(17)  # dequantized grey levels: D log L
        bpd = (shift - metrics["log_likelihood"]) / (64 * math.log(2))
        assert metrics["bits_per_dim"] == pytest.approx(bpd, rel=1e-6)
        assert (run / "samples.png").stat().st_size > 1000
    assert (tmp_path / "pc" / "completions.png").stat().st_size > 1000
    assert main(["sample", str(tmp_path / "pc"), "-n", "5", "--given-rows", "3", "--seed", "2"]) == 0
    done = np.load(tmp_path / "pc" / "samples.npz")["samples"]
    test = runs.load_data(json.loads((tmp_path / "pc" / "config.json").read_text())["data"], "test").x[:5]
    np.testing.assert_allclose(done[:, :24], np.floor(test[:, :24].numpy() * 17) / 16, atol=1e-6)
    assert main(["sample", str(tmp_path / "pc"), "-n", "5", "--given-rows", "9"]) == 2
    assert "given_rows must be between 0 and the image's 8 rows" in capsys.readouterr().err


def test_evaluate_quality_scores_samples_on_learned_features(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PGEN_CACHE", str(tmp_path / "features"))
    run = tmp_path / "run"
    assert _train(run, "--epochs", "2") == 0
    assert main(["evaluate", str(run), "--num-samples", "5", "--quality", "150", "--no-progress"]) == 0
    q = json.loads((run / "metrics.json").read_text())["quality"]
    assert q["n"] == 150 and q["frechet_distance"] > 0 and 1 <= q["inception_score"] <= 10
    assert all(0 <= q[k] <= 1 for k in ("precision", "recall", "coverage"))
    assert "Frechet distance" in capsys.readouterr().out
    assert len(list((tmp_path / "features").iterdir())) == 1  # the classifier, cached
    toy = tmp_path / "toy"
    assert (
        main(["train", "realnvp", "--data", "moons", "--steps", "5", "--no-progress", "--out", str(toy)]) == 0
    )
    assert main(["evaluate", str(toy), "--quality", "10", "--no-progress"]) == 2
    assert "quality metrics need image data" in capsys.readouterr().err
