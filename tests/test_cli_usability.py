"""What a new user met walking the README (issue 15): long work that printed nothing,
output that buried the answer, help that showed markup, flags that meant two things."""

import json
import re

import pytest

import pgen
from pgen.cli import build_parser, main


def test_evaluate_prints_a_summary_and_the_full_metrics_go_to_the_file(tmp_path, capsys):
    run = tmp_path / "diff"
    argv = ["train", "diffusion", "--data", "digits", "--timesteps", "40", "--hidden", "16", "--epochs", "1"]
    assert main([*argv, "--no-figures", "--no-progress", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) <= 4, out
    assert (
        "metrics.json" in out and len(json.loads((run / "metrics.json").read_text())["denoising_per_t"]) == 39
    )


def test_results_print_short():
    from pgen.models.bayes import CorrelatedGaussian

    result = pgen.sample(
        CorrelatedGaussian().model, chains=2, warmup=50, draws=200, progress=False, warn=False
    )
    text = repr(result)
    assert len(text) < 400 and "min bulk ESS" in text and "2 chains x 200 draws" in text


def test_teach_writes_outside_the_repository_by_default():
    args = build_parser().parse_args(["teach", "elbo"])
    assert args.out == "runs/teach"


def test_help_is_plain_text_and_documents_every_model_flag(capsys):
    for argv in (["train", "--help"], ["train", "vae", "--help"], ["train", "diffusion", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        text = capsys.readouterr().out
        assert not re.search(r"``|:math:|:class:|:func:|:meth:", text), text
    with pytest.raises(SystemExit):
        main(["train", "vae", "--help"])
    text = capsys.readouterr().out
    assert re.search(r"--latent-dim LATENT_DIM\s+the dimension of the latent variable z", text)
    assert "(module docstring)" not in text
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    assert "nuts, hmc, meanfield" in capsys.readouterr().out


def test_a_typo_in_a_flag_gets_a_suggestion(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "vae", "--latnt-dim", "2", "--out", str(tmp_path / "r")])
    assert stop.value.code == 2
    assert "did you mean --latent-dim?" in capsys.readouterr().err


def test_objective_is_the_engines_and_the_diffusion_loss_has_its_own_flag(tmp_path, capsys):
    run = tmp_path / "d"
    argv = ["train", "diffusion", "--data", "digits", "--timesteps", "20", "--hidden", "8", "--epochs", "1"]
    assert (
        main(
            [
                *argv,
                "--loss",
                "simple",
                "--objective",
                "elbo",
                "--no-figures",
                "--no-progress",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model_args"]["loss"] == "simple" and cfg["fit"]["objective"] == "elbo"
    assert main([*argv, "--objective", "simple", "--no-progress", "--out", str(tmp_path / "e")]) == 2
    assert "use --loss simple" in capsys.readouterr().err


def test_ais_shows_its_progress(tmp_path, capsys):
    run = tmp_path / "rbm"
    argv = ["train", "rbm", "--data", "digits", "--hidden", "8", "--epochs", "1", "--batch-size", "400"]
    assert main([*argv, "--no-figures", "--no-progress", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--num-samples", "10", "--ais-betas", "300"]) == 0
    assert "AIS" in capsys.readouterr().err  # the bar, written as it goes


def test_compare_keeps_the_methods_it_finished(tmp_path, monkeypatch, capsys):
    import sys

    cmp = sys.modules["pgen.inference.compare"]
    real = cmp.make_guide

    def interrupt_at_fullrank(name, model, **kw):
        if name == "fullrank":
            raise KeyboardInterrupt
        return real(name, model, **kw)

    monkeypatch.setattr(cmp, "make_guide", interrupt_at_fullrank)
    out = tmp_path / "cmp"
    argv = ["compare", "linreg", "--methods", "meanfield,fullrank", "--steps", "50", "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 130
    assert "| meanfield |" in (out / "table.md").read_text()


def test_compare_exits_non_zero_when_a_method_failed_and_keeps_the_others(tmp_path, monkeypatch, capsys):
    import sys

    cmp = sys.modules["pgen.inference.compare"]
    real = cmp.make_guide

    def fail_at_fullrank(name, model, **kw):
        if name == "fullrank":
            raise RuntimeError("linalg.cholesky: not positive-definite")
        return real(name, model, **kw)

    monkeypatch.setattr(cmp, "make_guide", fail_at_fullrank)
    out = tmp_path / "cmp"
    argv = ["compare", "linreg", "--methods", "meanfield,fullrank", "--steps", "50", "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 1
    assert "pgen: fullrank failed: RuntimeError: linalg.cholesky" in capsys.readouterr().err
    assert "| meanfield |" in (out / "table.md").read_text()


def test_compare_checks_its_arguments_before_the_reference_run(tmp_path, capsys):
    assert main(["compare", "logreg", "--chains", "0", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "chains must be an integer >= 1, got 0" in capsys.readouterr().err


def test_every_flag_has_help_text():
    from pgen import families
    from pgen.models import registry
    from pgen.runs.options import data_options, fit_options

    options = [*fit_options(), *data_options()]
    for name in registry.names():
        spec = registry.get(name)
        family = families.get(spec.family)
        options += [*family.model_options(spec), *family.objective_options(spec)]
    for name in families.names():
        options += [*families.get(name).evaluate_options, *families.get(name).sample_options]
    undocumented = sorted({o.name for o in options if len(o.help) < 10})
    assert not undocumented, undocumented


def test_the_vi_posterior_warning_says_what_to_do():
    import pyro
    import torch

    from pgen.inference.guides import make_guide

    x, y = torch.randn(20, 2), torch.randn(20)

    def matmul_model(x, y=None):  # `x @ w` does not broadcast over a batch of draws of w
        w = pyro.sample("w", pyro.distributions.Normal(torch.zeros(2), 1.0).to_event(1))
        with pyro.plate("data", len(x)):
            pyro.sample("obs", pyro.distributions.Normal(x @ w, 1.0), obs=y)

    guide = make_guide("meanfield", matmul_model)
    fit = pgen.fit(matmul_model, guide, None, model_args=(x,), model_kwargs={"y": y}, steps=5, progress=False)
    with pytest.warns(RuntimeWarning, match=r"does not broadcast.*\(x \* w\).sum\(-1\) instead of x @ w"):
        fit.posterior(num_draws=10, seed=0)


def test_every_figure_the_readme_shows_is_in_the_repository():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    shown = set(re.findall(r"\]\((docs/[^)]+\.png)\)", readme)) | set(
        re.findall(r"`(docs/[\w/.-]+\.png)`", readme)
    )
    assert len(shown) > 20
    missing = sorted(p for p in shown if not (root / p).is_file())
    assert not missing, missing
