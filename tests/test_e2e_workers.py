"""End to end: a worker dies while requests flow; a worker with unknown code gets no key."""

from __future__ import annotations

import re
import secrets
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from bridge.worker_client import WorkerClient
from bridge.worker_stream import StreamConnections
from coprocessor.tee.simulated import code_measurement
from enclave.anvil import free_port
from enclave.keys import rotate
from enclave.stack import DEPLOYER_KEY, TRANSMITTER_KEY, Stack
from enclave.usage import ask_many, register, request_ids, send_asks, wait_for
from protocol.deployment import send
from protocol.results import NotProcessedReason, Status
from protocol.wire import CommitmentModel, ExecuteRequest
from tests.forging import submit_signed_by
from tests.samples import commitment

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(state_dir=tmp_path_factory.mktemp("stack"), workers=2) as running:
        yield running


def test_worker_with_unknown_measurement_gets_no_key_and_its_signatures_are_refused(stack: Stack) -> None:
    rogue = stack.start_worker("worker-rogue", measurement_salt="tampered", wait=False)
    deadline = time.monotonic() + 30
    refusal = ""
    while "not allowed" not in refusal:
        assert time.monotonic() < deadline, "the gatekeeper never answered the rogue worker"
        refusal = rogue.log_path.read_text()
        time.sleep(0.2)
    info = httpx.get(f"{rogue.url}/v1/info", timeout=5).json()
    assert info["ready"] is False
    assert info["signer"] is None
    assert info["measurement"] != "0x" + code_measurement().hex()
    assert httpx.get(f"{rogue.url}/healthz", timeout=5).status_code == 503
    assert httpx.post(f"{rogue.url}/v1/execute", json={}, timeout=5).status_code == 401
    authorized = {"Authorization": f"Bearer {stack.execute_token}"}
    assert (
        httpx.post(f"{rogue.url}/v1/sign-batch", json={"results": []}, headers=authorized, timeout=5).status_code == 503
    )

    # Whatever key such a worker signs with, the chain refuses the result.
    agent = register(stack, "export default async () => '0x01';")
    # The honest path kept out of the way before the request is made: it answers in milliseconds.
    stack.services["bridge"].stop(signal.SIGKILL)
    try:
        [request_id] = ask_many(stack, agent, [b"x"])
        reasons = submit_signed_by(stack, secrets.token_bytes(32), 1, request_id, b"forged", TRANSMITTER_KEY)
        assert reasons == [NotProcessedReason.INVALID_SIGNATURE]
        assert stack.deployment is not None
        router = stack.deployment.contract(stack.web3(), "AgentRouter")
        assert router.functions.isOpen(request_id).call()
    finally:
        stack.start_bridge()
    status, output = wait_for(stack, [request_id])[request_id]
    assert (status, output) == (Status.OK, b"\x01"), "the honest workers answer it"


def test_killed_worker_fails_over_to_the_other(stack: Stack) -> None:
    agent = register(stack, "export default async (input) => input.bytes;")
    payloads = [f"job-{i}".encode() for i in range(10)]
    first = ask_many(stack, agent, payloads[:3])
    wait_for(stack, first)
    second = send_asks(stack, agent, payloads[3:])
    stack.services["worker-1"].stop(signal.SIGKILL)
    killed_at = time.time()
    ids = first + request_ids(stack, second)

    outputs = wait_for(stack, ids)
    assert [outputs[i] for i in ids] == [(Status.OK, p) for p in payloads]
    with sqlite3.connect(stack.state_dir / "bridge.sqlite") as db:
        served_by = dict(db.execute("SELECT request_id, worker FROM requests").fetchall())
        executed_at = dict(
            db.execute("SELECT request_id, MAX(at) FROM transitions WHERE state = 'executed' GROUP BY request_id")
        )
    after_kill = [i for i in ids if executed_at[str(i)] > killed_at]
    assert after_kill, "some requests ran after the kill"
    assert {served_by[str(i)] for i in after_kill} == {"worker-2"}, "after the kill, only the survivor served"
    status = httpx.get(f"{stack.url('bridge')}/v1/status", timeout=5).json()
    assert status["counts"]["failed"] == 0
    assert status["counts"]["fulfilled"] >= len(ids), "the bridge counts every request it delivered"
    assert httpx.get(f"{stack.url('bridge')}/healthz", timeout=5).status_code == 200


def test_worker_whose_measurement_is_revoked_gets_no_key_for_the_next_epoch(stack: Stack) -> None:
    assert stack.deployment is not None
    w3 = stack.web3()
    registry = stack.deployment.contract(w3, "TeeRegistry")
    owner = Account.from_key(DEPLOYER_KEY)
    send(w3, owner, registry.functions.allowMeasurement(code_measurement("v2")))
    v2 = stack.start_worker("worker-v2", measurement_salt="v2")  # healthy: provisioned for epoch 1
    assert httpx.get(f"{v2.url}/v1/info", timeout=5).json()["epoch"] == 1

    send(w3, owner, registry.functions.revokeMeasurement(code_measurement("v2")))
    epoch = rotate(w3, stack.deployment, DEPLOYER_KEY)
    deadline = time.monotonic() + 30
    while httpx.get(f"{v2.url}/healthz", timeout=5).status_code != 503:
        assert time.monotonic() < deadline, "the revoked worker still claims to be ready"
        time.sleep(0.2)
    while "not allowed" not in v2.log_path.read_text():  # its next attempt is refused
        assert time.monotonic() < deadline, "the revoked worker never asked for the new key"
        time.sleep(0.2)
    info = httpx.get(f"{v2.url}/v1/info", timeout=5).json()
    assert info["epoch"] == epoch - 1
    assert info["ready"] is False
    # The others moved on and still serve.
    agent = register(stack, "export default async () => '0x02';")
    [request_id] = ask_many(stack, agent, [b""])
    assert wait_for(stack, [request_id])[request_id] == (Status.OK, b"\x02")


def test_only_the_quoting_processes_hold_the_authority_key_and_the_dashboard_verifies_with_its_public_key(
    stack: Stack,
) -> None:
    private = stack.state_dir / "attestation-authority.key"
    assert private.stat().st_mode & 0o777 == 0o600
    running = {name: service for name, service in stack.services.items() if service.running}
    assert {"bridge", "web", "gatekeeper"} <= set(running)
    assert any(n.startswith("worker") for n in running)
    for name, service in running.items():
        environ = Path(f"/proc/{service.process.pid}/environ").read_bytes()
        quotes = name.startswith(("worker", "gatekeeper"))
        assert (str(private).encode() in environ) == quotes, f"{name} must {'' if quotes else 'not '}see the key"
    services = httpx.get(f"{stack.url('web')}/api/services", timeout=10).json()
    workers = [s for s in services["workers"] if s["info"].get("ready")]
    assert workers
    assert all(s["quote_verified_at"] and not s["quote_error"] for s in workers)
    page = httpx.get(f"{stack.url('web')}/", timeout=10).text
    assert "SIMULATED TEE" in page


def test_batches_go_by_the_workers_execute_stream_or_by_http_alike(stack: Stack) -> None:
    """A worker names its execute stream in /v1/info and the bridge's client uses it; a worker
    without one is called by HTTP, with the same answers."""
    streamed_url = stack.url("worker-2")  # worker-1 was killed above
    assert httpx.get(f"{streamed_url}/v1/info", timeout=5).json()["stream"]["port"] > 0
    stack.worker_env = {"ENCLAVE_WORKER_EXECUTE_STREAM": "false"}
    try:
        plain = stack.start_worker("worker-plain")
    finally:
        stack.worker_env = {}
    try:
        assert httpx.get(f"{plain.url}/v1/info", timeout=5).json()["stream"] is None
        # A request the chain never saw: each worker refuses it, whichever way it is asked.
        made_up = CommitmentModel.of(commitment(b"made up"))
        batch = [
            ExecuteRequest(commitment=CommitmentModel.of(commitment(b"never asked")), input="0x00"),
            ExecuteRequest(commitment=made_up, input="0x" + b"made up".hex()),
        ]
        answers = {}
        for url in (streamed_url, plain.url):
            client = WorkerClient(url, token=stack.execute_token)
            answers[url] = [
                (item.status_code, _blockless(item.error)) for item in client.execute_batch(batch, timeout_s=10)
            ]
            assert (client._stream is not None) == (url == streamed_url)
            client.close()
        assert answers[streamed_url] == answers[plain.url]

        # A stream that cannot be reached (its worker restarted on another port, or no slot
        # free): the call goes by HTTP at once, and the stream is asked for again later.
        client = WorkerClient(streamed_url, token=stack.execute_token)
        client._stream = StreamConnections("127.0.0.1", free_port(), stack.execute_token, connect_timeout_s=1)
        fallback = [(item.status_code, _blockless(item.error)) for item in client.execute_batch(batch, timeout_s=10)]
        assert fallback == answers[streamed_url]
        assert client._stream is None
        client.close()
        assert [status for status, _ in answers[plain.url]] == [409, 409]
        assert "is not the request's input hash" in str(answers[plain.url][0][1])
        assert "not open" in str(answers[plain.url][1][1])
    finally:
        stack.services.pop("worker-plain").stop()


def _blockless(error: str | None) -> str | None:
    """A refusal without the block it was checked at (the chain moves on between two asks)."""
    return re.sub(r"at block \d+", "at block N", error) if error else error
