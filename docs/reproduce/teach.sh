#!/usr/bin/env bash
# README "Teaching the ELBO": every figure of docs/derivations.md.
source "$(dirname "$0")/common.sh"
$PGEN teach all --out docs/derivations
