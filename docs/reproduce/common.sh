# sourced by the reproduction scripts: one thread per job, the venv's pgen, stop on error
set -euo pipefail
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PGEN=".venv/bin/pgen"
PY=".venv/bin/python"
fresh() { rm -rf "$1"; }  # a new run in a folder that may hold an old one
