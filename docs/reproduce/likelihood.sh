#!/usr/bin/env bash
# README "Exact likelihoods against bounds": flows, MADE, PixelCNN and variational
# dequantization on dequantized 8x8 digits; MADE, PixelCNN and the flow VAE on binarized
# mnist5k. Two streams of one thread each (about 20 min on 2 cores). The diffusion, VAE
# and RBM rows of the table come from diffusion.sh, demo.sh and energy.sh.
source "$(dirname "$0")/common.sh"
digits() {
    fresh runs/lik/realnvp
    $PGEN train realnvp --data digits --epochs 500 --out runs/lik/realnvp --no-progress
    fresh runs/lik/maf
    $PGEN train maf --data digits --epochs 500 --out runs/lik/maf --no-progress
    fresh runs/lik/nsf
    $PGEN train nsf --data digits --epochs 300 --out runs/lik/nsf --no-progress
    fresh runs/lik/vdq
    $PGEN train vdq --data digits --flow realnvp --epochs 500 --out runs/lik/vdq --no-progress
    fresh runs/lik/made
    $PGEN train made --data digits --epochs 200 --out runs/lik/made --no-progress
    fresh runs/lik/pixelcnn
    $PGEN train pixelcnn --data digits --epochs 100 --out runs/lik/pixelcnn --no-progress
    for run in realnvp maf nsf made pixelcnn; do $PGEN evaluate runs/lik/$run --no-progress; done
    $PGEN evaluate runs/lik/vdq --num-samples 1000 --no-progress
}
mnist() {
    fresh runs/lik/mnist_made
    $PGEN train made --data mnist5k --binarize threshold --hidden 1000 --epochs 100 --out runs/lik/mnist_made \
        --no-progress
    fresh runs/lik/mnist_flowvae
    $PGEN train flowvae --data mnist5k --binarize threshold --prior-flow 2 --epochs 100 \
        --out runs/lik/mnist_flowvae --no-progress
    fresh runs/lik/mnist_pixelcnn
    $PGEN train pixelcnn --data mnist5k --binarize threshold --epochs 15 --out runs/lik/mnist_pixelcnn --no-progress
    $PGEN evaluate runs/lik/mnist_made --no-progress
    $PGEN evaluate runs/lik/mnist_pixelcnn --no-progress
    $PGEN evaluate runs/lik/mnist_flowvae --num-samples 1000 --no-progress
}
/usr/bin/time -f "digits stream %e s" bash -c "$(declare -f digits fresh); PGEN=$PGEN; set -euo pipefail; digits" > runs/lik_digits.log 2>&1 &
/usr/bin/time -f "mnist stream %e s" bash -c "$(declare -f mnist fresh); PGEN=$PGEN; set -euo pipefail; mnist" > runs/lik_mnist.log 2>&1 &
wait
$PY docs/reproduce/collect.py likelihood
