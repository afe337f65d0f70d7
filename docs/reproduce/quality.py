"""The README table that ranks every family on the 8x8 digits by sample quality
(``pgen.runs.quality``: 1,000 draws on the features of the digits classifier, against
the 179 test digits: grey levels, or binarized for the binary models; the draws of
dequantized models are put back on their levels), ranked by the Fréchet distance, with
the likelihood where the family has one (the run's ``metrics.json``, on the dequantized
scale: uniform noise scores 0 nats).

    python docs/reproduce/quality.py [--again]

Each run's scores are written to its ``quality.json`` and read from there next time
(``--again`` recomputes them). The first row scores 1,000 real training digits the
same way: what a model that draws the data distribution would score with this many
samples and these test digits (its memorization ratio is 0 by construction); the
second row does the same for the binarized digits, the reference of the binary models.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

import pgen
from pgen.eval.features import classification_accuracy_score, sample_quality

ROOT = Path(__file__).resolve().parents[2]
RUNS = ROOT / "runs"

ROWS = (  # (the README's name, the run folder under runs/, the script that makes it)
    ("VAE, Gaussian decoder, 10-D latent, 300 epochs (means)", "vae_deq", "diffusion.sh"),
    ("CVAE, Gaussian decoder on grey levels, 10-D latent, 300 epochs (means)", "quality/cvae", "quality.sh"),
    ("SSVAE, 100 labels, 100 epochs (binary; means)", "quality/ssvae", "quality.sh"),
    ("diffusion, learned variance, 2,000 epochs", "diff_elbo", "diffusion.sh"),
    ("diffusion, L_simple, 200 epochs", "diff_simple", "diffusion.sh"),
    ("diffusion, L_simple, 2,000 epochs", "quality/diffusion_simple", "quality.sh"),
    ("diffusion, class-conditional (L_simple), 600 epochs", "diff_cond", "diffusion.sh"),
    ("GAN, non-saturating, 200 epochs", "quality/gan", "quality.sh"),
    ("GAN, conditional, 200 epochs", "quality/cgan", "quality.sh"),
    ("LSGAN, 200 epochs", "quality/lsgan", "quality.sh"),
    ("WGAN-GP, 200 epochs", "quality/wgan", "quality.sh"),
    ("WAE-MMD, 200 epochs", "quality/wae", "quality.sh"),
    ("RBM, 100 hidden, PCD-1, 300 epochs (binary)", "quality/rbm", "quality.sh"),
    ("EBM, Langevin PCD, 6,000 steps", "quality/ebm", "quality.sh"),
    ("score model, annealed Langevin, 20,000 steps", "score-digits", "energy.sh"),
    ("RealNVP, 500 epochs", "lik/realnvp", "likelihood.sh"),
    ("MAF, 500 epochs", "lik/maf", "likelihood.sh"),
    ("NSF, 300 epochs", "lik/nsf", "likelihood.sh"),
    ("RealNVP + variational dequantization, 500 epochs", "lik/vdq", "likelihood.sh"),
    ("MADE, 200 epochs", "lik/made", "likelihood.sh"),
    ("PixelCNN, 100 epochs", "lik/pixelcnn", "likelihood.sh"),
)
KEYS = (
    "frechet_distance",
    "inception_score",
    "precision",
    "recall",
    "density",
    "coverage",
    "memorization_ratio",
)


def likelihood(run: Path) -> str:
    """The test log-likelihood (nats, dequantized scale) with its kind, or why none."""
    config = json.loads((run / "config.json").read_text())
    family = pgen.families.of_model(config["model"]).name
    if family in ("adversarial", "wae", "score"):
        return "none (no likelihood)"
    if config["data"]["binarize"] != "dequantize":
        data = {"none": "grey levels as they are", "threshold": "binary digits"}[config["data"]["binarize"]]
        return f"not on this scale ({data})"
    path = run / "metrics.json"
    if not path.exists():
        return "not evaluated"
    m = json.loads(path.read_text())
    conditional = " of x given y" if m.get("family") == "conditional" else ""
    if m.get("log_likelihood") is not None:
        kind = "exact" if m.get("exact") else f"IS, K={m['num_samples']}"
        return f"{m['log_likelihood']:.1f} ± {m['log_likelihood_se']:.1f} ({kind}{conditional})"
    if m.get("elbo") is not None:
        return f"≥ {m['elbo']:.1f} ± {m['elbo_se']:.1f} (bound)"
    return "none"


def row(name: str, q: dict, lik: str) -> str:
    cells = [f"{q[k]:.2f}" for k in KEYS]
    cas = q.get("classification_accuracy_score")
    cells.append("" if cas is None else f"{cas:.2f}")
    return f"| {name} | " + " | ".join(cells) + f" | {lik} |"


def main(again: bool) -> None:
    x, y = pgen.data.load("digits", "train")
    test, _ = pgen.data.load("digits", "test")
    pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:1000]
    real = sample_quality(x[pick], "digits")
    real["classification_accuracy_score"] = classification_accuracy_score(x[pick], y[pick], "digits")
    print(
        "| model | FD ↓ | IS ↑ | precision | recall | density | coverage | memorization ratio | CAS "
        "| test log-likelihood, nats |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(row("1,000 real training digits (reference)", real, ""))
    binary = (x[pick] > 0.5).float()
    real_binary = sample_quality(binary, "digits", reference=(test > 0.5).float(), train=(x > 0.5).float())
    real_binary["classification_accuracy_score"] = classification_accuracy_score(binary, y[pick], "digits")
    print(row("the same, binarized (reference for the binary rows)", real_binary, ""))
    scored = []
    for name, folder, script in ROWS:
        run = RUNS / folder
        if not (run / "model.pt").exists():
            print(f"(runs/{folder} is missing: made by docs/reproduce/{script})", file=sys.stderr)
            continue
        cached = run / "quality.json"
        q = json.loads(cached.read_text()) if cached.exists() and not again else pgen.runs.quality(run, 1000)
        scored.append((q["frechet_distance"], row(name, q, likelihood(run))))
    for _, line in sorted(scored):  # ranked by the Fréchet distance
        print(line)


if __name__ == "__main__":
    main("--again" in sys.argv[1:])
