"""The sandbox: agent runs in pooled child processes, killed at their wall-time deadline.

QuickJS cannot enforce a time limit while host functions are callable, and a crash in its C code
would take the worker down, so each run happens in a child process that the parent kills at
the deadline and replaces. Children are started ahead of time (a start costs ~0.3 s; a run of
a small agent ~1 ms) and speak length-prefixed JSON over their stdin and stdout.

An `Execution` comes back as JSON (`execution_to_wire`), every field that the worker reads
included: `host_error` above all, since it decides whether the result may be signed. The
parent also answers the child's `ctx.callAgent` lookups, so it sees a resolver's `hostError`
itself and marks the run with it even when the child cannot report it (a run that then ran
into its deadline, or a child that died).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import select
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import IO, Any

from coprocessor.runtime.context import RunContext
from coprocessor.runtime.engine import Execution
from coprocessor.runtime.host import Resolver
from protocol.limits import Limits
from protocol.status import Status

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">I")


def write_message(stream: IO[bytes], message: dict[str, Any]) -> None:
    """Frames a JSON message with its length: the pipe protocol between parent and child."""
    body = json.dumps(message).encode()
    stream.write(_HEADER.pack(len(body)) + body)
    stream.flush()


def read_message(stream: IO[bytes]) -> dict[str, Any] | None:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (length,) = _HEADER.unpack(header)
    message: dict[str, Any] = json.loads(stream.read(length))
    return message


def execution_to_wire(execution: Execution) -> dict[str, Any]:
    return {
        "status": int(execution.status),
        "output": execution.output.hex(),
        "logs": execution.logs,
        "error": execution.error,
        "elapsed_ms": execution.elapsed_ms,
        "memory_bytes": execution.memory_bytes,
        "http_calls": execution.http_calls,
        "calls": execution.calls,
        "host_error": execution.host_error,
    }


def execution_from_wire(data: dict[str, Any]) -> Execution:
    return Execution(
        status=Status(data["status"]),
        output=bytes.fromhex(data["output"]),
        logs=list(data["logs"]),
        error=data["error"],
        elapsed_ms=float(data["elapsed_ms"]),
        memory_bytes=int(data["memory_bytes"]),
        http_calls=int(data.get("http_calls", 0)),
        calls=list(data.get("calls", [])),
        host_error=None if data.get("host_error") is None else str(data["host_error"]),
    )


def _resolve(resolver: Resolver | None, agent_id: int) -> dict[str, Any]:
    """The answer to a child's lookup; a resolver that raises failed as the host, not the agent."""
    if resolver is None:
        return {"error": "no resolver in this sandbox"}
    try:
        return resolver(agent_id)
    except Exception as err:  # noqa: BLE001 - and the child, waiting for an answer, must get one
        return {"hostError": f"the resolver failed: {err.__class__.__name__}: {err}"}


# How long a new child may take to import the runtime before it counts as broken.
_START_TIMEOUT_S = 30.0


def child_environment() -> dict[str, str]:
    """What an agent's process inherits: the service's environment minus its settings, which
    hold credentials (the execute token, keys) that agent code has no business near."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    return env | {"PYTHONUNBUFFERED": "1"}


@dataclass
class _Child:
    process: subprocess.Popen[bytes]
    ready: bool = False

    @classmethod
    def start(cls) -> _Child:
        """A new child, started from the spawner's thread (see `_Spawner`)."""
        return _spawner().start()

    @classmethod
    def _popen(cls) -> _Child:
        process = subprocess.Popen(  # noqa: S603 - this Python running our own module, no shell
            # The parent's pid: the child checks that it is still its parent once it has asked to
            # die with it, and it names the child's parent in a process listing.
            [sys.executable, "-m", "coprocessor.runtime.child", "--parent", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=child_environment(),
        )
        return cls(process=process)

    def send(self, message: dict[str, Any]) -> None:
        if self.process.stdin is None:  # Popen with stdin=PIPE always makes one
            raise OSError("the sandbox process has no stdin")
        if not self.ready:
            # The start-up handshake: imports are not the agent's wall time.
            if self.receive(_START_TIMEOUT_S) is None:
                raise EOFError("the sandbox process did not start")
            self.ready = True
        write_message(self.process.stdin, message)

    def answer(self, message: dict[str, Any]) -> None:
        if self.process.stdin is None:
            raise OSError("the sandbox process has no stdin")
        write_message(self.process.stdin, message)

    def receive(self, timeout: float) -> dict[str, Any] | None:
        """The child's reply, or None when it did not start one within `timeout` seconds."""
        if self.process.stdout is None:
            raise OSError("the sandbox process has no stdout")
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            return None
        reply = read_message(self.process.stdout)
        if reply is None:
            raise EOFError("the sandbox process closed its pipe")
        return reply

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=5)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


class _Spawner:
    """Starts every sandbox process of this process from one thread that lives as long as the
    process does.

    A child asks the kernel to kill it when its parent dies (`PR_SET_PDEATHSIG`), so that no
    agent keeps running, a CPU spinning, after the worker or the `enclave` command that started
    it ended, however it ended (an exit, a timeout, SIGKILL). Linux ties that signal to the
    thread that forked the child, not the process: a child started from a short-lived thread
    would be killed when that thread ends.
    """

    def __init__(self) -> None:
        self._jobs: queue.Queue[Future[_Child]] = queue.Queue()
        threading.Thread(target=self._run, name="sandbox-spawner", daemon=True).start()

    def start(self) -> _Child:
        job: Future[_Child] = Future()
        self._jobs.put(job)
        return job.result()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job.set_result(_Child._popen())
            except BaseException as err:  # noqa: BLE001 - handed to the caller, who raises it
                job.set_exception(err)


_SPAWNER: _Spawner | None = None
_SPAWNER_LOCK = threading.Lock()


def _spawner() -> _Spawner:
    global _SPAWNER
    with _SPAWNER_LOCK:
        if _SPAWNER is None:
            _SPAWNER = _Spawner()
        return _SPAWNER


class Sandbox:
    """A pool of sandbox processes; `execute` is safe to call from many threads."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._idle: queue.Queue[_Child] = queue.Queue()
        self._closed = False
        self.restarts = 0
        for _ in range(size):
            self._idle.put(_Child.start())

    def execute(
        self,
        code: str,
        input_: bytes,
        limits: Limits,
        context: RunContext | None = None,
        resolver: Resolver | None = None,
    ) -> Execution:
        """Runs an agent; a run past its wall time ends as TIMEOUT and never blocks the pool.

        `resolver` answers the child's questions for `ctx.callAgent` (another agent's code).
        """
        child = self._idle.get()
        # The first hostError a resolver answered during this run (see the module docstring).
        host_error: str | None = None
        try:
            job = {"code": code, "input": input_.hex(), "limits": limits.as_dict()}
            if context is not None:
                job["context"] = context.to_wire()
            child.send(job)
            # The clock starts once the job is with the child: a fresh child's start-up is not
            # the agent's wall time.
            started = time.perf_counter()
            deadline = time.monotonic() + limits.wall_time_ms / 1000
            # The child's own bookkeeping (a fresh context, the reply) is small; the budget is
            # the agent's wall time.
            while (reply := child.receive(max(0.0, deadline - time.monotonic()))) is not None:
                if "resolve" not in reply:
                    self._idle.put(child)
                    execution = execution_from_wire(reply)
                    if host_error is not None and execution.host_error is None:
                        execution = execution.with_host_error(host_error)
                    return execution
                answer = _resolve(resolver, int(reply["resolve"]))
                if "hostError" in answer and host_error is None:
                    host_error = str(answer["hostError"])
                child.answer(answer)
            elapsed = (time.perf_counter() - started) * 1000
            self._replace(child)
            timeout = Execution.failed(
                Status.TIMEOUT, f"wall time of {limits.wall_time_ms} ms exceeded", elapsed_ms=elapsed
            )
            return timeout if host_error is None else timeout.with_host_error(host_error)
        except (EOFError, OSError) as err:
            log.warning("sandbox process died: %s", err)
            self._replace(child)
            died = Execution.failed(Status.RESOURCE_LIMIT, "the sandbox process died during the run")
            return died if host_error is None else died.with_host_error(host_error)

    def _replace(self, child: _Child) -> None:
        """Kills a child and starts its successor in the background."""
        self.restarts += 1

        def restart() -> None:
            child.kill()
            if not self._closed:
                self._idle.put(_Child.start())

        threading.Thread(target=restart, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().kill()
            except queue.Empty:
                return

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
