#!/usr/bin/env bash
# README "GANs, WAE and sample quality": the figures in docs/gan/ (a WGAN-GP on the
# moons, about 40 s; a conditional DCGAN on mnist5k, about 5 min, with its sample metrics).
source "$(dirname "$0")/common.sh"
fresh runs/gan-moons
$PGEN train wgan --data moons --steps 1500 --gp-weight 0.1 --out runs/gan-moons --no-progress
$PGEN evaluate runs/gan-moons --no-progress
fresh runs/gan-mnist
$PGEN train gan --data mnist5k --architecture dcgan --num-classes 10 --lr 2e-4 --epochs 80 \
    --out runs/gan-mnist --no-progress
$PGEN evaluate runs/gan-mnist --num-samples 1000 --quality 1000 --no-progress
$PY docs/reproduce/collect.py gan
