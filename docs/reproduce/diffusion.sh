#!/usr/bin/env bash
# README "Diffusion models as hierarchical VAEs": the bits/dim table and docs/diffusion/.
source "$(dirname "$0")/common.sh"
fresh runs/diff_elbo
$PGEN train diffusion --data digits --loss elbo --variance learned --timestep-proposal weighted \
    --epochs 2000 --jit --out runs/diff_elbo --no-progress
$PGEN evaluate runs/diff_elbo --no-progress
fresh runs/diff_beta
$PGEN train diffusion --data digits --loss elbo --variance beta --epochs 1000 --jit --out runs/diff_beta --no-progress
$PGEN evaluate runs/diff_beta --no-progress
fresh runs/diff_posterior
$PGEN train diffusion --data digits --loss elbo --epochs 1000 --jit --out runs/diff_posterior --no-progress
$PGEN evaluate runs/diff_posterior --no-progress
fresh runs/diff_simple
$PGEN train diffusion --data digits --loss simple --epochs 200 --jit --out runs/diff_simple --no-progress
$PGEN evaluate runs/diff_simple --no-progress
fresh runs/vae_deq
$PGEN train vae --data digits --binarize dequantize --likelihood gaussian --latent-dim 10 \
    --epochs 300 --out runs/vae_deq --no-progress
$PGEN evaluate runs/vae_deq --num-samples 1000 --no-progress
fresh runs/diff_cond
$PGEN train diffusion --data digits --loss simple --num-classes 10 --epochs 600 --jit --out runs/diff_cond --no-progress
fresh runs/diff_moons
$PGEN train diffusion --data moons --loss simple --timesteps 100 --lr 3e-3 --steps 8000 \
    --hidden 128 128 128 --jit --out runs/diff_moons --no-progress
$PY docs/reproduce/collect.py diffusion
# the sentences under the table: the weighted proposal at 500 epochs, the VAE at 1,000
fresh runs/diff_beta_weighted
$PGEN train diffusion --data digits --loss elbo --variance beta --timestep-proposal weighted --epochs 500 --jit \
    --out runs/diff_beta_weighted --no-figures --no-progress
$PGEN evaluate runs/diff_beta_weighted --no-progress
fresh runs/vae_deq_1000
$PGEN train vae --data digits --binarize dequantize --likelihood gaussian --latent-dim 10 \
    --epochs 1000 --out runs/vae_deq_1000 --no-figures --no-progress
$PGEN evaluate runs/vae_deq_1000 --num-samples 1000 --no-progress
