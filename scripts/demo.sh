#!/usr/bin/env bash
# The demo: compile the bundled digits CNN for the default board (mps2-an386, Cortex-M4F),
# run it in QEMU on the held-out digits, check every output against TFLite Micro, print the report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/tinycompress run examples/digits/digits_cnn.tflite --board mps2-an386 \
    --data examples/digits/digits_test.npz --verify --json build/digits-report.json "$@"
