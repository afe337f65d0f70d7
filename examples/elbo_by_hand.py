"""The ELBO identities of docs/derivations.md, computed by hand with pgen.teach.

For a student who wants the numbers rather than the figures (``pgen teach all`` draws
those). Each step prints both sides of an identity:

1. log p(x) = ELBO + KL(q(z|x) || p(z|x)) on probabilistic PCA, where log p(x) and the
   posterior are exact;
2. L_1 = ELBO <= L_K <= log p(x): importance-weighted bounds on the same model;
3. the best Gaussian: mean field's variances 1/Lambda_ii against the fitted ones;
4. posterior collapse: the KL of a MADE decoder vs a factorized one on a Markov chain
   whose log p(x) is exact.

    python examples/elbo_by_hand.py [--quick]
"""

from __future__ import annotations

import argparse

import torch

import pgen
from pgen import teach


def main(quick: bool = False, seed: int = 0) -> dict:
    out = {}
    # 1. the ELBO decomposition on PPCA
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(300, 5, generator=g) @ torch.randn(5, 5, generator=g) * 0.5
    torch.manual_seed(seed)
    ppca = pgen.models.PPCA(5, 2)
    pgen.fit(ppca.model, ppca.guide, x, steps=100 if quick else 500, lr=0.02, seed=seed, progress=False)
    d = teach.elbo_decomposition(ppca.model, ppca.guide, x, num_samples=200, exact=ppca)
    s = d.summary()
    print("1. probabilistic PCA, nats per example")
    print(f"   reconstruction E_q log p(x|z)   {s['reconstruction']:9.4f}")
    print(f"   KL(q || p(z)), Monte Carlo       {s['kl_mc']:9.4f}   closed form {s['kl_analytic']:.4f}")
    print(f"   ELBO                             {s['elbo']:9.4f}")
    print(f"   log p(x) (exact)                 {s['log_evidence']:9.4f}")
    print(f"   gap log p(x) - ELBO              {s['gap']:9.4f}   KL(q || p(z|x)) {s['kl_posterior']:.4f}")
    out["decomposition"] = d

    # 2. importance-weighted bounds
    curve = teach.iwae_curve(ppca.model, ppca.guide, x[:100], ks=(1, 10, 100), repeats=10, exact=ppca)
    print("2. L_K: " + ", ".join(f"K={k} {b:.4f}" for k, b in zip(curve.ks, curve.bounds, strict=True)))
    print(f"   log p(x) {curve.log_evidence:.4f}")
    out["iwae"] = curve

    # 3. the best Gaussian approximation of a 0.9-correlated Gaussian
    approx = teach.gaussian_approximations([[1.0, 0.9], [0.9, 1.0]], steps=400 if quick else 1500, seed=seed)
    fitted = approx.fitted["meanfield"][1].diagonal()
    exact = approx.closed_form["meanfield"][1].diagonal()
    print(
        f"3. mean-field variances {fitted[0]:.3f}, {fitted[1]:.3f} vs 1/Lambda_ii "
        f"{exact[0]:.3f}, {exact[1]:.3f} (marginal variances: 1)"
    )
    out["gaussians"] = approx

    # 4. posterior collapse
    chain = teach.BinaryMarkovChain(dim=16, stay=0.9)
    study = teach.posterior_collapse(
        chain.sample(8000, seed=seed),
        chain.sample(1000, seed=seed + 1),
        rounds=1 if quick else 4,
        exact=chain,
    )
    for name in study.curves:
        print(
            f"4. {name:14s} decoder: KL {study.final(name, 'kl'):.3f}, ELBO {study.final(name, 'elbo'):.3f}"
        )
    print(f"   exact log p(x) {study.log_likelihood:.3f}")
    out["collapse"] = study
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small budgets (seconds)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.quick, args.seed)
