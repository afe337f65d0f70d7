"""Shared test fixtures. Tests use small data, few steps and fixed seeds."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pyro  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import pgen  # noqa: E402


@pytest.fixture(autouse=True)
def _clean_state():
    """Each test starts with an empty global param store and validation on."""
    pyro.clear_param_store()
    pyro.enable_validation(True)
    yield
    pyro.clear_param_store()


@pytest.fixture(scope="session")
def digits():
    """A small binarized slice of sklearn's digits: (x_train, x_val), 64 features."""
    x, _ = pgen.data.load("digits", binarize="threshold")
    xv, _ = pgen.data.load("digits", "test", binarize="threshold")
    return x[:256], xv[:96]


@pytest.fixture(scope="session")
def ppca_data():
    """1000 draws from a 5-D PPCA with a 2-D latent space, with its generating model."""
    torch.manual_seed(1)
    true = pgen.models.PPCA(5, 2)
    with torch.no_grad():
        true.generative["weight"].copy_(torch.randn(5, 2))
        true.generative["bias"].copy_(torch.randn(5))
        x = true.model(n=1000).detach()
    return x, true


def tiny_vae(seed=0, data_dim=64, **kw):
    torch.manual_seed(seed)
    kw.setdefault("latent_dim", 4)
    kw.setdefault("hidden", (32,))
    return pgen.models.VAE(data_dim, **kw)
