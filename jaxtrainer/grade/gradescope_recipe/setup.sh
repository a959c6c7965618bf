#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (choose its Ubuntu 24.04
# base image: the project needs Python >= 3.11). The autograder zip holds this file, run_autograder
# and the project's wheel (jaxtrainer-*.whl); Gradescope unpacks it into /autograder/source.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"

apt-get update
# bubblewrap: the sandbox each submission runs in
apt-get install -y --no-install-recommends python3 python3-venv bubblewrap
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11) and "jaxtrainer needs Python >= 3.11: choose the Ubuntu 24.04 base image")'

# A venv of its own: Ubuntu's python3 refuses a system-wide pip install (PEP 668).
python3 -m venv "$ROOT/venv"
# torch pinned, from PyTorch's CPU index: PyPI's build of the same version pulls gigabytes of CUDA.
"$ROOT/venv/bin/pip" install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"
wheels=("$ROOT"/source/jaxtrainer-*.whl)
if [ ${#wheels[@]} -ne 1 ] || [ ! -f "${wheels[0]}" ]; then
    echo "setup.sh: put exactly one jaxtrainer-*.whl in the autograder zip (found: ${wheels[*]})" >&2
    exit 1
fi
"$ROOT/venv/bin/pip" install "${wheels[0]}[grade]" "torch==2.13.0"
# run_autograder calls `jaxtrainer` from PATH
ln -sf "$ROOT/venv/bin/jaxtrainer" /usr/local/bin/jaxtrainer
jaxtrainer grade --help > /dev/null
