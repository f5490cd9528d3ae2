# Sourced by the project's scripts: Foundry's native binaries (from the npm packages) first on
# PATH. npm's launchers in node_modules/.bin run them but always exit 0, so through them a
# failing `forge test` or `forge build` would pass.
PATH="$PWD/node_modules/.bin:$PATH"
for dir in "$PWD"/node_modules/@foundry-rs/*-linux-*/bin; do
  if [ -d "$dir" ]; then PATH="$dir:$PATH"; fi
done
export PATH
