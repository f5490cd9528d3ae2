"""No sandbox process outlives the process that started it, however that process ends: a
normal exit with a run still going, a SIGKILL mid-run, and the `enclave agent simulate` command
timing out on an agent that never returns (counted in /proc, by the parent each names)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SPIN = "export default async () => { while (true) {} };"

# Starts a sandbox, runs a spinning agent on a background thread, says so, then ends as asked.
HOLDER = """
import sys, threading, time
from coprocessor.runtime import Sandbox
from protocol.limits import Limits
sandbox = Sandbox(size=2)
limits = Limits(wall_time_ms=600_000)
threading.Thread(target=sandbox.execute, args=({code!r}, b"", limits), daemon=True).start()
time.sleep(1.5)
print("running", flush=True)
if sys.argv[1] == "exit":
    sys.exit(0)
time.sleep(600)
"""


def _children_of(parent: int) -> list[int]:
    """Sandbox processes that name `parent` as theirs, alive (zombies excluded)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"coprocessor.runtime.child" in cmdline and str(parent).encode() in cmdline and state != "Z":
            found.append(int(entry))
    return found


def _gone(parent: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while _children_of(parent):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.parametrize("ending", ["exit", "sigkill"])
def test_sandbox_processes_die_with_their_parent(ending: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER.format(code=SPIN), ending], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "running"
        assert len(_children_of(holder.pid)) == 2, "the pool's two processes, one spinning"
        if ending == "sigkill":
            holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        assert _gone(holder.pid), f"sandbox processes outlived their parent: {_children_of(holder.pid)}"
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_simulate_of_an_agent_that_never_returns_leaves_nothing_running(tmp_path: Path) -> None:
    agent = tmp_path / "spin.js"
    agent.write_text('// @enclave {"limits": {"wallTimeMs": 500}}\n' + SPIN)
    enclave = Path(sys.executable).parent / "enclave"
    simulate = subprocess.Popen(
        [str(enclave), "agent", "simulate", str(agent)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output, _ = simulate.communicate(timeout=60)
    assert "TIMEOUT" in output
    assert _gone(simulate.pid, timeout=5), "a sandbox process of the finished command is still running"
    # Piped, as `enclave agent simulate spin.js | tail` would be: the pipe closes with the command.
    piped = subprocess.run(
        ["bash", "-c", f"{enclave} agent simulate {agent} | tail -n 3"],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "status  TIMEOUT" in piped.stdout
