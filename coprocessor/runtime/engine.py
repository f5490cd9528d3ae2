"""One agent run in QuickJS, inside the sandbox's child process.

Nothing here enforces wall time: QuickJS refuses host calls while its own time limit is set, so
the parent process kills the child at the deadline instead (see `sandbox.py`). Memory and stack
are limited by QuickJS itself; output and input sizes here.

The status of a failed run is signed by the worker and delivered on-chain, so it comes from
signals an agent cannot write, never from the text of an error (`throw new Error("out of
memory")` is an AGENT_ERROR). A failed run is RESOURCE_LIMIT when one of these holds:

- the host refused a call because a limit of the run was reached (`HostApi.limit_reached`:
  the HTTP call count, or the call tree's depth), whatever the agent threw afterwards;
- QuickJS threw its own memory or stack error, as the prelude classified the thrown object
  (`__failureKind`, see prelude.js for what an agent can and cannot fake there). For errors out
  of the module's top level, which reach Python as text only, the prelude classifies the object
  while the binding converts it to text;
- the run failed with its memory full (`_MEMORY_FULL_MARGIN`): when QuickJS cannot even
  allocate the error object it throws `null`, which the classification above cannot tell from
  an agent's `throw null`. A run that really filled its memory by its own frames' locals has
  freed them by the time the engine looks, so that case reads AGENT_ERROR "null", as it did
  before; memory held by globals or module bindings is still in use and counts.

A run during which the host itself failed (`ctx.callAgent` could not ask the chain) carries
`Execution.host_error`: its status is a placeholder, and the worker answers with a retryable
error instead of signing it. The agent cannot clear it by catching the exception.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import quickjs

from coprocessor.runtime.host import HostApi
from protocol.hexes import to_hex
from protocol.limits import KIB, Limits
from protocol.manifest import Manifest, decode_output
from protocol.status import Status

PRELUDE = (Path(__file__).parent / "prelude.js").read_text()

# The message that goes on-chain with an error status is its first line, this long at most;
# the full message with the JS stack goes back to the bridge and the developer.
ONCHAIN_ERROR_BYTES = 256

_DEFAULT_FUNCTION = re.compile(r"\bexport\s+default\s+((?:async\s+)?function\s*\*?\s*([A-Za-z_$][\w$]*))")
_DEFAULT_EXPRESSION = re.compile(r"\bexport\s+default\b")
# What the prelude's __failureKind says when QuickJS itself threw at its memory or stack limit.
_ENGINE_LIMITS = frozenset({"memory", "stack"})
# A run that fails with less than this left under its memory limit ran out of memory. QuickJS
# throws `null` when even the error object does not fit (a few hundred bytes left); the margin
# leaves room for what the prelude's handler allocates before the engine looks.
_MEMORY_FULL_MARGIN = 64 * KIB


@dataclass
class Execution:
    """What an agent run produced, with what it cost."""

    status: Status
    output: bytes
    logs: list[str] = field(default_factory=list)
    error: str | None = None
    elapsed_ms: float = 0.0
    memory_bytes: int = 0
    http_calls: int = 0
    # Provenance: every agent this run called, with its code hash, depth and outcome.
    calls: list[dict[str, Any]] = field(default_factory=list)
    # The limits the run had (reported with the result).
    limits: dict[str, int] = field(default_factory=dict)
    # Set when the host failed under the run (the chain could not be asked for another agent):
    # the outcome is not the agent's, so it must not be signed; the status is a placeholder.
    host_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.name,
            "output": to_hex(self.output),
            "logs": self.logs,
            "error": self.error,
            "stats": {
                "elapsed_ms": round(self.elapsed_ms, 3),
                "memory_bytes": self.memory_bytes,
                "http_calls": self.http_calls,
            },
            "calls": self.calls,
            "hostError": self.host_error,
        }

    @classmethod
    def failed(cls, status: Status, message: str, **extra: Any) -> Execution:
        first_line = message.strip().splitlines()[0] if message.strip() else status.name
        onchain = first_line.encode("utf-8")[:ONCHAIN_ERROR_BYTES]
        return cls(status=status, output=onchain, error=message, **extra)

    def with_host_error(self, host_error: str) -> Execution:
        """This run, marked as one the host failed under: whatever the agent made of it.

        The status becomes AGENT_ERROR with the host's message, so that a reader who forgets to
        check `host_error` does not take the agent's output (built on a failed lookup) as an
        answer; logs and stats are kept for the developer.
        """
        return self.as_failure(f"host error (not the agent's): {host_error}", host_error=host_error)

    def as_failure(self, message: str, host_error: str | None = None) -> Execution:
        """This run as AGENT_ERROR with `message`, its logs and figures kept."""
        return Execution.failed(
            Status.AGENT_ERROR,
            message,
            logs=self.logs,
            elapsed_ms=self.elapsed_ms,
            memory_bytes=self.memory_bytes,
            http_calls=self.http_calls,
            calls=self.calls,
            limits=self.limits,
            host_error=host_error,
        )


def expose_default_export(code: str) -> str:
    """Rewrites `export default` so the prelude can find the agent's main.

    The binding's `Context.module` has no module loader, so nothing can import the agent. A
    default function declaration keeps its name in module scope; any other default export becomes
    an assignment. Lines keep their numbers, so JS stack traces point at the agent's own lines.
    """
    declaration = _DEFAULT_FUNCTION.search(code)
    if declaration:
        code = code[: declaration.start()] + declaration.group(1) + code[declaration.end() :]
        return code + f"\nglobalThis.__agentMain = {declaration.group(2)};\n"
    return _DEFAULT_EXPRESSION.sub("globalThis.__agentMain =", code, count=1)


_OTHER_EXPORTS = re.compile(r"\bexport\s+(?=(?:async\s+)?(?:const|let|var|function|class)\b)")
_SOURCE_LINE = re.compile(r"<input>:(\d+)")
# QuickJS numbers the lines of an AsyncFunction's body after its two-line header.
_ASYNC_FUNCTION_HEADER_LINES = 2


def syntax_error(code: str) -> str | None:
    """Why QuickJS cannot compile an agent, or None. The code is compiled as an async
    function's body (so a top-level `await` is fine) and never run: a check for deploy time."""
    if not _DEFAULT_EXPRESSION.search(code):
        return "it has no default export (export default async function main(input, ctx) { ... })"
    body = _OTHER_EXPORTS.sub("", expose_default_export(code))
    context = quickjs.Context()
    context.set_memory_limit(64 * 1024 * 1024)
    try:
        context.eval("globalThis.AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;")
        compile_ = context.eval("(source) => { new AsyncFunction(source); return true; }")
        compile_(body)
    except quickjs.JSException as err:
        first = str(err).strip().splitlines()[0]
        lines = [int(n) - _ASYNC_FUNCTION_HEADER_LINES for n in _SOURCE_LINE.findall(str(err))]
        if not lines or lines[0] <= 0:
            return first
        # Past the last line: the file ended in the middle of something (an unclosed brace).
        return (
            f"{first} ({'line ' + str(lines[0]) if lines[0] <= len(code.splitlines()) else 'at the end of the file'})"
        )
    return None


def with_output_types(execution: Execution, manifest: Manifest) -> Execution:
    """An OK run whose output does not decode as the types its manifest declares is the agent's
    error, signed as such: a consumer that `abi.decode`s it would revert in its callback."""
    if not manifest.output or execution.status != Status.OK:
        return execution
    if decode_output(manifest, execution.output) is not None:
        return execution
    shape = ", ".join(manifest.output)
    return execution.as_failure(
        f"the output ({len(execution.output)} bytes) does not decode as ({shape}), as the manifest declares"
    )


class Warm:
    """A fresh QuickJS context with the prelude loaded, made before there is a job for it: a
    sandbox process makes the next one while it waits, which takes the context's creation and
    the prelude's compilation (half a small agent's run) off the request's path. It serves one
    run only and holds nothing of any job until that run: the prelude asks for the job's
    secrets and request when the run starts, through the host the run hands it."""

    def __init__(self) -> None:
        self._host: HostApi | None = None
        self.context = quickjs.Context()
        self.context.add_callable("__host", self._dispatch)
        self.context.eval(PRELUDE)

    def _dispatch(self, name: str, args: str) -> str:
        if self._host is None:
            raise RuntimeError("the prelude called the host before its run")
        return self._host.dispatch(name, args)

    def take(self, host: HostApi) -> quickjs.Context:
        if self._host is not None:
            raise RuntimeError("a warm context serves one run only")
        self._host = host
        return self.context


def execute(
    code: str, input_: bytes, limits: Limits, host: HostApi | None = None, warm: Warm | None = None
) -> Execution:
    """Runs `main(input, ctx)` of an agent to completion (or to a limit), in `warm`'s context if
    given (then spent), else in a new one."""
    host = host or HostApi(limits=limits)
    try:
        execution = _execute(code, input_, limits, host, warm)
    finally:
        host.close()
    execution.http_calls = host.http_calls
    if not host.call_stack:  # the root run reports every agent called below it
        execution.calls = list(host.calls)
    if host.host_error is not None:  # also when the agent caught the error and went on
        return execution.with_host_error(host.host_error)
    return execution


def _execute(code: str, input_: bytes, limits: Limits, host: HostApi, warm: Warm | None) -> Execution:
    started = time.perf_counter()
    if len(input_) > limits.input_bytes:
        return Execution.failed(
            Status.BAD_INPUT, f"input of {len(input_)} bytes exceeds the {limits.input_bytes}-byte limit"
        )

    # A run outside a sandbox process (another agent's, called by this one) makes its own.
    context = (warm or Warm()).take(host)
    context.set_memory_limit(limits.memory_bytes)
    context.set_max_stack_size(limits.stack_bytes)
    try:
        context.module(expose_default_export(code))
        context.eval(f'__run("0x{input_.hex()}")')
        while not context.get("__settled") and context.execute_pending_job():
            pass
        settled, failure, output = context.get("__settled"), context.get("__failure"), context.get("__output")
        memory = int(context.memory().get("memory_used_size", 0))
    except quickjs.JSException as err:
        # Out of the module's top level, __run or a pending job: the error is text here, and the
        # prelude classified the object while the binding turned it into that text.
        return _failed(str(err), context, limits, host, started)

    elapsed = (time.perf_counter() - started) * 1000
    if not settled:
        return _failed("main() never settled: it awaits a promise nothing resolves", context, limits, host, started)
    if failure is not None:
        return _failed(str(failure), context, limits, host, started)
    try:
        data = bytes.fromhex(str(output)[2:])
    except ValueError:
        # The prelude turns the output into hex; an agent that replaced the built-ins it uses can
        # hand over something else: its own failure, never the sandbox's.
        return Execution.failed(
            Status.AGENT_ERROR, "the agent's output is not bytes: it changed the built-ins that encode it",
            logs=host.logs, elapsed_ms=elapsed, memory_bytes=memory,
        )  # fmt: skip
    if len(data) > limits.output_bytes:
        return Execution.failed(
            Status.RESOURCE_LIMIT,
            f"output of {len(data)} bytes exceeds the {limits.output_bytes}-byte limit",
            logs=host.logs,
            elapsed_ms=elapsed,
            memory_bytes=memory,
        )
    return Execution(Status.OK, data, logs=host.logs, elapsed_ms=elapsed, memory_bytes=memory)


def _failed(message: str, context: quickjs.Context, limits: Limits, host: HostApi, started: float) -> Execution:
    """A failed run, with its status from the engine's and the host's records (module docstring)."""
    elapsed = (time.perf_counter() - started) * 1000
    usage = context.memory()
    # QuickJS compares `malloc_size` with the limit; `memory_used_size` is what runs report.
    memory_full = int(usage.get("malloc_size", 0)) >= limits.memory_bytes - _MEMORY_FULL_MARGIN
    if context.get("__failureKind") in _ENGINE_LIMITS or host.limit_reached is not None:
        status = Status.RESOURCE_LIMIT
    elif memory_full:
        status = Status.RESOURCE_LIMIT
        # What the agent threw (often `null`, see above) does not say why the run ended: this does.
        message = f"out of memory: the run failed at its memory limit of {limits.memory_bytes} bytes\n{message}"
    else:
        status = Status.AGENT_ERROR
    memory = int(usage.get("memory_used_size", 0))
    return Execution.failed(status, message, logs=host.logs, elapsed_ms=elapsed, memory_bytes=memory)
