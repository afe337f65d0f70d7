"""Train a VAE on real MNIST digits with validation, early stopping and checkpoints.

The Python-API version of what ``pgen demo`` does: load 4,500 MNIST digits, hold 500
of them out for validation, fit with early stopping (the best epoch's weights are kept),
checkpoint every 5 epochs (Ctrl-C, then run again with --resume to continue), then
report the test ELBO and the importance-sampled log-likelihood and draw figures.

    python examples/vae_mnist.py --epochs 100 --out runs/example
    python examples/vae_mnist.py --epochs 100 --out runs/example --resume
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

import pgen  # noqa: E402


def main(epochs=100, out="runs/example", resume=False, num_samples=1000, data="mnist5k", progress=True):
    x, y = pgen.data.load(data, binarize="threshold")
    x_test, y_test = pgen.data.load(data, "test", binarize="threshold")
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, val = perm[500:], perm[:500]

    torch.manual_seed(0)
    vae = pgen.models.VAE(data_dim=x.shape[1], latent_dim=20, hidden=(400,))
    result = pgen.fit(
        vae.model,
        vae.guide,
        x[train],
        val_data=x[val],
        epochs=epochs,
        batch_size=128,
        objective="meanfield",
        jit=True,
        patience=10,
        checkpoint_dir=out,
        checkpoint_every=5,
        resume=resume,
        progress=progress,
    )
    print(result.message)
    elbo = pgen.eval.elbo(vae.model, vae.guide, x_test, num_samples=10).mean()
    ll = pgen.eval.log_likelihood(vae.model, vae.guide, x_test, num_samples=num_samples).mean()
    print(
        f"test ELBO {elbo:.2f} nats, IS log-likelihood (K={num_samples}) {ll:.2f} nats, "
        f"{pgen.eval.bits_per_dim(-ll.item(), x.shape[1]):.4f} bits/dim"
    )

    shape = pgen.data.info(data).image_shape
    out = Path(out)
    pgen.plot.save(pgen.plot.plot_training(result.history), out / "training.png")
    pgen.plot.save(pgen.plot.plot_images(vae.sample(64, seed=0), image_shape=shape), out / "samples.png")
    pgen.plot.save(
        pgen.plot.plot_reconstructions(x_test[:10], vae.reconstruct(x_test[:10]), image_shape=shape),
        out / "reconstructions.png",
    )
    pgen.plot.save(pgen.plot.plot_latent_scatter(vae.encode(x_test)[0], y_test), out / "latent.png")
    return result, elbo.item(), ll.item()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--out", default="runs/example")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--num-samples", type=int, default=1000)
    args = parser.parse_args()
    main(args.epochs, args.out, args.resume, args.num_samples)
