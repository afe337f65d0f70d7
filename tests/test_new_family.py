"""Adding a model family is one model file and one family file: both are written here,
inside the test, and `pgen train`, `pgen evaluate` and `pgen sample` drive them without
any change to pgen.runs or pgen.cli."""

import json
import math

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from torch import nn

import pgen
from pgen import families
from pgen.cli import main
from pgen.families import Evaluation, Family, Option
from pgen.models import protocols, registry

# ---------------------------------------------------------------- "the model file"


class DiagonalGaussian(nn.Module):
    """A diagonal Gaussian density, fitted by maximum likelihood (no latent variables).

    Args:
        data_dim: size of one example.
        init_scale: the standard deviation it starts from.
    """

    @protocols.configured
    def __init__(self, data_dim: int, init_scale: float = 1.0):
        super().__init__()
        self.data_dim = data_dim
        self.loc = nn.Parameter(torch.zeros(data_dim))
        self.raw_scale = nn.Parameter(torch.full((data_dim,), math.log(init_scale)))

    @property
    def event_shape(self):
        return (self.data_dim,)

    def validate_data(self, x, y=None, *, name="x"):
        pgen.data.check_data(x, name=name, event_shape=self.event_shape)

    def distribution(self):
        return dist.Normal(self.loc, self.raw_scale.exp()).to_event(1)

    def model(self, x=None, *, y=None, n=None):
        pyro.module("gauss", self)
        with pyro.plate("data", (n or 1) if x is None else x.shape[0]):
            return pyro.sample("obs", self.distribution(), obs=x)

    def guide(self, x=None, *, y=None, n=None):
        pass

    @torch.no_grad()
    def sample(self, n, *, seed=None, shift=0.0):
        g = torch.Generator().manual_seed(seed or 0)
        return self.loc + self.raw_scale.exp() * torch.randn(n, self.data_dim, generator=g) + shift


# ---------------------------------------------------------------- "the family file"


class GaussianTestFamily(Family):
    name = "gaussian_test"
    objective = "elbo"
    evaluate_options = (
        Option("tail", "gaussian_test: also report the share of test points beyond 3 sd.", False, bool),
    )
    sample_options = (Option("shift", "gaussian_test: add this to every draw.", None, float),)

    def evaluate(self, run, *, split, seed, batch_size, num_samples, progress, tail=False, **options):
        x, _ = run.model_view(split)
        with torch.no_grad():
            ll = run.model.distribution().log_prob(x)
        metrics = {**run.header(split, x), "log_likelihood": ll.mean().item()}
        if tail:
            z = (x - run.model.loc) / run.model.raw_scale.exp()
            metrics["tail"] = float((z.abs() > 3).float().mean())
        return Evaluation(metrics)

    def summary(self, metrics):
        return [f"exact {metrics['split']} log-likelihood {metrics['log_likelihood']:.3f} nats"]

    def sample(self, run, *, n, seed, shift=None, **options):
        import matplotlib.pyplot as plt

        draws = run.model.sample(n, seed=seed, shift=shift or 0.0)
        fig, ax = plt.subplots()
        ax.scatter(draws[:, 0], draws[:, 1], s=3)
        return draws, fig

    def figures(self, run):
        yield "means.png", self.sample(run, n=100, seed=0)[1]


@pytest.fixture(autouse=True)
def _registered():
    """What importing the two files would do: register the model and its family."""
    registry.register("gauss_test", family="gaussian_test")(DiagonalGaussian)
    families.register(GaussianTestFamily)
    yield
    registry.unregister("gauss_test")
    families.unregister("gaussian_test")


def test_a_family_defined_here_is_trained_evaluated_and_sampled_by_the_cli(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "gauss_test", "--data", "moons", "--n", "500", "--init-scale", "2", "--steps", "300"]
    assert main([*argv, "--lr", "0.05", "--batch-size", "100", "--no-progress", "--out", str(run)]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model_args"] == {"init_scale": 2.0} and (run / "means.png").is_file()
    assert main(["evaluate", str(run), "--tail"]) == 0
    out = capsys.readouterr().out
    assert "exact test log-likelihood" in out
    m = json.loads((run / "metrics.json").read_text())
    # the maximum-likelihood diagonal Gaussian of the moons: its exact log-likelihood
    x, _ = pgen.data.load("moons", "train", n=500)
    best = dist.Normal(x.mean(0), x.std(0, unbiased=False)).to_event(1)
    xt, _ = pgen.data.load("moons", "test", n=500)
    assert m["log_likelihood"] == pytest.approx(best.log_prob(xt).mean().item(), abs=0.05)
    assert 0 <= m["tail"] < 0.05
    assert main(["sample", str(run), "-n", "7", "--shift", "10"]) == 0
    draws = np.load(run / "samples.npz")["samples"]
    assert draws.shape == (7, 2) and draws.mean() > 8
    assert main(["sample", str(run), "--sampler", "ddim"]) == 2
    assert "--sampler applies to diffusion runs, not to gauss_test" in capsys.readouterr().err


def test_a_model_is_checked_against_its_contract_when_registered_and_used():
    class Unrecorded(DiagonalGaussian):
        def __init__(self, data_dim: int):  # not @configured: model.config would be missing
            super().__init__(data_dim)

    with pytest.raises(TypeError, match="decorate its __init__ with pgen.models.protocols.configured"):
        registry.register("unrecorded_test", family="gaussian_test")(Unrecorded)

    class NoSample(nn.Module):
        @protocols.configured
        def __init__(self, data_dim: int):
            super().__init__()

        model = guide = validate_data = DiagonalGaussian.model
        event_shape = ()

    with pytest.raises(TypeError, match=r"lacks \['sample'\]"):
        registry.register("nosample_test", family="gaussian_test")(NoSample)
    registry.register("notlatent_test", family="latent")(DiagonalGaussian)
    try:
        with pytest.raises(TypeError, match=r"latent family, which needs \['LatentVariableModel'\]"):
            families.of_model("notlatent_test")
    finally:
        registry.unregister("notlatent_test")
