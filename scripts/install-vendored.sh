#!/usr/bin/env bash
# Places forge-std in lib/forge-std, and Chainlink's contracts (for the gas comparison with
# Chainlink Functions) in lib/chainlink. The npm package named forge-std is an old unofficial
# copy; the Chainlink contracts tarball on the npm registry vendors a complete one. `npm install`
# of that package fails (it has a git dependency), so the tarball is fetched with `npm pack` and
# checked against the integrity pinned below.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE="@chainlink/contracts@1.4.0"
INTEGRITY="sha512-SpNCJ0TPOI6pa2l702Wk4WIP8ccw5ARcRP1E/ZTqaFffXNoZeF03WhsVL8f3l3OTRFA9Z40O5KcZzmJmZQkoFA=="
TARGET="lib/forge-std"
CHAINLINK="lib/chainlink"

if [ -f "$TARGET/.integrity" ] && [ "$(cat "$TARGET/.integrity")" = "$INTEGRITY" ] \
  && [ -f "$CHAINLINK/.integrity" ] && [ "$(cat "$CHAINLINK/.integrity")" = "$INTEGRITY" ]; then
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npm pack --silent --pack-destination "$work" "$PACKAGE" >/dev/null
tarball=$(ls "$work"/*.tgz)
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$actual" != "$INTEGRITY" ]; then
  echo "forge-std: $PACKAGE integrity mismatch: $actual" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work" package/src/v0.8
rm -rf "$TARGET" "$CHAINLINK"
mkdir -p "$TARGET"
cp -r "$work/package/src/v0.8/vendor/forge-std/src" "$TARGET/src"
echo "$INTEGRITY" > "$TARGET/.integrity"
cp -r "$work/package/src/v0.8" "$CHAINLINK"
echo "$INTEGRITY" > "$CHAINLINK/.integrity"
echo "forge-std and Chainlink's contracts installed from $PACKAGE"
