#!/usr/bin/env bash
# Installs everything the project needs, pinned by the lock files, and builds the contracts.
# Idempotent: a second run only checks stamps and rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp_ok() { [ -f "$2" ] && [ "$(cat "$2")" = "$1" ]; }

# Node packages: Foundry binaries, solc, OpenZeppelin, htmx (package-lock.json).
node_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if ! stamp_ok "$node_hash" node_modules/.setup-stamp; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$node_hash" > node_modules/.setup-stamp
fi

scripts/install-vendored.sh

# Python packages (requirements.lock), then the project itself in editable mode.
python_bin=${PYTHON:-python3.11}
py_hash=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ]; then
  "$python_bin" -m venv .venv
fi
if ! stamp_ok "$py_hash" .venv/.setup-stamp; then
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.lock
  .venv/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
  echo "$py_hash" > .venv/.setup-stamp
fi

# Chromium from Debian's packages, for the dashboard's browser tests (`scripts/setup.sh --browser`,
# which `make test` runs). Pinned; the newest is taken only if the mirror no longer has the pin.
CHROMIUM_VERSION="156.0.8078.108-1~deb12u1"
if [ "${1:-}" = "--browser" ] && ! command -v chromium >/dev/null; then
  if [ "$(id -u)" != "0" ]; then
    echo "the browser tests need Debian's chromium: run 'apt-get install chromium' as root" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "chromium=$CHROMIUM_VERSION" \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
fi

# Contracts: forge compiles only what changed.
PATH="$PWD/node_modules/.bin:$PATH" forge build --quiet
