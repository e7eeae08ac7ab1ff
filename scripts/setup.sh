#!/usr/bin/env bash
# Installs what tinycompress needs on Debian 12, as root, and only what is missing:
# the Arm cross compiler with newlib, QEMU, make, gcc and g++, then a virtual environment
# .venv with the pinned Python dependencies (reinstalled when pyproject.toml changes).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v arm-none-eabi-gcc >/dev/null || missing+=(gcc-arm-none-eabi)
[ -f /usr/lib/arm-none-eabi/include/stdio.h ] || missing+=(libnewlib-arm-none-eabi)
# libstdc++ for the Arm newlib: benchmarks/elementwise.py links TFLite Micro's C++ kernels with it
[ -f /usr/lib/arm-none-eabi/lib/libstdc++_nano.a ] || missing+=(libstdc++-arm-none-eabi-newlib)
command -v qemu-system-arm >/dev/null || missing+=(qemu-system-arm)
command -v make >/dev/null || missing+=(make)
command -v gcc >/dev/null || missing+=(gcc libc6-dev)
# g++: tests/test_capi.py links the generated C API into a C++ program
command -v g++ >/dev/null || missing+=(g++)
python3 -c "import ensurepip, venv" 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

stamp=.venv/.tinycompress-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: installing Python dependencies into .venv" >&2
    python3 -m venv .venv
    if ! { .venv/bin/python -m pip install -q --upgrade pip &&
           .venv/bin/python -m pip install -q -c constraints.txt -e '.[keras,dev,cluster]'; } > .venv/install.log 2>&1; then
        cat .venv/install.log >&2
        echo "setup: pip install failed (log above, also in .venv/install.log)" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
fi
