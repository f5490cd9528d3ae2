"""What an independent attacker's pass found against the first version of docs/security.md,
each now a test: private logs leaking through ctx.callAgent, two answers for one request,
sealed secrets reused with other input, host-altered settings signed as bad input, a lying
node's chain id, restricted agents called from other agents, and inputs that answered 500."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from nacl.public import PrivateKey

from coprocessor.cluster_store import ClusterStore
from coprocessor.errors import HostUnavailable, OwnerSettingsUnreadable
from coprocessor.gatekeeper.app import create_app as gatekeeper_app
from coprocessor.gatekeeper.service import Gatekeeper
from coprocessor.keys import AgentKeys
from coprocessor.runtime import Limits, RunContext, Sandbox
from coprocessor.worker.service import Worker
from enclave.anvil import Anvil
from protocol.envelope import EnvelopeError, open_envelope, seal_secrets
from protocol.private_logs import open_logs, owner_logs_key, seal_logs
from protocol.results import RequestCommitment
from protocol.status import Status
from protocol.wire import CommitmentModel, ExecuteRequest, ExecuteResponse, to_hex
from tests import samples

PRIVATE_CALLEE = """export default async (input, ctx) => {
  ctx.log("callee private log: API_KEY=" + ctx.secrets.API_KEY);
  throw new Error("private failure detail, API_KEY=" + ctx.secrets.API_KEY);
};"""
CALLER = """export default async (input, ctx) => {
  try { return await ctx.callAgent(2, "0x"); } catch (e) { return "caught: " + e.message; }
};"""


def _callee(private: bool) -> dict[str, Any]:
    return {
        "codeHash": "0x" + "22" * 32,
        "code": PRIVATE_CALLEE,
        "limits": Limits().as_dict(),
        "context": RunContext(agent_id=2, secrets={"API_KEY": "sk-VICTIM"}).to_wire(),
        "privateLogs": private,
    }


@pytest.mark.parametrize("private", [True, False])
def test_a_callee_with_private_logs_keeps_its_logs_and_error_from_its_caller(private: bool) -> None:
    with Sandbox(size=1) as sandbox:
        execution = sandbox.execute(CALLER, b"", Limits(), RunContext(agent_id=1), lambda _: _callee(private))
    shown = json.loads(execution.output) + " ".join(execution.logs)
    assert execution.status == Status.OK
    # The same agents with public logs show the detail: the test would notice a callee that
    # never logged or threw.
    assert ("sk-VICTIM" in shown) is not private
    if private:
        assert "details private to its owner" in shown


def _commitment(input_: bytes = b"x") -> RequestCommitment:
    return samples.commitment(input_, created_at=5, deadline=10**9)


def _bare_worker() -> Worker:
    """A worker with only its answer book: the run itself is replaced in each test."""
    worker = Worker.__new__(Worker)
    worker._answers = OrderedDict()
    worker._running = set()
    worker._answers_changed = threading.Condition()
    worker._keys = [cast(Any, SimpleNamespace(epoch=1))]
    worker._open_many = lambda commitments: [None] * len(commitments)  # type: ignore[method-assign]
    worker._batch_runs = ThreadPoolExecutor(max_workers=4)
    return worker


def test_a_failed_first_run_never_lets_two_runs_sign_for_one_request() -> None:
    """A first run that fails (its host away) while a second call waits, and a third call
    arriving after the failure: only one of them may run, and both get its one answer."""
    worker = _bare_worker()
    runs: list[int] = []

    def execute_once(commitment: RequestCommitment, raw_input: bytes, verdict: object) -> ExecuteResponse:
        runs.append(len(runs))
        time.sleep(0.3)
        if len(runs) == 1:
            raise HostUnavailable("the node went away")
        return cast(ExecuteResponse, SimpleNamespace(signature=SimpleNamespace(epoch=1), run=len(runs)))

    worker._execute_once = execute_once  # type: ignore[method-assign]
    body = ExecuteRequest(commitment=CommitmentModel.of(_commitment()), input=to_hex(b"x"))
    answers: dict[str, Any] = {}

    def call(name: str, delay: float) -> None:
        time.sleep(delay)
        try:
            answers[name] = worker.execute(body)
        except HostUnavailable as err:
            answers[name] = err

    threads = [threading.Thread(target=call, args=(n, d)) for n, d in (("a", 0.0), ("b", 0.1), ("c", 0.45))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert isinstance(answers["a"], HostUnavailable)
    assert answers["b"] is answers["c"], "one signed answer for the request"
    assert len(runs) == 2, "the failed run, then exactly one more"


def test_sealed_secrets_do_not_open_with_other_input() -> None:
    key = PrivateKey.generate()
    alice = seal_secrets(bytes(key.public_key), 1, {"PASSPHRASE": "alice's"}, b"Alice")
    assert open_envelope(alice, bytes(key)).secrets == {"PASSPHRASE": "alice's"}
    reused = alice.replace(b"Alice", b"Malle")  # the same sealed part, another clear input
    with pytest.raises(EnvelopeError, match="sealed for another input"):
        open_envelope(reused, bytes(key))


def test_private_logs_are_bound_to_their_request() -> None:
    owner = b"\x07" * 32
    sealed = seal_logs(bytes(owner_logs_key(owner).public_key), 41, ["line"], "error")
    assert open_logs(owner, sealed, 41)["logs"] == ["line"]
    with pytest.raises(ValueError, match="of request 41, not of 42"):
        open_logs(owner, sealed, 42)


def test_owner_settings_the_host_altered_are_its_fault_not_the_requesters(tmp_path: Path) -> None:
    store = ClusterStore(tmp_path / "cluster.sqlite")
    store.put_secrets(1, 1, b"not a sealed box", 1)
    worker = _bare_worker()
    worker.store = store
    keys = {1: AgentKeys(agent_id=1, epoch=1, encryption_key=bytes(PrivateKey.generate()), storage_key=b"\x00" * 32)}
    with pytest.raises(OwnerSettingsUnreadable):
        worker._owner_secrets(1, keys)
    assert issubclass(OwnerSettingsUnreadable, HostUnavailable), "answered 503, never signed"


def test_a_restricted_agent_cannot_be_called_from_another_agent() -> None:
    worker = _bare_worker()
    record = (b"\x01" * 32, 10**18, 1, False, True, "0x" + "0a" * 20, "0x" + "00" * 20)
    getter = SimpleNamespace(call=lambda: record)
    worker.router = cast(Any, SimpleNamespace(functions=SimpleNamespace(getAgent=lambda agent_id: getter)))
    assert worker._resolve(9) == {"error": "the agent is restricted to its allowed consumers"}


def test_out_of_range_request_fields_are_refused_at_the_door() -> None:
    fields = CommitmentModel.of(_commitment()).model_dump()
    for name, value in (("agentId", 2**256), ("nonce", -1), ("createdAt", 2**48), ("codeHash", "0x12")):
        with pytest.raises(ValueError, match=name):
            CommitmentModel.model_validate(fields | {name: value})
    for bad_input in ("zz", "0x1", "0xgg"):
        with pytest.raises(ValueError, match="input"):
            ExecuteRequest.model_validate({"commitment": fields, "input": bad_input})


def test_the_gatekeeper_refuses_agent_ids_outside_uint256_with_422() -> None:
    client = TestClient(gatekeeper_app(cast(Gatekeeper, SimpleNamespace())))
    assert client.get("/v1/agents/-1/encryption-key").status_code == 422
    assert client.get(f"/v1/agents/{2**256}/encryption-key").status_code == 422


@pytest.mark.chain
def test_a_node_that_claims_the_development_chain_does_not_unlock_the_simulated_tee(tmp_path: Path) -> None:
    """The deployment's chain id (what the signatures are bound to) decides too, not only the
    node's answer."""
    deployment = tmp_path / "deployment.json"
    deployment.write_text(json.dumps({"chainId": 5, "startBlock": 0, "contracts": {}}))
    with Anvil() as chain:  # chain id 31337: what a lying node would claim
        env = {
            **os.environ,
            "ENCLAVE_WORKER_RPC_URL": chain.rpc_url,
            "ENCLAVE_WORKER_DEPLOYMENT": str(deployment),
            "ENCLAVE_WORKER_STATE_DIR": str(tmp_path / "state"),
            "ENCLAVE_WORKER_ATTESTATION_AUTHORITY_KEY": str(tmp_path / "authority.key"),
        }
        done = subprocess.run(
            [sys.executable, "-m", "coprocessor.worker"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode != 0
    assert "refusing the SIMULATED TEE on chain 5" in done.stderr
