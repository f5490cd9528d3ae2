"""The Python side of the protocol agrees with the deployed contracts."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from coprocessor.protocol import RequestCommitment, Status, result_digest, sign_result
from enclave.anvil import DEV_KEYS
from enclave.contracts import Deployment, send

CLUSTER_KEY = bytes.fromhex("c1" * 32)
CODE = b"export default async function main(input) { return input; }"


def test_result_digest_matches_router(w3: Web3, deployment: Deployment) -> None:
    router = deployment.contract(w3, "AgentRouter")
    args = dict(request_id=7, agent_id=3, code_hash=b"\x11" * 32, status=Status.TIMEOUT, output=b"late", epoch=2)
    ours = result_digest(chain_id=w3.eth.chain_id, router=router.address, **args)  # type: ignore[arg-type]
    theirs = router.functions.resultDigest(7, 3, b"\x11" * 32, int(Status.TIMEOUT), Web3.keccak(b"late"), 2).call()
    assert ours == theirs


def test_deployment_file_round_trips(w3: Web3, deployment: Deployment, tmp_path: Path) -> None:
    path = tmp_path / "deployment.json"
    deployment.save(path)
    loaded = Deployment.load(path)
    assert loaded.addresses == deployment.addresses
    assert loaded.chain_id == w3.eth.chain_id
    assert loaded.contract(w3, "AgentRouter").functions.nextRequestId().call() >= 1


def test_deployment_load_rejects_garbage(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(Exception, match="cannot read deployment file"):
        Deployment.load(path)


def test_signed_result_is_fulfilled_on_chain(w3: Web3, deployment: Deployment) -> None:
    """A request answered with a Python-signed result reaches EchoConsumer."""
    owner = Account.from_key(DEV_KEYS[0])
    router = deployment.contract(w3, "AgentRouter")
    tee = deployment.contract(w3, "TeeRegistry")
    echo = deployment.contract(w3, "EchoConsumer")
    if tee.functions.currentEpoch().call() == 0:
        send(w3, owner, tee.functions.publishEpoch(1, Account.from_key(CLUSTER_KEY).address, b"\x01" * 32))
    send(w3, owner, router.functions.registerAgent(CODE, 0, False))
    agent_id = router.functions.agentCount().call()

    receipt = send(w3, owner, echo.functions.ask(agent_id, b"ping", 200_000))
    event = router.events.AgentRequested().process_receipt(receipt)[0]["args"]
    commitment = RequestCommitment(
        agent_id=event["agentId"],
        code_hash=event["codeHash"],
        consumer=event["consumer"],
        fee=event["fee"],
        callback_gas_limit=event["callbackGasLimit"],
        created_at=event["createdAt"],
        deadline=event["deadline"],
    )
    assert router.functions.commitmentOf(event["requestId"]).call() == commitment.hash()

    result = sign_result(
        CLUSTER_KEY,
        chain_id=w3.eth.chain_id,
        router=router.address,
        request_id=event["requestId"],
        commitment=commitment,
        status=Status.OK,
        output=b"pong",
        epoch=1,
    )
    transmitter = Account.from_key(DEV_KEYS[1])
    send(w3, transmitter, router.functions.fulfill([result.as_tuple()]), gas=1_000_000)
    assert echo.functions.lastOutput().call() == b"pong"
    assert echo.functions.lastRequestId().call() == event["requestId"]
    assert router.functions.balanceOf(transmitter.address).call() == event["fee"]
