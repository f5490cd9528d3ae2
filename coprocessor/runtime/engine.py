"""One agent run in QuickJS, inside the sandbox's child process.

Nothing here enforces wall time: QuickJS refuses host calls while its own time limit is set, so
the parent process kills the child at the deadline instead (see `sandbox.py`). Memory and stack
are limited by QuickJS itself; output and input sizes here.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import quickjs

from coprocessor.runtime.host import HostApi
from coprocessor.runtime.limits import Limits
from coprocessor.status import Status

PRELUDE = (Path(__file__).parent / "prelude.js").read_text()

# The message that goes on-chain with an error status is its first line, this long at most;
# the full message with the JS stack goes back to the bridge and the developer.
ONCHAIN_ERROR_BYTES = 256

_DEFAULT_FUNCTION = re.compile(r"\bexport\s+default\s+((?:async\s+)?function\s*\*?\s*([A-Za-z_$][\w$]*))")
_DEFAULT_EXPRESSION = re.compile(r"\bexport\s+default\b")
_RESOURCE_ERRORS = ("out of memory", "stack overflow", "Maximum call stack", "HTTP call limit", "call depth limit")


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.name,
            "output": "0x" + self.output.hex(),
            "logs": self.logs,
            "error": self.error,
            "stats": {
                "elapsed_ms": round(self.elapsed_ms, 3),
                "memory_bytes": self.memory_bytes,
                "http_calls": self.http_calls,
            },
            "calls": self.calls,
        }

    @classmethod
    def failed(cls, status: Status, message: str, **extra: Any) -> Execution:
        first_line = message.strip().splitlines()[0] if message.strip() else status.name
        onchain = first_line.encode("utf-8")[:ONCHAIN_ERROR_BYTES]
        return cls(status=status, output=onchain, error=message, **extra)


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


def execute(code: str, input_: bytes, limits: Limits, host: HostApi | None = None) -> Execution:
    """Runs `main(input, ctx)` of an agent to completion (or to a limit)."""
    host = host or HostApi(limits=limits)
    try:
        execution = _execute(code, input_, limits, host)
    finally:
        host.close()
    execution.http_calls = host.http_calls
    if not host.call_stack:  # the root run reports every agent called below it
        execution.calls = list(host.calls)
    return execution


def _execute(code: str, input_: bytes, limits: Limits, host: HostApi) -> Execution:
    started = time.perf_counter()
    if len(input_) > limits.input_bytes:
        return Execution.failed(
            Status.BAD_INPUT, f"input of {len(input_)} bytes exceeds the {limits.input_bytes}-byte limit"
        )

    context = quickjs.Context()
    context.set_memory_limit(limits.memory_bytes)
    context.set_max_stack_size(limits.stack_bytes)
    context.add_callable("__host", host.dispatch)
    try:
        context.eval(PRELUDE)
        context.module(expose_default_export(code))
        context.eval(f'__run("0x{input_.hex()}")')
        while not context.get("__settled") and context.execute_pending_job():
            pass
        settled, failure, output = context.get("__settled"), context.get("__failure"), context.get("__output")
        memory = int(context.memory().get("memory_used_size", 0))
    except quickjs.JSException as err:
        return _classified(str(err), host, started)

    elapsed = (time.perf_counter() - started) * 1000
    if not settled:
        return Execution.failed(
            Status.AGENT_ERROR, "main() never settled: it awaits a promise nothing resolves", logs=host.logs
        )
    if failure is not None:
        return _classified(str(failure), host, started)
    data = bytes.fromhex(str(output)[2:])
    if len(data) > limits.output_bytes:
        return Execution.failed(
            Status.RESOURCE_LIMIT,
            f"output of {len(data)} bytes exceeds the {limits.output_bytes}-byte limit",
            logs=host.logs,
            elapsed_ms=elapsed,
            memory_bytes=memory,
        )
    return Execution(Status.OK, data, logs=host.logs, elapsed_ms=elapsed, memory_bytes=memory)


def _classified(message: str, host: HostApi, started: float) -> Execution:
    status = Status.RESOURCE_LIMIT if any(s in message for s in _RESOURCE_ERRORS) else Status.AGENT_ERROR
    elapsed = (time.perf_counter() - started) * 1000
    return Execution.failed(status, message, logs=host.logs, elapsed_ms=elapsed)
