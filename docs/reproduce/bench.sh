#!/usr/bin/env bash
# README "Benchmarks" and the sampler tables: each prints its ratios against a baseline
# measured in the same run.
source "$(dirname "$0")/common.sh"
for b in svi_overhead vae_quality nuts diffusion gibbs langevin; do
    echo "== bench/$b.py"
    $PY bench/$b.py
done
