#!/usr/bin/env bash
# README "One table for every family": sample quality of every family on the 8x8 digits,
# with likelihoods where a family has one. Trains the runs the other scripts do not make
# (GANs, a diffusion model, WAE, CVAE, SSVAE, RBM, EBM; two streams of one thread, about 6 min on 2 cores), then
# scores them and the runs of likelihood.sh, diffusion.sh and energy.sh
# (docs/reproduce/quality.py; runs that do not exist are listed as missing).
source "$(dirname "$0")/common.sh"
adversarial() {
    fresh runs/quality/gan
    $PGEN train gan --data digits --lr 2e-4 --epochs 200 --out runs/quality/gan --no-progress
    fresh runs/quality/cgan
    $PGEN train gan --data digits --lr 2e-4 --num-classes 10 --epochs 200 --out runs/quality/cgan --no-progress
    fresh runs/quality/lsgan
    $PGEN train lsgan --data digits --lr 2e-4 --epochs 200 --out runs/quality/lsgan --no-progress
    fresh runs/quality/wgan
    $PGEN train wgan --data digits --epochs 200 --out runs/quality/wgan --no-progress
}
others() {
    fresh runs/quality/diffusion_simple
    $PGEN train diffusion --data digits --loss simple --epochs 2000 --jit --out runs/quality/diffusion_simple \
        --no-progress --no-figures
    $PGEN evaluate runs/quality/diffusion_simple --no-progress
    fresh runs/quality/wae
    $PGEN train wae --data digits --epochs 200 --out runs/quality/wae --no-progress
    fresh runs/quality/cvae
    $PGEN train cvae --data digits --binarize none --likelihood gaussian --latent-dim 10 --epochs 300 \
        --out runs/quality/cvae --no-progress
    fresh runs/quality/ssvae
    $PGEN train ssvae --data digits --labels 100 --epochs 100 --out runs/quality/ssvae --no-progress
    fresh runs/quality/rbm
    $PGEN train rbm --data digits --binarize threshold --hidden 100 --epochs 300 --out runs/quality/rbm --no-progress
    fresh runs/quality/ebm
    $PGEN train ebm --data digits --binarize none --hidden 256 256 --steps 6000 --out runs/quality/ebm --no-progress
}
/usr/bin/time -f "adversarial stream %e s" bash -c "$(declare -f adversarial fresh); PGEN=$PGEN; set -euo pipefail; adversarial" > runs/quality_adversarial.log 2>&1 &
/usr/bin/time -f "other stream %e s" bash -c "$(declare -f others fresh); PGEN=$PGEN; set -euo pipefail; others" > runs/quality_others.log 2>&1 &
wait
$PY docs/reproduce/quality.py
