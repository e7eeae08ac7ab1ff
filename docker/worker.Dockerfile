# A Ray worker (and head) for `tinycompress profile --executor ray`: Debian 12, the packages of
# scripts/setup.sh (the Arm cross compiler with newlib, QEMU, make, gcc), and tinycompress with the `keras`
# and `cluster` extras at the exact versions of constraints.txt: the workers apply the plans of Keras models
# (TensorFlow), then build and emulate.
# Debian 12's Python is 3.11, the version the driver must run too (Ray needs the same minor version and
# the same Ray on the driver and every worker).
#
#   docker build -f docker/worker.Dockerfile -t tinycompress-worker:0.1.0 .
#   docker run --rm --network host tinycompress-worker:0.1.0 ray start --head --block --port 6379
#   docker run --rm --network host tinycompress-worker:0.1.0 ray start --address HEAD:6379 --block
FROM debian:12-slim

RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm \
        make gcc libc6-dev g++ python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/tinycompress
COPY pyproject.toml constraints.txt README.md ./
COPY tinycompress ./tinycompress
COPY firmware ./firmware
COPY templates ./templates
COPY boards ./boards
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/python -m pip install -q --no-cache-dir --upgrade pip \
    && /opt/venv/bin/python -m pip install -q --no-cache-dir -c constraints.txt '.[keras,cluster]'
ENV PATH=/opt/venv/bin:$PATH \
    RAY_USAGE_STATS_ENABLED=0

# KubeRay and `docker run` give the command (ray start ...); a user of its own, as Ray's images have.
RUN useradd --create-home ray
USER ray
WORKDIR /home/ray
