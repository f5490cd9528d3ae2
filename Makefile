# The two commands of the README: `make demo` (the main job) and `make test` (every test).
# Each runs the idempotent setup first, so both work on a fresh machine.
.PHONY: setup demo test gas snapshot lint

setup:
	@scripts/setup.sh

demo: setup
	.venv/bin/enclave deploy

test: setup
	scripts/test.sh

gas: setup
	.venv/bin/python benchmarks/gas.py

snapshot: setup
	PATH="$$PWD/node_modules/.bin:$$PATH" forge snapshot --no-match-test "testFuzz|invariant"

lint: setup
	.venv/bin/ruff check coprocessor bridge webui enclave tests benchmarks
	.venv/bin/mypy coprocessor bridge webui enclave
