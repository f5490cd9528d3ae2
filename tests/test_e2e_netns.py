"""A worker on another host, as far as the network goes: inside a network namespace of its own,
joined to this one by a veth pair that the test makes. The chain, the gatekeeper and the bridge
listen on this side's end of the pair; the worker on the other end. It is attested and given
its keys by the gatekeeper across the link, and the bridge dispatches to it there: a request is
answered on-chain. Nothing of the stack listens on loopback for it to lean on.

Making a namespace needs root (CAP_NET_ADMIN) and iproute2; where the machine cannot, the test
is skipped and says why, unless ENCLAVE_REQUIRE_NETNS is set (CI sets it), which fails it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from enclave.stack import Stack
from enclave.usage import register, request_ids, send_asks, wait_for
from protocol.status import Status
from tests.state import fresh_state_dir

pytestmark = pytest.mark.chain

ECHO = "export default async (input) => input.bytes;"


@dataclass(frozen=True)
class Namespace:
    name: str
    host_address: str  # this side's end of the veth pair
    address: str  # the namespace's end


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)  # noqa: S607


def _cannot_make_namespaces() -> str | None:
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    if os.geteuid() != 0:
        return "making a network namespace needs root (CAP_NET_ADMIN)"
    probe = f"encl-probe-{os.getpid()}"
    made = _ip("netns", "add", probe)
    if made.returncode != 0:
        return f"this machine cannot make a network namespace: {made.stderr.strip()}"
    _ip("netns", "delete", probe)
    return None


@pytest.fixture(scope="module")
def namespace() -> Iterator[Namespace]:
    reason = _cannot_make_namespaces()
    if reason:
        if os.environ.get("ENCLAVE_REQUIRE_NETNS"):
            pytest.fail(f"ENCLAVE_REQUIRE_NETNS is set, but {reason}")
        pytest.skip(reason)
    tag = os.getpid() % 100_000
    name, outside, inside = f"encl-{tag}", f"ev{tag}h", f"ev{tag}n"
    subnet = 10 + tag % 200
    ns = Namespace(name=name, host_address=f"10.231.{subnet}.1", address=f"10.231.{subnet}.2")
    steps = [
        ("netns", "add", name),
        ("link", "add", outside, "type", "veth", "peer", "name", inside),
        ("link", "set", inside, "netns", name),
        ("addr", "add", f"{ns.host_address}/30", "dev", outside),
        ("link", "set", outside, "up"),
        ("-n", name, "addr", "add", f"{ns.address}/30", "dev", inside),
        ("-n", name, "link", "set", inside, "up"),
        ("-n", name, "link", "set", "lo", "up"),
    ]
    try:
        for step in steps:
            done = _ip(*step)
            assert done.returncode == 0, f"ip {' '.join(step)}: {done.stderr}"
        yield ns
    finally:
        # Deleting the namespace deletes its end of the pair, and with it this end.
        _ip("netns", "delete", name)
        _ip("link", "delete", outside)


@pytest.fixture(scope="module")
def stack(namespace: Namespace) -> Iterator[Stack]:
    with Stack(
        state_dir=fresh_state_dir("e2e-netns"),
        workers=1,
        web_port=None,
        listen_host=namespace.host_address,
        worker_namespaces={1: (namespace.name, namespace.address)},
    ) as s:
        yield s


def _same_namespace(first: str, second: str) -> bool:
    return os.stat(first).st_ino == os.stat(second).st_ino


def test_a_worker_in_its_own_namespace_is_provisioned_and_answers_across_the_link(
    stack: Stack, namespace: Namespace
) -> None:
    worker = stack.services["worker-1"]
    assert worker.url.startswith(f"http://{namespace.address}:")
    assert _same_namespace(f"/proc/{worker.process.pid}/ns/net", f"/run/netns/{namespace.name}")
    assert not _same_namespace(f"/proc/{worker.process.pid}/ns/net", "/proc/self/ns/net")
    for name in ("gatekeeper", "bridge"):
        assert stack.services[name].url.startswith(f"http://{namespace.host_address}:")

    agent = register(stack, ECHO)
    ids = request_ids(stack, send_asks(stack, agent, [b"across %d" % i for i in range(3)]))
    answers = wait_for(stack, ids, timeout=120)
    assert [answers[i] for i in ids] == [(Status.OK, b"across %d" % i) for i in range(3)]
    workers = httpx.get(f"{stack.url('bridge')}/v1/status", timeout=10).json()["workers"]
    assert list(workers) == [worker.url]
    assert workers[worker.url]["up"]


def test_the_namespace_reaches_nothing_of_this_side_on_loopback(stack: Stack, namespace: Namespace) -> None:
    """The worker's own loopback is its namespace's: the chain's port there answers nothing, so
    whatever it did, it did across the link."""
    assert stack.rpc_url is not None
    port = stack.rpc_url.rsplit(":", 1)[1]
    probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3)"
    done = _ip("netns", "exec", namespace.name, sys.executable, "-c", probe)
    assert done.returncode != 0, "the chain is not on the namespace's loopback"
    assert "ConnectionRefusedError" in done.stderr
