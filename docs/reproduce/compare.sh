#!/usr/bin/env bash
# README "Bayesian models": the logreg and eight-schools tables, docs/compare/.
source "$(dirname "$0")/common.sh"
$PGEN compare logreg --out runs/compare-logreg --no-progress
$PGEN compare eight_schools --out runs/compare-eight_schools --no-progress
$PY docs/reproduce/collect.py compare
