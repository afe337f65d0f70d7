"""Do a class-conditional CVAE's samples show their class? (README, conditional VAEs)

Trains the README's `pgen train cvae --task class --data mnist5k --epochs 50` with its
default learned conditional prior and with the standard normal prior
(`--no-conditional-prior`), then labels 50 samples of each class (the means of p(x|y,z))
with a classifier trained on the real training digits, as issue 15 measured it. Writes
runs/cvae-classes/table.md.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

import pgen
from pgen import runs
from pgen.models.ssvae import Classifier

OUT = Path("runs/cvae-classes")


def main() -> None:
    data_cfg = pgen.data.data_config("mnist5k", binarize="threshold")
    train, test = pgen.data.load_split(data_cfg, "train"), pgen.data.load_split(data_cfg, "test")
    torch.manual_seed(0)
    clf = Classifier(784, 10, hidden=(400,))
    pgen.fit(clf.model, clf.guide, (train.x, train.y), epochs=30, lr=1e-3, progress=False, seed=0)
    real = float((clf.classify(test.x) == test.y).float().mean())
    lines = [
        f"classifier (784-400-10 MLP, 30 epochs) on the real test digits: accuracy {real:.3f}",
        "",
        "| prior | samples labelled as their class | test ELBO, nats | KL(q(z\\|x,y) ‖ N(0, I)), nats |",
        "|---|---|---|---|",
    ]
    for name, prior in (("learned p(z\\|y) (default)", True), ("N(0, I)", False)):
        folder = OUT / ("conditional-prior" if prior else "standard-prior")
        shutil.rmtree(folder, ignore_errors=True)
        m, _ = runs.train(
            folder,
            model="cvae",
            model_args={"task": "class", "conditional_prior": prior},
            data_cfg=data_cfg,
            fit_args={"epochs": 50},
            progress=False,
        )
        draws = m.sample(50, y=torch.arange(10), seed=0)
        agree = float(
            (clf.classify(draws.reshape(-1, 784)).reshape(10, 50) == torch.arange(10)[:, None]).float().mean()
        )
        metrics = runs.evaluate(folder, num_samples=10, progress=False)
        loc, scale = m.encode(test.x, test.y)
        kl = float((0.5 * (loc**2 + scale**2 - 1 - 2 * scale.log()).sum(-1)).mean())
        lines.append(f"| {name} | {agree:.3f} | {metrics['elbo']:.2f} | {kl:.1f} |")
        if prior:
            shutil.copyfile(folder / "conditional_samples.png", OUT / "conditional_samples.png")
    text = "\n".join(lines) + "\n"
    (OUT / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
