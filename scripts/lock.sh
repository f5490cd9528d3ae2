#!/usr/bin/env bash
# Rewrites the lock files from pyproject.toml, with hashes (needs pip-tools: `pip install pip-tools`).
#   requirements.lock      what the services need (make demo)
#   requirements-dev.lock  that, plus the dcap extra and the test and lint tools (make test)
# Pins already in the lock files are kept unless pyproject.toml rules them out.
set -euo pipefail
cd "$(dirname "$0")/.."
compile() {
  pip-compile --quiet --generate-hashes --allow-unsafe --all-build-deps --strip-extras --no-emit-index-url --no-emit-find-links \
    --annotation-style=line "$@"
}
keep=$(mktemp)
trap 'rm -f "$keep"' EXIT
cat requirements.lock requirements-dev.lock 2>/dev/null | grep -E '^[A-Za-z0-9_.-]+==' | sed 's/ .*//' | sort -u > "$keep" || true
compile --constraint="$keep" --output-file=requirements.lock pyproject.toml
compile --constraint=requirements.lock --extra=dcap --extra=dev --output-file=requirements-dev.lock pyproject.toml
# The constraint file is temporary: keep its path out of the annotations.
sed -i -E "s#(--constraint=)?$keep#(kept pins)#g; s#, -c \(kept pins\)##; s#-c \(kept pins\), ##; s#  \# via -c \(kept pins\)\$##" \
  requirements.lock requirements-dev.lock
