"""Copy the figures of the reproduction runs into docs/ under the names the README uses,
and print the README's tables from the runs' metrics.json files.

    python docs/reproduce/collect.py demo|compare|energy|diffusion|diffusion_unet|conditional|likelihood|gan
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNS, DOCS = ROOT / "runs", ROOT / "docs"


def copy(pairs: dict[str, str]) -> None:
    """``{run file: docs file}``, both relative to runs/ and docs/."""
    for src, dst in pairs.items():
        target = DOCS / dst
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(RUNS / src, target)
        print(f"runs/{src} -> docs/{dst}")


def metrics(run: str) -> dict:
    return json.loads((RUNS / run / "metrics.json").read_text())


def demo() -> None:
    copy(
        {
            f"demo/{n}.png": f"figures/{n}.png"
            for n in ("samples", "reconstructions", "training", "latent", "interpolation")
        }
    )
    copy(
        {
            "demo/latent2d/manifold.png": "figures/manifold.png",
            "demo/latent2d/latent.png": "figures/latent2d.png",
        }
    )
    for name, run in (
        ("VAE, 20-D latent, 100 epochs", "demo"),
        ("VAE, 2-D latent, 30 epochs", "demo/latent2d"),
    ):
        m = metrics(run)
        print(
            f"| {name} | {m['elbo']:.2f} ± {m['elbo_se']:.2f} nats | {m['log_likelihood']:.2f} ± "
            f"{m['log_likelihood_se']:.2f} nats | {m['bits_per_dim']:.3f} |"
        )


def compare() -> None:
    for problem in ("logreg", "eight_schools"):
        folder = f"compare-{problem}"
        copy(
            {
                f"{folder}/{n}": f"compare/{problem}/{n}"
                for n in ("table.md", "pairs.png", "marginals.png", "error_vs_time.png")
            }
        )
        print((RUNS / folder / "table.md").read_text())


def _summary(run: str) -> None:
    from pgen import families

    m = metrics(run)
    for line in families.get(m["family"]).summary(m):
        print(f"{run}: {line}")


def energy() -> None:
    copy(
        {
            "rbm/filters.png": "energy/rbm_filters.png",
            "rbm/samples.png": "energy/rbm_samples.png",
            "rbm/chain.png": "energy/rbm_chain.png",
            "rbm/ais.png": "energy/rbm_ais.png",
            "ebm-swiss/landscape.png": "energy/ebm_landscape.png",
            "ebm-swiss/chain.png": "energy/ebm_chain.png",
            "score-swiss/score_field.png": "energy/score_field.png",
            "score-swiss/chain.png": "energy/score_chain.png",
            "score-digits/chain.png": "energy/score_digits_chain.png",
            "score-digits/samples.png": "energy/score_digits_samples.png",
        }
    )
    for run in ("rbm", "ebm-swiss", "score-swiss", "score-digits"):
        _summary(run)


def diffusion_unet() -> None:
    copy(
        {
            "diff_unet/samples.png": "diffusion/unet_samples.png",
            "diff_unet/inpainting.png": "diffusion/unet_inpainting.png",
        }
    )
    m = metrics("diff_unet")
    print(
        f"U-Net on mnist5k: test ELBO {m['elbo']:.2f} +- {m['elbo_se']:.2f} nats, "
        f"<= {m['bits_per_dim']:.2f} bits/dim"
    )


def diffusion() -> None:
    copy(
        {
            f"diff_cond/{n}.png": f"diffusion/{n}.png"
            for n in ("samplers", "guidance", "inpainting", "forward", "reverse")
        }
    )
    copy(
        {"diff_elbo/terms.png": "diffusion/terms.png", "diff_elbo/samples.png": "diffusion/samples_elbo.png"}
    )
    copy({"diff_moons/samples.png": "diffusion/moons.png"})
    for run in ("diff_elbo", "diff_beta", "diff_posterior", "diff_simple", "vae_deq"):
        m = metrics(run)
        bound = f"{m['bits_per_dim']:.2f}" if m.get("bits_per_dim") is not None else "-"
        ll = (
            ""
            if m.get("log_likelihood") is None
            else f"; IS log-likelihood {m['log_likelihood']:.2f} ± {m['log_likelihood_se']:.2f}"
        )
        print(f"| {run} | {m['elbo']:.2f} ± {m['elbo_se']:.2f} | <= {bound} bits/dim{ll} |")


def conditional() -> None:
    copy(
        {
            "inpaint/table.md": "cvae/table.md",
            "inpaint/table.csv": "cvae/table.csv",
            "inpaint/cvae-q1/inpainting.png": "cvae/inpainting_cvae_q1.png",
            "inpaint/baseline-q1/inpainting.png": "cvae/inpainting_baseline_q1.png",
            "ssvae/table.md": "ssvae/table.md",
            "ssvae/table.csv": "ssvae/table.csv",
            "ssvae/labels-1000/conditional_samples.png": "ssvae/samples_1000_labels.png",
            "beta/table.md": "beta/table.md",
            "beta/table.csv": "beta/table.csv",
            "beta/rate_distortion.png": "beta/rate_distortion.png",
            "beta/beta-1/traversal.png": "beta/traversal_beta1.png",
            "beta/beta-4/traversal.png": "beta/traversal_beta4.png",
            "outliers/table.md": "outliers/table.md",
            "outliers/scores.png": "outliers/scores.png",
            "cvae-classes/table.md": "cvae/classes.md",
            "cvae-classes/conditional_samples.png": "cvae/class_samples.png",
        }
    )
    for table in ("inpaint", "ssvae", "beta", "outliers", "cvae-classes"):
        print((RUNS / table / "table.md").read_text())


def likelihood() -> None:
    """The exact-likelihood table (docs/reproduce/likelihood.sh); runs not made yet are
    left out, with a line saying so."""
    rows = (
        ("RealNVP, 6 layers, 500 epochs", "lik/realnvp"),
        ("MAF, 5 layers, 500 epochs", "lik/maf"),
        ("NSF, 5 layers, 300 epochs", "lik/nsf"),
        ("RealNVP + variational dequantization, 500 epochs", "lik/vdq"),
        ("MADE, 500-500, 200 epochs", "lik/made"),
        ("PixelCNN, 32 channels, 5 gated layers, 100 epochs", "lik/pixelcnn"),
        ("MADE, 1000-1000, 100 epochs (mnist5k)", "lik/mnist_made"),
        ("PixelCNN, 32 channels, 5 gated layers, 15 epochs (mnist5k)", "lik/mnist_pixelcnn"),
        ("VAE, IAF posterior (2 layers) + MAF prior (2), 100 epochs (mnist5k)", "lik/mnist_flowvae"),
    )
    for name, run in rows:
        if not (RUNS / run / "metrics.json").exists():
            print(f"(no runs/{run}/metrics.json: not made yet)")
            continue
        m = metrics(run)
        wall = json.loads((RUNS / run / "history.json").read_text())["wall_time"]
        kind = "exact" if m.get("exact") else f"IS, K={m['num_samples']}"
        bound = "" if m.get("exact") else f" (bound {m['elbo']:.2f})"
        print(
            f"| {name} | {m['log_likelihood']:.2f} ± {m['log_likelihood_se']:.2f}{bound} | "
            f"{m['bits_per_dim']:.3f} | {kind} | {wall:.0f} s |"
        )


def gan() -> None:
    """The GAN figures (docs/reproduce/gan.sh) and the DCGAN's sample metrics."""
    copy(
        {
            "gan-moons/samples_over_training.png": "gan/moons_over_training.png",
            "gan-moons/critic.png": "gan/moons_critic.png",
            "gan-mnist/samples_over_training.png": "gan/mnist_over_training.png",
            "gan-mnist/samples.png": "gan/mnist_samples.png",
        }
    )
    for run in ("gan-moons", "gan-mnist"):
        print(run, json.dumps(metrics(run)["quality"], indent=1))


if __name__ == "__main__":
    {
        "demo": demo,
        "compare": compare,
        "energy": energy,
        "diffusion": diffusion,
        "diffusion_unet": diffusion_unet,
        "conditional": conditional,
        "likelihood": likelihood,
        "gan": gan,
    }[sys.argv[1]]()
