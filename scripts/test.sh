#!/usr/bin/env bash
# The test suite: unit tests, host-compiled kernels against TFLite Micro, and firmware in QEMU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Tests run on every core (pytest-xdist); TC_TEST_WORKERS=1 runs them in one process.
exec .venv/bin/python -m pytest -q -n "${TC_TEST_WORKERS:-auto}" "$@"
