#!/usr/bin/env bash
# Makes the npm package of the contracts (`npm pack`): packages/contracts/package.json with
# solidity/src, forge-std's src and the solc shim, staged in a temporary folder. Prints the path
# of the tarball, written to the folder given (default: dist/).
set -euo pipefail
# The destination is resolved where the caller stands, before moving to the repository.
destination=$(realpath -m "${1:-$(dirname "$0")/../dist}")
cd "$(dirname "$0")/.."
mkdir -p "$destination"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp packages/contracts/package.json packages/contracts/README.md "$stage/"
cp -r solidity/src "$stage/src"
mkdir -p "$stage/forge-std" "$stage/bin"
cp -r lib/forge-std/src "$stage/forge-std/src"
cp scripts/solc "$stage/bin/solc"
name=$(cd "$stage" && npm pack --silent --pack-destination "$destination")
echo "$destination/$name"
