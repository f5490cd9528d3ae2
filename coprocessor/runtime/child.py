"""The sandbox child process: reads jobs on stdin, runs each agent, writes the result on stdout."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Any

from coprocessor.runtime.context import RunContext
from coprocessor.runtime.engine import Warm, execute
from coprocessor.runtime.host import HostApi
from coprocessor.runtime.sandbox import execution_to_wire, read_message, write_message
from protocol.keccak import keccak256
from protocol.limits import Limits

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Asks the kernel for SIGKILL when the process that started this one dies, so that an agent
    never outlives its worker; exits at once if that already happened."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:
        os._exit(1)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--parent":
        die_with_parent(int(sys.argv[2]))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # An agent cannot print (QuickJS has no console here), but keep stray writes off the pipe.
    sys.stdout = sys.stderr
    keccak256(b"")  # its first use loads the C library's bindings: not on the first run's way
    write_message(stdout, {"ready": True})
    # The next run's context is made while this process waits for its job (engine.Warm).
    warm = Warm()
    while (job := read_message(stdin)) is not None:
        limits = Limits.from_dict(job["limits"])

        def resolve(agent_id: int) -> dict[str, Any]:
            """Asks the worker, across the pipe, for another agent's code and context."""
            write_message(stdout, {"resolve": agent_id})
            return read_message(stdin) or {"error": "the worker closed the pipe"}

        host = HostApi(limits=limits, context=RunContext.from_wire(job.get("context")), resolver=resolve)
        execution = execute(job["code"], bytes.fromhex(job["input"]), limits, host, warm)
        write_message(stdout, execution_to_wire(execution))
        warm = Warm()


if __name__ == "__main__":
    main()
