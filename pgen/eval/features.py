r"""Features for sample quality: a classifier trained on the data set itself.

FID and the Inception Score use an Inception network trained on ImageNet, which pgen
cannot download. As is done for MNIST in the literature, the features here come from a
classifier trained on the same data's training split: an MLP (two hidden layers) whose
penultimate activations are the features and whose softmax gives :math:`p(y|x)` for the
Inception-Score analogue. It is trained once per data set and seed (Adam, a fixed
number of epochs, fixed seed: the same network on every machine up to float error) and
cached as a file, so every run evaluated on the same data is measured with the same
features.

:func:`sample_quality` computes the whole suite of :mod:`pgen.eval.quality` on those
features for a set of samples against the test split; :func:`classification_accuracy_score`
(Ravuri & Vinyals 2019) trains the same classifier on a conditional model's labelled
samples and scores it on the real test split.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..checks import check_int
from .quality import density_coverage, frechet_distance, inception_score, memorization, precision_recall

__all__ = ["FeatureNet", "feature_network", "sample_quality", "classification_accuracy_score", "cache_folder"]


class FeatureNet(nn.Module):
    """An MLP classifier; :meth:`features` are its last hidden layer's activations."""

    def __init__(self, data_dim: int, classes: int, hidden: tuple[int, int] = (256, 128)):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(data_dim, hidden[0]), nn.ReLU(), nn.Linear(hidden[0], hidden[1]), nn.ReLU()
        )
        self.head = nn.Linear(hidden[1], classes)
        self.data_dim, self.classes = data_dim, classes

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.reshape(len(x), -1).to(self.head.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        return float((self(x).argmax(1) == y).double().mean())


def _train(x: torch.Tensor, y: torch.Tensor, classes: int, *, epochs: int, seed: int) -> FeatureNet:
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        net = FeatureNet(x[0].numel(), classes)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
        g = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            perm = torch.randperm(len(x), generator=g)
            for i in range(0, len(x), 128):
                idx = perm[i : i + 128]
                loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return net.eval()


def cache_folder(cache_dir: str | Path | None = None) -> Path:
    """Where feature networks are kept: ``cache_dir``, else ``$PGEN_CACHE``, else
    ``runs/.features``."""
    return Path(cache_dir or os.environ.get("PGEN_CACHE") or "runs/.features")


def feature_network(
    data: str = "digits", *, path: str | None = None, seed: int = 0, epochs: int = 30, cache_dir=None
) -> FeatureNet:
    """The feature classifier of data set ``data`` (a :func:`pgen.data.load` name with
    labels), trained on its training split in [0, 1] grey levels, or read from the cache
    (module docstring). Its test accuracy is ``net.test_accuracy``."""
    from .. import data as datasets
    from ..io import load, save

    seed, epochs = check_int("seed", seed, minimum=0), check_int("epochs", epochs, minimum=1)
    file = cache_folder(cache_dir) / f"{data}-seed{seed}-epochs{epochs}.pt"
    if file.exists():
        saved = load(file, kind="features")
        net = FeatureNet(saved["data_dim"], saved["classes"])
        net.load_state_dict(saved["state"])
        net.test_accuracy = saved["test_accuracy"]
        return net.eval()
    x, y = datasets.load(data, "train", path=path)
    if y is None:
        raise ValueError(
            f"data={data!r} has no labels; the feature network is a classifier of a labelled set"
        )
    xt, yt = datasets.load(data, "test", path=path)
    classes = int(max(y.max(), yt.max())) + 1
    net = _train(x.reshape(len(x), -1).float(), y.long(), classes, epochs=epochs, seed=seed)
    net.test_accuracy = net.accuracy(xt.reshape(len(xt), -1).float(), yt.long())
    file.parent.mkdir(parents=True, exist_ok=True)
    save(
        file,
        {
            "data_dim": net.data_dim,
            "classes": classes,
            "state": net.state_dict(),
            "test_accuracy": net.test_accuracy,
        },
        kind="features",
    )
    return net


@torch.no_grad()
def sample_quality(
    samples: torch.Tensor,
    data: str = "digits",
    *,
    path: str | None = None,
    k: int = 3,
    seed: int = 0,
    cache_dir=None,
    reference: torch.Tensor | None = None,
    train: torch.Tensor | None = None,
) -> dict:
    """Every sample-quality metric of ``samples`` (``(N, D)`` in [0, 1], grey levels or
    binary) against ``reference`` (default: the test split of ``data``), on the feature
    network's features: the Fréchet distance, the Inception-Score analogue,
    precision/recall (``k``), density/coverage (``k + 2``), and memorization against
    ``train`` (default: the training split), with ``reference`` as the held-out data.
    Give ``reference`` and ``train`` as the model saw them (binarized, say)."""
    from .. import data as datasets

    net = feature_network(data, path=path, seed=seed, cache_dir=cache_dir)
    samples = torch.as_tensor(samples).reshape(len(samples), -1).float()
    if samples.shape[1] != net.data_dim:
        raise ValueError(f"samples have {samples.shape[1]} values each; {data} images have {net.data_dim}")
    x_test = datasets.load(data, "test", path=path)[0] if reference is None else reference
    x_train = datasets.load(data, "train", path=path)[0] if train is None else train
    f_fake, f_real = net.features(samples), net.features(x_test.reshape(len(x_test), -1).float())
    f_train = net.features(x_train.reshape(len(x_train), -1).float())
    precision, recall = precision_recall(f_fake, f_real, k=k)
    density, coverage = density_coverage(f_fake, f_real, k=k + 2)
    copied = memorization(f_fake, f_train, f_real)
    return {
        "features": f"{data} classifier (test accuracy {net.test_accuracy:.3f})",
        "n": len(samples),
        "frechet_distance": frechet_distance(f_fake, f_real),
        "inception_score": inception_score(torch.softmax(net(samples), 1)),
        "precision": precision,
        "recall": recall,
        "density": density,
        "coverage": coverage,
        "memorization_ratio": copied.ratio,
        "near_copies": copied.copies,
    }


def classification_accuracy_score(
    samples: torch.Tensor,
    labels: torch.Tensor,
    data: str = "digits",
    *,
    path: str | None = None,
    seed: int = 0,
) -> float:
    """CAS (Ravuri & Vinyals 2019): the accuracy on the real test split of ``data`` of the
    feature classifier trained on a conditional model's ``samples`` with the ``labels``
    they were drawn for."""
    from .. import data as datasets

    xt, yt = datasets.load(data, "test", path=path)
    samples = torch.as_tensor(samples).reshape(len(samples), -1).float()
    labels = torch.as_tensor(labels).long()
    if len(labels) != len(samples):
        raise ValueError(f"labels ({len(labels)}) must give one class per sample ({len(samples)})")
    classes = int(max(int(labels.max()), int(yt.max()))) + 1
    net = _train(samples, labels, classes, epochs=30, seed=seed)
    return net.accuracy(xt.reshape(len(xt), -1).float(), yt.long())
