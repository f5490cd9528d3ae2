"""The agent runtime: ctx helpers, and every hostile agent ending in an error status."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest
from eth_abi.abi import decode, encode
from eth_utils.crypto import keccak

from coprocessor.runtime import Limits, Sandbox, execute
from coprocessor.runtime.context import RunContext
from coprocessor.runtime.engine import Warm, expose_default_export
from protocol.results import Status

LIMITS = Limits()


def run(code: str, input_: bytes = b"", limits: Limits = LIMITS) -> tuple[Status, bytes, str]:
    """A run as a sandbox process makes it: in a context made, prelude loaded, before the job."""
    execution = execute(code, input_, limits, warm=Warm())
    return execution.status, execution.output, execution.error or ""


def test_echo_returns_input_bytes_and_logs() -> None:
    execution = execute(
        'export default async function main(input, ctx) { ctx.log("got", input.text); return input.bytes; }',
        b"hello",
        LIMITS,
    )
    assert execution.status == Status.OK
    assert execution.output == b"hello"
    assert execution.logs == ["got hello"]
    assert execution.elapsed_ms > 0
    assert execution.memory_bytes > 0


def test_json_value_becomes_utf8_json() -> None:
    status, output, _ = run("export default async (input) => ({ hi: input.json().name, n: 2 });", b'{"name":"bob"}')
    assert status == Status.OK
    assert output == b'{"hi":"bob","n":2}'


def test_hash_helpers_match_python() -> None:
    status, output, _ = run(
        "export default async (input, ctx) => [ctx.hash.keccak256('abc'), ctx.hash.sha256(input.bytes)];", b"\x01"
    )
    assert status == Status.OK
    assert json.loads(output) == ["0x" + keccak(b"abc").hex(), "0x" + hashlib.sha256(b"\x01").hexdigest()]


def test_abi_round_trip_with_bigints() -> None:
    code = """export default async function main(input, ctx) {
      const [amount, who] = ctx.abi.decode(["uint256", "string"], input.hex);
      return ctx.abi.encode(["uint256", "string"], [amount * 2n, who + "!"]);
    }"""
    status, output, _ = run(code, encode(["uint256", "string"], [2**200, "bob"]))
    assert status == Status.OK
    assert decode(["uint256", "string"], output) == (2**201, "bob!")


def test_abi_error_is_a_js_exception() -> None:
    status, output, _ = run('export default async (i, ctx) => ctx.abi.encode(["uint8"], [1000]);')
    assert status == Status.AGENT_ERROR
    assert output.startswith(b"Error: abi.encode")


def test_throw_gives_agent_error_with_stack_line() -> None:
    status, output, error = run('export default async function main() {\n  throw new Error("boom");\n}')
    assert status == Status.AGENT_ERROR
    assert output == b"Error: boom"
    assert "<input>:2" in error, "the stack names the agent's line"


def test_memory_bomb_hits_the_memory_limit() -> None:
    code = "export default async () => { const a = []; while (true) a.push(new Array(100000).fill(1)); };"
    status, output, _ = run(code, limits=Limits(memory_bytes=16 * 1024 * 1024))
    assert status == Status.RESOURCE_LIMIT
    assert b"out of memory" in output


def test_deep_recursion_hits_the_stack_limit() -> None:
    status, output, _ = run("export default async () => { const f = (n) => f(n + 1) + 1; return f(0); };")
    assert status == Status.RESOURCE_LIMIT
    assert b"stack overflow" in output


def test_huge_output_hits_the_output_limit() -> None:
    status, output, _ = run('export default async () => "0x" + "ab".repeat(5000);')
    assert status == Status.RESOURCE_LIMIT
    assert output == b"output of 5000 bytes exceeds the 4096-byte limit"


def test_oversized_input_is_bad_input() -> None:
    status, output, _ = run("export default async (i) => i.bytes;", b"x" * 40_000)
    assert status == Status.BAD_INPUT
    assert b"40000 bytes exceeds" in output


def test_non_utf8_input_as_text_is_an_agent_error() -> None:
    status, output, _ = run("export default async (i) => i.text;", b"\xff\xfe")
    assert status == Status.AGENT_ERROR
    assert b"not UTF-8" in output


def test_agent_without_default_export_is_an_agent_error() -> None:
    status, output, _ = run("async function main() { return 1; }")
    assert status == Status.AGENT_ERROR
    assert b"no default export" in output


def test_syntax_error_is_an_agent_error() -> None:
    status, output, _ = run("export default async function main( {")
    assert status == Status.AGENT_ERROR
    assert output.startswith(b"SyntaxError")


def test_never_settling_main_is_an_agent_error() -> None:
    status, output, _ = run("export default async () => { await new Promise(() => {}); };")
    assert status == Status.AGENT_ERROR
    assert b"never settled" in output


def test_default_export_rewrite_keeps_line_numbers() -> None:
    code = "// a comment\nexport default async function main() {}\n"
    rewritten = expose_default_export(code)
    assert rewritten.splitlines()[1] == "async function main() {}"
    assert rewritten.rstrip().endswith("globalThis.__agentMain = main;")
    assert expose_default_export("export default (x) => x;") == "globalThis.__agentMain = (x) => x;"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(size=2) as pool:
        yield pool


def test_sandbox_kills_an_infinite_loop_and_keeps_serving(sandbox: Sandbox) -> None:
    limits = Limits(wall_time_ms=500)
    looped = sandbox.execute("export default async function main() { while (true) {} }", b"", limits)
    assert looped.status == Status.TIMEOUT
    assert looped.output == b"wall time of 500 ms exceeded"
    for _ in range(3):  # more runs than the pool has processes: the killed one was replaced
        after = sandbox.execute("export default async (i) => i.bytes;", b"alive", limits)
        assert (after.status, after.output) == (Status.OK, b"alive")


def test_sandbox_survives_a_memory_bomb(sandbox: Sandbox) -> None:
    bomb = "export default async () => { let s = 'x'; while (true) s += s; };"
    assert sandbox.execute(bomb, b"", LIMITS).status == Status.RESOURCE_LIMIT
    assert sandbox.execute("export default async () => '0x01';", b"", LIMITS).output == b"\x01"


def test_each_run_of_a_sandbox_process_has_a_context_of_its_own() -> None:
    """Contexts are made ahead of their jobs, one per run: nothing one agent leaves (globals, a
    polluted prototype, its secrets) reaches the next run of the same process."""
    leaves = """export default async (input, ctx) => {
      globalThis.kept = ctx.secrets.KEY;
      Object.prototype.polluted = ctx.secrets.KEY;
      return "0x";
    };"""
    reads = """export default async (input, ctx) => ({
      kept: globalThis.kept ?? null, polluted: ({}).polluted ?? null, secrets: ctx.secrets
    });"""
    with Sandbox(size=1) as one:
        assert one.execute(leaves, b"", LIMITS, RunContext(secrets={"KEY": "s3cret"})).status == Status.OK
        after = one.execute(reads, b"", LIMITS, RunContext(secrets={"OTHER": "mine"}))
    assert after.status == Status.OK
    assert json.loads(after.output) == {"kept": None, "polluted": None, "secrets": {"OTHER": "mine"}}


def test_a_warm_context_serves_one_run_and_asks_for_nothing_before_it() -> None:
    warm = Warm()
    assert run("export default async (i) => i.bytes;", b"once")[1] == b"once"
    first = execute("export default async (i, ctx) => ctx.request.consumer;", b"", LIMITS, warm=warm)
    assert first.status == Status.OK
    with pytest.raises(RuntimeError, match="one run only"):
        execute("export default async () => '0x01';", b"", LIMITS, warm=warm)
