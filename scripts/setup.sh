#!/usr/bin/env bash
# Installs everything the project needs, pinned by the lock files, and builds the contracts.
# Idempotent: a second run only checks stamps and rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp_ok() { [ -f "$2" ] && [ "$(cat "$2")" = "$1" ]; }

# --dev: also the test and lint tools and the dcap extra (requirements-dev.lock);
# --browser: also Debian's Chromium for the dashboard's browser tests. `make test` asks for both.
dev=false browser=false
for arg in "$@"; do
  case "$arg" in
    --dev) dev=true ;;
    --browser) browser=true ;;
    *) echo "usage: scripts/setup.sh [--dev] [--browser]" >&2; exit 2 ;;
  esac
done

# Node packages: Foundry binaries, solc, OpenZeppelin, htmx (package-lock.json).
node_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if ! stamp_ok "$node_hash" node_modules/.setup-stamp; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$node_hash" > node_modules/.setup-stamp
fi

scripts/install-vendored.sh

# With --dev: Chainlink's functions-toolkit (tests/toolkit/package-lock.json), for the test that
# runs it against the Functions adapter. Its install scripts only build native speed-ups that
# it falls back from (bcrypto's JS backend), so they are not run.
if $dev; then
  toolkit_hash=$(sha256sum tests/toolkit/package-lock.json | cut -d' ' -f1)
  if ! stamp_ok "$toolkit_hash" tests/toolkit/node_modules/.setup-stamp; then
    (cd tests/toolkit && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    echo "$toolkit_hash" > tests/toolkit/node_modules/.setup-stamp
  fi
fi

# Python packages, every one pinned with its hashes (requirements.lock, or requirements-dev.lock
# with --dev, which holds the same pins and more), then the project itself in editable mode.
python_bin=${PYTHON:-python3.11}
lock=requirements.lock
$dev && lock=requirements-dev.lock
py_hash=$(cat "$lock" pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ]; then
  "$python_bin" -m venv .venv
fi
# A dev install also serves `make demo`: the runtime pins are a subset of the dev ones.
if ! stamp_ok "$py_hash" .venv/.setup-stamp && ! { ! $dev && [ -f .venv/.setup-dev ] \
    && stamp_ok "$(cat requirements-dev.lock pyproject.toml | sha256sum | cut -d' ' -f1)" .venv/.setup-stamp; }; then
  .venv/bin/pip install --quiet --disable-pip-version-check --require-hashes -r "$lock"
  .venv/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
  echo "$py_hash" > .venv/.setup-stamp
  if $dev; then touch .venv/.setup-dev; else rm -f .venv/.setup-dev; fi
fi

# Debian's packages, each pinned: the newest (or `fallback`) only if the mirror no longer has
# the pin. Installing needs root; without it, say what to install.
apt_install() {  # package version who-needs-it [fallback]
  if [ "$(id -u)" != "0" ]; then
    echo "$3 need Debian's $1: run 'apt-get install ${4:-$1}' as root" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1=$2" \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${4:-$1}"
}

# Chromium, for the dashboard's browser tests (`scripts/setup.sh --browser`, which `make test` runs).
if $browser && ! command -v chromium >/dev/null; then
  apt_install chromium "156.0.8078.108-1~deb12u1" "the browser tests"
fi
# PostgreSQL, with --dev: the tests start their own servers (initdb into a temporary folder) for
# the bridge's PostgreSQL backend and its replicas.
if $dev && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt_install postgresql-15 "15.18-0+deb12u1" "the store's PostgreSQL tests" postgresql
fi
# iproute2, with --dev: a test puts a worker in a network namespace.
if $dev && ! command -v ip >/dev/null; then
  apt_install iproute2 "6.1.0-3" "the network namespace test"
fi

# Contracts: forge compiles only what changed.
. scripts/foundry-env.sh
forge build --quiet
