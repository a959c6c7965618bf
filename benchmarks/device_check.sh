#!/usr/bin/env bash
# The GPU table in one command, from a clean checkout on a machine with jax (CUDA), flax, optax and
# torch (CUDA) installed; nothing is installed or downloaded. Within 8 minutes on one GPU.
#
#   bash benchmarks/device_check.sh             # the table, also in benchmarks/results/device_check.{json,md}
#   bash benchmarks/device_check.sh --dry-run   # CPU, tiny sizes: checks the script (a few minutes on 2 cores)
#   PYTHON=/path/to/python bash benchmarks/device_check.sh --out DIR
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's jaxtrainer, installed or not
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # JAX takes GPU memory as it needs it, not 75% up front
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"  # keep XLA's info lines out of the output
exec "${PYTHON:-python3}" -m benchmarks.device_check "$@"
