"""The agent APIs and limits, run in the real runtime against local HTTP servers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from coprocessor.runtime import Execution, Limits, RunContext, Sandbox, execute
from coprocessor.runtime.host import HostApi
from protocol.errors import ManifestError
from protocol.manifest import CAPS, Manifest, parse_manifest, with_manifest
from protocol.results import Status
from tests.http_fixtures import FakeApi, fake_api

DEFAULTS = Limits()


@pytest.fixture(scope="module")
def api() -> Iterator[FakeApi]:
    with fake_api() as server:
        server.routes["/hello"] = lambda m, p, h, b: (200, {"hello": "world", "method": m, "body": b.decode()})
        server.routes["/big"] = lambda m, p, h, b: (200, b"x" * 300_000)
        server.routes["/fail"] = lambda m, p, h, b: (500, {"error": "boom"})
        yield server


def run(
    code: str, api: FakeApi | None = None, limits: Limits = DEFAULTS, input_: bytes = b"", **host: Any
) -> Execution:
    hosts = (api.host,) if api else ()
    context = RunContext(agent_id=1, allow_hosts=hosts, allow_private_networks=True)
    return execute(code, input_, limits, HostApi(limits=limits, context=context, **host))


def test_fetch_get_and_post(api: FakeApi) -> None:
    code = f"""export default async (input, ctx) => {{
      const get = await ctx.fetch("{api.url}/hello");
      const post = await ctx.fetch("{api.url}/hello", {{ method: "POST", body: JSON.stringify({{ a: 1 }}),
                                                         headers: {{ "x-test": "1" }} }});
      return {{ get: get.json().hello, status: get.status, ok: get.ok, post: post.json().body }};
    }};"""
    execution = run(code, api)
    assert execution.status == Status.OK, execution.error
    assert json.loads(execution.output) == {"get": "world", "status": 200, "ok": True, "post": '{"a":1}'}
    assert execution.http_calls == 2


def test_fetch_to_a_host_off_the_allow_list_throws(api: FakeApi) -> None:
    execution = run(f'export default async (i, ctx) => (await ctx.fetch("{api.url}/hello")).status;', api=None)
    assert execution.status == Status.AGENT_ERROR
    assert b"is not on this agent's allow-list (none)" in execution.output


def test_fetch_error_is_catchable_and_http_errors_are_responses(api: FakeApi) -> None:
    code = f"""export default async (input, ctx) => {{
      const failed = await ctx.fetch("{api.url}/fail");
      try {{ await ctx.fetch("http://127.0.0.1:1/nothing"); }} catch (e) {{ return [failed.status, e.message]; }}
    }};"""
    execution = run(code, api)
    status, message = json.loads(execution.output)
    assert status == 500
    assert "allow-list" in message


def test_response_size_is_capped(api: FakeApi) -> None:
    execution = run(
        f'export default async (i, ctx) => (await ctx.fetch("{api.url}/big")).status;',
        api,
        Limits(http_response_bytes=100_000),
    )
    assert execution.status == Status.AGENT_ERROR
    assert b"exceeds 100000 bytes" in execution.output


def test_fetch_all_runs_in_parallel_and_reports_each_failure(api: FakeApi) -> None:
    code = f"""export default async (input, ctx) => {{
      const answers = await ctx.fetchAll([{{ url: "{api.url}/hello" }}, {{ url: "http://example.com/" }},
                                          {{ url: "{api.url}/fail" }}]);
      return answers.map((a) => a.error ? "error" : a.status);
    }};"""
    execution = run(code, api)
    assert json.loads(execution.output) == [200, "error", 500]
    assert execution.http_calls == 3


def test_http_call_limit_is_a_resource_limit(api: FakeApi) -> None:
    code = f"""export default async (input, ctx) => {{
      for (let i = 0; i < 5; i++) await ctx.fetch("{api.url}/hello");
    }};"""
    execution = run(code, api, Limits(http_calls=3))
    assert execution.status == Status.RESOURCE_LIMIT
    assert execution.output == b"Error: HTTP call limit of 3 reached"
    assert execution.http_calls == 3


def test_sixteen_http_calls_by_default(api: FakeApi) -> None:
    code = (
        f'export default async (i, ctx) => (await ctx.fetchAll(Array(17).fill({{ url: "{api.url}/hello" }}))).length;'
    )
    assert run(code, api).output == b"Error: HTTP call limit of 16 reached"
    code16 = code.replace("Array(17)", "Array(16)")
    assert run(code16, api).output == b"16"


AGENTS = {
    2: "export default async (input, ctx) => ({ doubled: input.json().n * 2 });",
    3: "export default async (input, ctx) => ctx.callAgent(2, input.text);",
    4: "export default async (input, ctx) => ctx.callAgent(5, input.text);",
    5: "export default async (input, ctx) => ctx.callAgent(4, input.text);",
    6: 'export default async () => { throw new Error("callee broke"); };',
    7: "export default async (input, ctx) => ctx.callAgent(7 + 1, input.text);",
    8: "export default async (input, ctx) => ctx.callAgent(9, input.text);",
    9: "export default async (input, ctx) => ctx.callAgent(10, input.text);",
    10: "export default async (input, ctx) => ctx.callAgent(11, input.text);",
    11: 'export default async () => "0x2a";',
}


def resolver(agent_id: int) -> dict[str, Any]:
    if agent_id not in AGENTS:
        return {"error": "no such agent"}
    return {
        "codeHash": f"0x{agent_id:064x}",
        "code": AGENTS[agent_id],
        "limits": Limits().as_dict(),
        "context": RunContext(agent_id=agent_id).to_wire(),
    }


def test_call_agent_composes_and_records_provenance() -> None:
    execution = run("export default async (i, ctx) => ctx.callAgent(3, JSON.stringify({ n: 21 }));", resolver=resolver)
    assert execution.status == Status.OK, execution.error
    assert json.loads(execution.output) == {"doubled": 42}
    assert [(c["agentId"], c["depth"], c["status"]) for c in execution.calls] == [(3, 1, "OK"), (2, 2, "OK")]
    assert execution.calls[1]["codeHash"] == f"0x{2:064x}"


def test_call_agent_detects_cycles() -> None:
    execution = run("export default async (i, ctx) => ctx.callAgent(4, '');", resolver=resolver)
    assert execution.status == Status.AGENT_ERROR
    assert b"cycle 1 -> 4 -> 5 -> 4" in execution.output


def test_call_depth_is_limited() -> None:
    execution = run("export default async (i, ctx) => ctx.callAgent(7, '');", resolver=resolver)
    assert execution.status == Status.RESOURCE_LIMIT
    assert b"call depth limit of 4 reached" in execution.output
    deeper = run(
        "export default async (i, ctx) => ctx.callAgent(7, '');", limits=Limits(call_depth=6), resolver=resolver
    )
    assert (deeper.status, deeper.output) == (Status.OK, b"\x2a")


def test_callee_failure_and_unknown_agents_throw_in_the_caller() -> None:
    failed = run("export default async (i, ctx) => ctx.callAgent(6, '');", resolver=resolver)
    assert b"agent 6 ended AGENT_ERROR: Error: callee broke" in failed.output
    unknown = run("export default async (i, ctx) => ctx.callAgent(99, '');", resolver=resolver)
    assert b"agent 99: no such agent" in unknown.output


def test_call_agent_through_the_sandbox_pipe() -> None:
    with Sandbox(size=1) as sandbox:
        execution = sandbox.execute(
            "export default async (i, ctx) => ctx.callAgent(3, JSON.stringify({ n: 5 }));",
            b"",
            Limits(),
            RunContext(agent_id=1),
            resolver,
        )
    assert json.loads(execution.output) == {"doubled": 10}
    assert len(execution.calls) == 2


def test_manifest_sets_hosts_and_limits_within_caps() -> None:
    code = '// @enclave {"name": "x", "allowHosts": ["a.example"], "limits": {"wallTimeMs": 60000, "httpCalls": 2}}\n'
    manifest = parse_manifest(code + "export default async () => 1;")
    assert manifest.allow_hosts == ("a.example",)
    limits = manifest.apply(Limits())
    assert limits.http_calls == 2
    assert limits.wall_time_ms == CAPS.wall_time_ms
    with pytest.raises(ManifestError, match="limit wallTimeMs of 999999 is over its cap of 60000"):
        parse_manifest('// @enclave {"limits": {"wallTimeMs": 999999}}')
    assert parse_manifest(with_manifest("export default async () => 1;", Manifest(name="y"))).name == "y"
    with pytest.raises(ManifestError, match="unknown limits"):
        parse_manifest('// @enclave {"limits": {"cpu": 1}}')
