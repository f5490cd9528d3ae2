#!/usr/bin/env bash
# Every test: the Foundry suite, then pytest. Both must run tests and pass.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/foundry-env.sh

echo "== lint: ruff, mypy (strict)"
.venv/bin/ruff check .
.venv/bin/ruff format --check --quiet .
.venv/bin/mypy  # every package, the tests and the benchmarks (pyproject.toml)

profile=${FOUNDRY_PROFILE:-default}
[ "${CI:-}" = "true" ] && profile=ci
echo "== forge test (profile $profile)"
FOUNDRY_PROFILE=$profile forge test

echo "== pytest"
# pytest exits 5 when it collects no test; that is a failure here, as any non-zero code is.
.venv/bin/python -m pytest "$@"
