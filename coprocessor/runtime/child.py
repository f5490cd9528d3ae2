"""The sandbox child process: reads jobs on stdin, runs each agent, writes the result on stdout."""

from __future__ import annotations

import sys
from typing import Any

from coprocessor.runtime.context import RunContext
from coprocessor.runtime.engine import execute
from coprocessor.runtime.host import HostApi
from coprocessor.runtime.sandbox import execution_to_wire, read_message, write_message
from protocol.limits import Limits


def main() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # An agent cannot print (QuickJS has no console here), but keep stray writes off the pipe.
    sys.stdout = sys.stderr
    write_message(stdout, {"ready": True})
    while (job := read_message(stdin)) is not None:
        limits = Limits.from_dict(job["limits"])

        def resolve(agent_id: int) -> dict[str, Any]:
            """Asks the worker, across the pipe, for another agent's code and context."""
            write_message(stdout, {"resolve": agent_id})
            return read_message(stdin) or {"error": "the worker closed the pipe"}

        host = HostApi(limits=limits, context=RunContext.from_wire(job.get("context")), resolver=resolve)
        execution = execute(job["code"], bytes.fromhex(job["input"]), limits, host)
        write_message(stdout, execution_to_wire(execution))


if __name__ == "__main__":
    main()
