#!/usr/bin/env bash
# README "What make demo does": the demo table and docs/figures/.
source "$(dirname "$0")/common.sh"
$PGEN demo --out runs/demo --no-progress
$PY docs/reproduce/collect.py demo
