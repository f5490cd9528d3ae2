"""Finding and guarding a stack: one per state folder, ports that are taken, `enclave env`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from enclave.errors import StackError
from enclave.locations import default_state_dir
from enclave.stack import GATEKEEPER_KEYS, TRANSMITTER_KEY, Stack
from tests.state import fresh_state_dir

ENCLAVE = str(Path(sys.executable).parent / "enclave")


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


def _enclave(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ENCLAVE, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )


def test_the_state_folder_is_found_without_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ENCLAVE_STATE_DIR", str(tmp_path / "mine"))
    assert default_state_dir() == tmp_path / "mine"
    monkeypatch.delenv("ENCLAVE_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_state_dir() == tmp_path / "xdg" / "enclave"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_state_dir() == Path.home() / ".local" / "state" / "enclave"


@pytest.mark.chain
def test_one_stack_per_folder_and_env_describes_it(taken_port: int) -> None:
    state = fresh_state_dir("stack-guards")
    with Stack(state_dir=state, workers=1, web_port=None, rpc_port=taken_port) as first:
        assert first.rpc_url is not None
        assert not first.rpc_url.endswith(f":{taken_port}")
        assert f"port {taken_port} is taken: the chain listens on" in " ".join(first.notices)
        deployed = (state / "deployment.json").read_text()

        with pytest.raises(StackError, match=f"already running in {state} \\(pid {os.getpid()}\\)"):
            Stack(state_dir=state, workers=1, web_port=None).start()
        refused = _enclave("up", "--state-dir", str(state), "--no-web")
        assert refused.returncode == 1
        assert f"error: a stack is already running in {state} (pid {os.getpid()})" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert (state / "deployment.json").read_text() == deployed, "the running stack's state is untouched"
        assert not list(state.parent.glob(f"{state.name}.old-*")), "nothing was moved aside"
        assert first.services["bridge"].process.poll() is None

        described = _enclave("env", "--json", env={"ENCLAVE_STATE_DIR": str(state)})
        assert described.returncode == 0, described.stderr
        env = json.loads(described.stdout)
        assert env["rpcUrl"] == first.rpc_url
        assert env["chainId"] == 31337
        assert env["contracts"]["AgentRouter"] == first.deployment.addresses["AgentRouter"]  # type: ignore[union-attr]
        busy = {Account.from_key(key).address for key in (TRANSMITTER_KEY, *GATEKEEPER_KEYS)}
        assert env["freeDevKeys"]
        assert not {k["address"] for k in env["freeDevKeys"]} & busy, "no key a service sends from"
        exports = _enclave("env", env={"ENCLAVE_STATE_DIR": str(state)}).stdout
        assert f"export ENCLAVE_RPC_URL={first.rpc_url}" in exports
        assert "export ENCLAVE_AGENT_ROUTER=0x" in exports

    # Stopped: the folder is free again, and `env` says there is nothing running.
    stopped = _enclave("env", env={"ENCLAVE_STATE_DIR": str(state)})
    assert stopped.returncode == 1
    assert "is not running" in stopped.stderr
    again = Stack(state_dir=state)
    again._take_lock()
    again.stop()


@pytest.mark.chain
def test_a_taken_dashboard_port_stops_up_before_anything_starts(taken_port: int) -> None:
    state = fresh_state_dir("stack-guards-port")
    refused = _enclave("up", "--state-dir", str(state), "--web-port", str(taken_port))
    assert refused.returncode == 1
    assert f"error: port {taken_port} is taken, so the dashboard cannot listen there" in refused.stderr
    assert not (state / "deployment.json").exists(), "no chain was started or deployed to"
    assert _enclave("env", "--state-dir", str(state)).returncode == 1


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (("--chains", "3"), "--chains is 1 to 2 on a local stack"),
        (("--chains", "2", "--rpc-url", "http://127.0.0.1:9"), "several chains are anvils of the stack's own"),
    ],
)
def test_chains_the_stack_cannot_serve_are_refused_before_anything_starts(flags: tuple[str, ...], says: str) -> None:
    state = fresh_state_dir("stack-guards-chains")
    refused = _enclave("up", "--state-dir", str(state), "--no-web", *flags)
    assert refused.returncode == 1
    assert f"error: {says}" in refused.stderr
    assert not state.exists() or not any(state.iterdir()), "nothing was started"


STARTER = """
import json, sys, time
from pathlib import Path
from enclave.stack import Stack
stack = Stack(state_dir=Path(sys.argv[1]), workers=1, web_port=None).start()
pids = [s.process.pid for s in stack.services.values()] + [stack.anvil.pid]
print(json.dumps(pids), flush=True)
time.sleep(600)
"""


def _sandboxes_of(parent: int) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"coprocessor.runtime.child" in cmdline and str(parent).encode() in cmdline:
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.chain
def test_a_killed_starter_takes_its_stack_with_it() -> None:
    """SIGKILL gives `enclave up` no chance to stop anything: the kernel does it."""
    state = fresh_state_dir("stack-guards-kill")
    with subprocess.Popen([sys.executable, "-c", STARTER, str(state)], stdout=subprocess.PIPE, text=True) as starter:
        assert starter.stdout is not None
        services = json.loads(starter.stdout.readline())
        assert len(services) == 4, "gatekeeper, worker, bridge and anvil"
        # The worker's sandbox processes: they die with the worker, which dies with the starter.
        sandboxes = [pid for service in services for pid in _sandboxes_of(service)]
        assert sandboxes, "the worker has its pool of sandbox processes"
        pids = services + sandboxes
        assert all(_alive(pid) for pid in pids)
        starter.kill()
        starter.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"outlived their starter: {[p for p in pids if _alive(p)]}"
        time.sleep(0.1)
