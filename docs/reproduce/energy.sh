#!/usr/bin/env bash
# README "Energy-based models": the RBM bracket, the swiss-roll energy and score models,
# the score model on digits; docs/energy/.
source "$(dirname "$0")/common.sh"
fresh runs/rbm
$PGEN train rbm --data mnist5k --method pcd --epochs 200 --batch-size 100 --out runs/rbm --no-progress
$PGEN evaluate runs/rbm --num-samples 500 --ais-betas 20000 --raise-betas 20000 --no-progress
fresh runs/ebm-swiss
$PGEN train ebm --data swiss_roll --hidden 128 128 --steps 6000 --out runs/ebm-swiss --no-progress
$PGEN evaluate runs/ebm-swiss --no-progress
fresh runs/score-swiss
$PGEN train score --data swiss_roll --matching sliced --steps 10000 --out runs/score-swiss --no-progress
$PGEN evaluate runs/score-swiss --no-progress
fresh runs/score-digits
$PGEN train score --data digits --binarize none --hidden 256 256 --sigma-max 3 --sigma-min 0.02 \
    --steps 20000 --out runs/score-digits --no-progress
$PGEN evaluate runs/score-digits --no-progress
$PY docs/reproduce/collect.py energy
