"""``pgen evaluate``: a run's test metrics by its family's estimators, in ``metrics.json``."""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from .. import families
from ..checks import check_choice, check_int
from ..devices import resolve_device
from .folder import METRICS, RunFolder
from .model import load_run_model

__all__ = ["evaluate", "check_options", "MetricsNotWritten", "on_device"]


class MetricsNotWritten(OSError):
    """The metrics were computed but could not be written; they are in ``metrics``."""

    def __init__(self, message: str, metrics: dict):
        super().__init__(message)
        self.metrics = metrics


def check_options(family: families.Family, model_name: str, given: dict, declared: str) -> dict:
    """``given`` family options of ``pgen evaluate``/``pgen sample`` (``declared``:
    ``"evaluate_options"`` or ``"sample_options"``), each one the run's family takes."""
    own = {o.name for o in getattr(family, declared)}
    for name in given:
        if name not in own:
            others = [
                f for f in families.names() if name in {o.name for o in getattr(families.get(f), declared)}
            ]
            where = " and ".join(others) or "no"
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} applies to {where} runs, not to {model_name} (family {family.name})")
    return given


@contextlib.contextmanager
def on_device(model: torch.nn.Module, device):
    """Run a family's evaluation or sampling code on ``device`` (``None``: where it is):
    the model moves there, and tensors the code creates without a device (its data, its
    noise) are made there too (torch's default-device context); the model comes back
    to the CPU afterwards."""
    if device is None:
        yield
        return
    device = resolve_device(device)
    model.to(device)
    try:
        with torch.device(device):
            yield
    finally:
        model.to("cpu")


def _sample_quality(folder, cfg, m, family, n: int, seed: int, device) -> dict:
    from ..data import info, load_split, requantize
    from ..eval.features import classification_accuracy_score, sample_quality

    meta = info(cfg["data"]["name"], cfg["data"].get("path"))
    if meta.kind != "image":
        raise ValueError(
            f"quality metrics need image data with labels (a feature classifier is trained on them); "
            f"{cfg['data']['name']} is {meta.kind} data"
        )
    run = families.RunContext(folder.path, cfg, m)
    with on_device(m, device), torch.no_grad():
        draws, labels = family.quality_draws(run, n=n, seed=seed)
    draws = draws.detach().cpu().reshape(n, -1).clamp(0, 1)
    if cfg["data"]["binarize"] == "dequantize":
        # a density on [0, 1) standing for grey levels: its draws go back to their levels,
        # k = floor(L x), and are scored against the grey-level images themselves
        draws = requantize(draws, meta.levels)
        plain = {**cfg["data"], "binarize": "none"}
        reference, train = load_split(plain, "test").x, load_split(plain, "train").x
    else:  # binary and grey-level runs: against the images as the model saw them
        split = run.split("train")
        reference, train = run.split("test").x, split.x if split.fixed is None else split.fixed(split.x)
    result = sample_quality(
        draws, cfg["data"]["name"], path=cfg["data"].get("path"), reference=reference, train=train
    )
    if labels is not None:  # a class-conditional model: how well its draws teach a classifier
        result["classification_accuracy_score"] = classification_accuracy_score(
            draws, labels.cpu(), cfg["data"]["name"], path=cfg["data"].get("path"), seed=seed
        )
    return result


def quality(run_dir: str | Path, num_samples: int = 1000, *, seed: int = 0, device=None) -> dict:
    """Only the sample-quality metrics of a run on image data (as ``pgen evaluate
    --quality``, without the likelihood), written to the run's ``quality.json``."""
    folder = RunFolder(run_dir)
    cfg = folder.read_config()
    num_samples = check_int("num_samples", num_samples, minimum=2)
    seed = check_int("seed", seed, minimum=0)
    m = load_run_model(run_dir)
    folder.check_writable()
    result = _sample_quality(folder, cfg, m, families.of_model(cfg["model"]), num_samples, seed, device)
    folder.write_json("quality.json", result)
    return result


def evaluate(
    run_dir: str | Path,
    *,
    num_samples: int = 1000,
    split: str = "test",
    seed: int = 0,
    batch_size: int = 100,
    progress: bool = True,
    checkpoint: bool = False,
    device=None,
    quality: int = 0,
    **options,
) -> dict:
    """Evaluate a run with its family's estimators; write ``metrics.json`` and any figure
    the evaluation draws (an RBM's ``ais.png``).

    Latent-variable and conditional models: the ELBO (10 draws per example) and the
    importance-sampled log-likelihood with ``num_samples`` samples; diffusion models: the
    bound from all its terms; an RBM: AIS with ``num_samples`` chains (``ais_betas``,
    and ``raise_betas`` for reverse AIS); a 2-D energy: log Z by importance sampling; a
    score model: its test objective and the distance of its samples to the test data.
    ``*_se`` are standard errors over examples. With ``checkpoint``, an interrupted run is
    evaluated at its last checkpoint. ``device`` runs the evaluation there
    (:func:`on_device`). With ``quality`` > 0, that many samples are also drawn (as ``pgen
    sample`` draws them) and scored by :func:`pgen.eval.features.sample_quality` against
    the run's test and training splits, on image data sets with labels (``metrics["quality"]``);
    for class-conditional models (CVAE, SSVAE, conditional GAN or diffusion) with the
    classification accuracy score of draws made for each class in turn. Draws of a
    dequantized run are put back on their grey levels and scored against the grey-level
    images; binary runs are scored against the binarized images they model.

    Raises:
        MetricsNotWritten: the folder could not take ``metrics.json`` after the work was
            done (e.g. a full disk); the error holds the metrics.
    """
    folder = RunFolder(run_dir)
    cfg = folder.read_config()
    split = check_choice("split", split, ("train", "test"))
    num_samples = check_int("num_samples", num_samples, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    family = families.of_model(cfg["model"])
    options = check_options(family, cfg["model"], options, "evaluate_options")
    m = load_run_model(run_dir, checkpoint=checkpoint)
    folder.check_writable()  # before the work, not after it
    with on_device(m, device):
        result = family.evaluate(
            families.RunContext(folder.path, cfg, m),
            split=split,
            seed=seed,
            batch_size=batch_size,
            num_samples=num_samples,
            progress=progress,
            **options,
        )
    metrics = {**result.metrics, "from_checkpoint": folder.state != "finished"}
    quality = check_int("quality", quality, minimum=0)
    if quality:
        metrics["quality"] = _sample_quality(folder, cfg, m, family, quality, seed, device)
    try:
        from .. import plot

        for name, figure in result.figures.items():
            plot.save(figure, folder.file(name))
        folder.write_json(METRICS, metrics)
    except OSError as error:
        raise MetricsNotWritten(
            f"could not write {folder.file(METRICS)}: {error.strerror or error}", metrics
        ) from error
    return metrics
