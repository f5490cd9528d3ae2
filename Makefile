# The two commands of the README: `make demo` (the main job) and `make test` (every test).
# Each runs the idempotent setup first, so both work on a fresh machine.
.PHONY: setup demo test gas snapshot fmt

setup:
	@scripts/setup.sh

demo: setup
	.venv/bin/enclave demo

test:
	@scripts/setup.sh --dev --browser
	scripts/test.sh

gas: setup
	.venv/bin/python benchmarks/gas.py

snapshot: setup
	. scripts/foundry-env.sh && forge snapshot --no-match-test "testFuzz|invariant"

fmt: setup
	.venv/bin/ruff format .
	. scripts/foundry-env.sh && forge fmt
