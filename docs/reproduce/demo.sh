#!/usr/bin/env bash
# README "What make demo does": the demo table and docs/figures/.
source "$(dirname "$0")/common.sh"
$PGEN demo --out runs/demo --no-progress
$PY docs/reproduce/collect.py demo
# the same VAE over seeds, and trained longer (the README's sentences under the table)
for seed in 1 2 3; do
    fresh runs/demo-seed-$seed
    $PGEN train vae --data mnist5k --binarize threshold --hidden 400 --latent-dim 20 --objective meanfield \
        --jit --checkpoint-every 25 --epochs 100 --seed $seed --out runs/demo-seed-$seed --no-figures --no-progress
    $PGEN evaluate runs/demo-seed-$seed --no-progress
done
fresh runs/demo-150
$PGEN train vae --data mnist5k --binarize threshold --hidden 400 --latent-dim 20 --objective meanfield \
    --jit --checkpoint-every 25 --epochs 150 --out runs/demo-150 --no-figures --no-progress
$PGEN evaluate runs/demo-150 --no-progress
