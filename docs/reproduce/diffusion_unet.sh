#!/usr/bin/env bash
# README "Diffusion models": the 28x28 U-Net on mnist5k, trained on this CPU with the
# denoiser under bf16 autocast (--mixed-precision), on both cores; about 20 minutes.
source "$(dirname "$0")/common.sh"
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
fresh runs/diff_unet
$PGEN train diffusion --data mnist5k --denoiser unet --mixed-precision --loss elbo --variance learned \
    --timestep-proposal weighted --epochs 150 --out runs/diff_unet --no-progress
$PGEN evaluate runs/diff_unet --no-progress
$PY docs/reproduce/collect.py diffusion_unet
