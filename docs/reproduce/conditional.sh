#!/usr/bin/env bash
# README "Conditional and semi-supervised VAEs, beta-VAE, outliers": the tables of the
# examples (each writes its table as its runs finish) and the CVAE class measurement.
source "$(dirname "$0")/common.sh"
$PY examples/cvae_inpainting.py --out runs/inpaint --no-progress
$PY examples/ssvae_labels.py --out runs/ssvae --no-progress
$PY examples/beta_vae.py --out runs/beta --no-progress
$PY examples/beta_vae.py --data digits --out runs/beta-digits --no-progress   # the collapse at beta >= 4
$PY examples/vae_outliers.py --out runs/outliers --no-progress
$PY docs/reproduce/cvae_classes.py
$PY docs/reproduce/collect.py conditional
