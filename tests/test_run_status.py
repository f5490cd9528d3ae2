"""Where a run's status comes from: the engine's and the host's own records, never error text.

A worker signs the status and the chain delivers it, so an agent must not be able to pick
RESOURCE_LIMIT by writing a message, and a host failure (the chain unreachable while
`ctx.callAgent` looks an agent up) must not be signed as the agent's error. Every run here goes
through the real sandbox, as the worker's do: the statuses, `host_error` and the resolver's
answers all cross the pipe between the child process and the parent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from coprocessor.runtime import Execution, Limits, RunContext, Sandbox, execute
from coprocessor.runtime.host import HostApi
from coprocessor.runtime.sandbox import execution_from_wire, execution_to_wire
from protocol.results import Status
from tests.http_fixtures import FakeApi, fake_api

# Small enough that a memory bomb ends quickly, large enough for the prelude and a real agent.
LIMITS = Limits(memory_bytes=16 * 1024 * 1024)
MEMORY_BOMB = "const a = []; while (true) a.push(new Array(100000).fill(1));"
RECURSION = "const f = (n) => f(n + 1) + 1; f(0);"

Resolver = Callable[[int], dict[str, Any]]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(size=2) as pool:
        yield pool


@pytest.fixture(scope="module")
def api() -> Iterator[FakeApi]:
    with fake_api() as server:
        server.routes["/hello"] = lambda m, p, h, b: (200, {"hello": "world"})
        yield server


def main_body(body: str) -> str:
    return f"export default async (input, ctx) => {{ {body} }};"


def top_level(statements: str) -> str:
    return f"{statements}\nexport default async () => 1;"


# -- errors that only name a limit ----------------------------------------------------------------


@pytest.mark.parametrize(
    "throw",
    [
        'throw new Error("out of memory in my parser");',
        'throw "InternalError: out of memory";',
        'throw new Error("HTTP call limit");',
        'throw new Error("callAgent: call depth limit of 4 reached");',
        'throw new RangeError("stack overflow");',
    ],
)
def test_an_error_that_names_a_limit_is_an_agent_error(sandbox: Sandbox, throw: str) -> None:
    execution = sandbox.execute(main_body(throw), b"", LIMITS)
    assert execution.status == Status.AGENT_ERROR, execution.error


def test_an_agent_cannot_construct_the_engines_internal_error(sandbox: Sandbox) -> None:
    execution = sandbox.execute(main_body('throw new InternalError("out of memory");'), b"", LIMITS)
    assert execution.status == Status.AGENT_ERROR
    assert execution.output == b"ReferenceError: 'InternalError' is not defined"
    seen = sandbox.execute(main_body("return typeof globalThis.InternalError;"), b"", LIMITS)
    assert (seen.status, seen.output) == (Status.OK, b'"undefined"')


@pytest.mark.parametrize(
    "write",
    [
        'globalThis.__failureKind = "memory";',
        'Object.defineProperty(globalThis, "__failureKind", { value: "memory" });',
    ],
)
def test_an_agent_cannot_write_the_failure_kind(sandbox: Sandbox, write: str) -> None:
    code = main_body(f'try {{ {write} }} catch (_) {{}} throw new Error("out of memory");')
    execution = sandbox.execute(code, b"", LIMITS)
    assert execution.status == Status.AGENT_ERROR, execution.error


def test_a_new_error_with_a_real_limits_message_is_an_agent_error(sandbox: Sandbox) -> None:
    copied = main_body(f"try {{ {RECURSION} }} catch (e) {{ throw new Error(e.message); }}")
    execution = sandbox.execute(copied, b"", LIMITS)
    assert (execution.status, execution.output) == (Status.AGENT_ERROR, b"Error: stack overflow")
    # Letting the engine's own error through is the agent's choice for its own run.
    rethrown = sandbox.execute(main_body(f"try {{ {RECURSION} }} catch (e) {{ throw e; }}"), b"", LIMITS)
    assert (rethrown.status, rethrown.output) == (Status.RESOURCE_LIMIT, b"InternalError: stack overflow")


def test_a_real_limit_the_agent_caught_is_not_the_status_of_a_later_failure(sandbox: Sandbox) -> None:
    # Turning the caught error into text must not leave a classification behind either.
    code = main_body(f"try {{ {RECURSION} }} catch (e) {{ ctx.log(String(e)); }} await new Promise(() => {{}});")
    execution = sandbox.execute(code, b"", LIMITS)
    assert execution.status == Status.AGENT_ERROR
    assert execution.output == b"main() never settled: it awaits a promise nothing resolves"
    assert execution.logs == ["InternalError: stack overflow"]


# -- QuickJS's own limits -------------------------------------------------------------------------


def test_a_real_memory_bomb_is_a_resource_limit(sandbox: Sandbox) -> None:
    execution = sandbox.execute(main_body(MEMORY_BOMB), b"", LIMITS)
    assert (execution.status, execution.output) == (Status.RESOURCE_LIMIT, b"InternalError: out of memory")


def test_real_infinite_recursion_is_a_resource_limit(sandbox: Sandbox) -> None:
    execution = sandbox.execute(main_body(RECURSION), b"", LIMITS)
    assert (execution.status, execution.output) == (Status.RESOURCE_LIMIT, b"InternalError: stack overflow")


@pytest.mark.parametrize("throw", ['throw new Error("out of memory");', 'throw "InternalError: out of memory";'])
def test_a_top_level_error_that_names_a_limit_is_an_agent_error(sandbox: Sandbox, throw: str) -> None:
    execution = sandbox.execute(top_level(throw), b"", LIMITS)
    assert execution.status == Status.AGENT_ERROR, execution.error
    assert b"out of memory" in execution.output


def test_a_top_level_memory_bomb_is_a_resource_limit(sandbox: Sandbox) -> None:
    execution = sandbox.execute(top_level(MEMORY_BOMB), b"", LIMITS)
    assert (execution.status, execution.output) == (Status.RESOURCE_LIMIT, b"InternalError: out of memory")


def test_top_level_infinite_recursion_is_a_resource_limit(sandbox: Sandbox) -> None:
    execution = sandbox.execute(top_level(RECURSION), b"", LIMITS)
    assert (execution.status, execution.output) == (Status.RESOURCE_LIMIT, b"InternalError: stack overflow")


@pytest.mark.parametrize("where", [main_body, top_level])
def test_null_thrown_at_a_full_memory_is_a_resource_limit(sandbox: Sandbox, where: Callable[[str], str]) -> None:
    # At a full memory QuickJS may have no room for its error object and throw null instead;
    # whether it does depends on where the last allocation falls, so the agent throws the null
    # itself once the memory is full. A chain of small objects fills it to within one object (an
    # array would fail on growing its store with much still free); the global keeps it in use
    # for the engine to measure.
    fill_then_throw_null = (
        "let head = null; try { while (true) head = { next: head }; } catch (e) {} globalThis.kept = head; throw null;"
    )
    execution = sandbox.execute(where(fill_then_throw_null), b"", LIMITS)
    assert execution.status == Status.RESOURCE_LIMIT, execution.error
    assert execution.output.startswith(b"out of memory: the run failed at its memory limit")


def test_null_thrown_with_memory_to_spare_is_an_agent_error(sandbox: Sandbox) -> None:
    execution = sandbox.execute(main_body("throw null;"), b"", LIMITS)
    assert (execution.status, execution.output) == (Status.AGENT_ERROR, b"null")


# -- limits the host enforces ---------------------------------------------------------------------


def http_context(api: FakeApi) -> RunContext:
    return RunContext(agent_id=1, allow_hosts=(api.host,), allow_private_networks=True)


def test_exceeding_the_http_call_limit_is_a_resource_limit(sandbox: Sandbox, api: FakeApi) -> None:
    code = main_body(f'for (let i = 0; i < 3; i++) await ctx.fetch("{api.url}/hello");')
    execution = sandbox.execute(code, b"", Limits(http_calls=2), http_context(api))
    assert (execution.status, execution.output) == (Status.RESOURCE_LIMIT, b"Error: HTTP call limit of 2 reached")
    assert execution.http_calls == 2


def test_the_http_limit_counts_for_a_failure_not_for_a_run_that_recovers(sandbox: Sandbox, api: FakeApi) -> None:
    fetch_three = f'for (let i = 0; i < 3; i++) await ctx.fetch("{api.url}/hello");'
    recovered = main_body(f'try {{ {fetch_three} }} catch (e) {{ return "cached"; }}')
    execution = sandbox.execute(recovered, b"", Limits(http_calls=2), http_context(api))
    assert (execution.status, execution.output) == (Status.OK, b'"cached"')
    # A run that hit the limit and then failed otherwise still hit the limit.
    failed = main_body(f'try {{ {fetch_three} }} catch (e) {{ throw new Error("no price"); }}')
    execution = sandbox.execute(failed, b"", Limits(http_calls=2), http_context(api))
    assert (execution.status, execution.output) == (Status.RESOURCE_LIMIT, b"Error: no price")


def chain(agents: dict[int, str]) -> Resolver:
    def resolve(agent_id: int) -> dict[str, Any]:
        if agent_id not in agents:
            return {"error": "no such agent"}
        context = RunContext(agent_id=agent_id).to_wire()
        return {
            "codeHash": f"0x{agent_id:064x}",
            "code": agents[agent_id],
            "limits": LIMITS.as_dict(),
            "context": context,
        }

    return resolve


def test_the_call_depth_limit_is_a_resource_limit_of_the_root(sandbox: Sandbox) -> None:
    deeper = {n: f"export default async (i, ctx) => ctx.callAgent({n + 1}, '');" for n in range(2, 10)}
    code = "export default async (i, ctx) => ctx.callAgent(2, '');"
    execution = sandbox.execute(code, b"", Limits(call_depth=3), RunContext(agent_id=1), chain(deeper))
    assert execution.status == Status.RESOURCE_LIMIT, execution.error
    assert b"call depth limit of 3 reached" in execution.output


@pytest.mark.parametrize(
    "callee",
    [main_body(MEMORY_BOMB), main_body(f"try {{ {RECURSION} }} catch (e) {{ throw e; }}")],
    ids=["memory-bomb", "rethrown-stack-overflow"],
)
def test_a_callees_own_limit_does_not_make_its_caller_a_resource_limit(sandbox: Sandbox, callee: str) -> None:
    code = "export default async (i, ctx) => ctx.callAgent(2, '');"
    execution = sandbox.execute(code, b"", LIMITS, RunContext(agent_id=1), chain({2: callee}))
    assert execution.status == Status.AGENT_ERROR, execution.error
    assert b"agent 2 ended RESOURCE_LIMIT" in execution.output
    assert [call["status"] for call in execution.calls] == ["RESOURCE_LIMIT"]


# -- the host's own failures ----------------------------------------------------------------------


def chain_down(agent_id: int) -> dict[str, Any]:
    return {"hostError": "connection refused"}


def test_a_resolvers_host_error_marks_the_run(sandbox: Sandbox) -> None:
    code = "export default async (i, ctx) => ctx.callAgent(2, '');"
    execution = sandbox.execute(code, b"", LIMITS, RunContext(agent_id=1), chain_down)
    assert execution.host_error == "connection refused"
    assert execution.status == Status.AGENT_ERROR  # a placeholder: the worker does not sign it
    assert b"connection refused" in execution.output


@pytest.mark.parametrize("returned", ['"fine"', '"0x66696e65"'], ids=["json", "hex-bytes"])
def test_an_agent_cannot_swallow_a_host_error(sandbox: Sandbox, returned: str) -> None:
    code = main_body(f"try {{ await ctx.callAgent(2, ''); }} catch (e) {{}} return {returned};")
    execution = sandbox.execute(code, b"", LIMITS, RunContext(agent_id=1), chain_down)
    assert execution.host_error == "connection refused"
    assert execution.status == Status.AGENT_ERROR
    assert b"fine" not in execution.output


def test_a_callees_host_error_reaches_the_root(sandbox: Sandbox) -> None:
    agents = {2: main_body('try { await ctx.callAgent(3, ""); } catch (e) {} return "fine";')}

    def resolve(agent_id: int) -> dict[str, Any]:
        return chain(agents)(agent_id) if agent_id == 2 else {"hostError": "rpc timed out"}

    code = main_body('try { return await ctx.callAgent(2, ""); } catch (e) { return "also fine"; }')
    execution = sandbox.execute(code, b"", LIMITS, RunContext(agent_id=1), resolve)
    assert execution.host_error == "rpc timed out"
    assert execution.status == Status.AGENT_ERROR


def test_a_host_error_survives_a_run_that_then_times_out(sandbox: Sandbox) -> None:
    code = main_body("try { await ctx.callAgent(2, ''); } catch (e) {} while (true) {}")
    execution = sandbox.execute(code, b"", Limits(wall_time_ms=500), RunContext(agent_id=1), chain_down)
    assert execution.host_error == "connection refused"


def test_a_resolver_that_raises_is_a_host_error_and_the_pool_serves_on(sandbox: Sandbox) -> None:
    def broken(agent_id: int) -> dict[str, Any]:
        raise ConnectionError("node unreachable")

    code = "export default async (i, ctx) => ctx.callAgent(2, '');"
    execution = sandbox.execute(code, b"", LIMITS, RunContext(agent_id=1), broken)
    assert execution.host_error is not None
    assert "node unreachable" in execution.host_error
    for _ in range(3):  # more runs than the pool has processes: no child was left waiting
        after = sandbox.execute("export default async (i) => i.bytes;", b"alive", LIMITS)
        assert (after.status, after.output, after.host_error) == (Status.OK, b"alive", None)


def test_an_unknown_agent_is_the_agents_error_not_the_hosts(sandbox: Sandbox) -> None:
    code = "export default async (i, ctx) => ctx.callAgent(2, '');"
    execution = sandbox.execute(code, b"", LIMITS, RunContext(agent_id=1), chain({}))
    assert (execution.status, execution.host_error) == (Status.AGENT_ERROR, None)
    assert execution.output == b"Error: callAgent: agent 2: no such agent"


# The sandbox's parent records a resolver's hostError itself, which would hide a child whose
# HostApi lost it: these run the child's side, HostApi and the engine, in this process.


def test_the_host_api_records_a_host_error_the_agent_swallowed() -> None:
    host = HostApi(limits=LIMITS, context=RunContext(agent_id=1), resolver=chain_down)
    code = main_body('try { await ctx.callAgent(2, ""); } catch (e) {} return "0x01";')
    execution = execute(code, b"", LIMITS, host)
    assert host.host_error == execution.host_error == "connection refused"
    assert (execution.status, execution.output) == (
        Status.AGENT_ERROR,
        b"host error (not the agent's): connection refused",
    )


def test_after_a_host_error_every_host_call_is_refused() -> None:
    host = HostApi(limits=LIMITS, context=RunContext(agent_id=1), resolver=chain_down)
    hashed: list[str] = []

    def sha256(data: str) -> str:
        hashed.append(data)
        return "0x00"

    host.register("hash.sha256", sha256)
    code = main_body('try { await ctx.callAgent(2, ""); } catch (e) {} try { ctx.hash.sha256("x"); } catch (e) {}')
    execute(code, b"", LIMITS, host)
    assert hashed == [], "the agent went on using the host after the run was void"


def test_a_host_error_wins_over_an_agent_level_answer() -> None:
    host = HostApi(
        limits=LIMITS,
        context=RunContext(agent_id=1),
        resolver=lambda _: {"error": "no such agent", "hostError": "stale"},
    )
    execution = execute("export default async (i, ctx) => ctx.callAgent(2, '');", b"", LIMITS, host)
    assert execution.host_error == "stale"


def test_the_host_api_passes_a_callees_host_error_up() -> None:
    agents = {2: main_body('try { await ctx.callAgent(3, ""); } catch (e) {} return "0x01";')}

    def resolve(agent_id: int) -> dict[str, Any]:
        return chain(agents)(agent_id) if agent_id == 2 else {"hostError": "rpc timed out"}

    host = HostApi(limits=LIMITS, context=RunContext(agent_id=1), resolver=resolve)
    code = main_body('try { return await ctx.callAgent(2, ""); } catch (e) { return "0x02"; }')
    assert execute(code, b"", LIMITS, host).host_error == "rpc timed out"


def test_host_error_crosses_the_wire() -> None:
    execution = Execution(Status.OK, b"x").with_host_error("connection refused")
    assert execution_from_wire(json.loads(json.dumps(execution_to_wire(execution)))).host_error == "connection refused"
    assert execution_from_wire(execution_to_wire(Execution(Status.OK, b"x"))).host_error is None


def test_an_agent_that_breaks_the_built_ins_its_output_is_encoded_with_fails_alone(sandbox: Sandbox) -> None:
    """From an attacker's pass: an agent that made RegExp.prototype.test always true handed the
    engine "0xZZ" as its output, and the sandbox process died on it (signed RESOURCE_LIMIT, a new
    process started). It is the agent's failure now, and the process serves the next run."""
    broken = sandbox.execute(main_body('RegExp.prototype.test = () => true; return "0xZZ";'), b"", LIMITS)
    assert broken.status == Status.AGENT_ERROR
    assert "not bytes" in (broken.error or "")
    assert sandbox.execute(main_body("return 7;"), b"", LIMITS).status == Status.OK
