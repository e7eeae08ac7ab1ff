#!/usr/bin/env bash
# The test suite: unit tests, host-compiled kernels against TFLite Micro, and firmware in QEMU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
