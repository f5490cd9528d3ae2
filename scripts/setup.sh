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

scripts/install-forge-std.sh

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

# Contracts: forge compiles only what changed.
PATH="$PWD/node_modules/.bin:$PATH" forge build --quiet
