"""One stack, two chains: each its own anvil, deployment, gatekeeper and bridge, and one set of
workers serving both, under each chain's keys. A result signed for one chain is worth nothing
on the other."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from nacl.public import PrivateKey
from web3 import Web3
from web3.types import RPCEndpoint

from coprocessor.gatekeeper.service import peer_identity_digest
from coprocessor.keys import KeyDomain
from coprocessor.tee.base import identity_report_data
from coprocessor.tee.simulated import SimulatedTee, code_measurement, load_authority
from enclave.stack import GATEKEEPER_KEYS, TRANSMITTER_KEY, Service, Stack
from enclave.usage import Connected, ask_many, register, wait_for
from protocol.results import RequestCommitment
from protocol.statements import sign_statement
from protocol.status import Status
from protocol.wire import CommitmentModel, ExecuteBatchRequest, ExecuteRequest, JoinRequest
from tests.state import fresh_state_dir

pytestmark = pytest.mark.chain

ECHO = "export default async (input) => 'on ' + input.text;"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack(state_dir=fresh_state_dir("e2e-chains"), chains=2, workers=2, web_port=None) as running:
        yield running


def _chains(stack: Stack) -> list[Connected]:
    [second] = stack.other_chains
    return [Connected(stack.web3(), stack.deployment), Connected(second.web3(), second.deployment)]


def _answered(chain: Connected, payload: bytes, event: str) -> Any:
    """Has EchoConsumer ask a fresh agent on `chain` and waits for the answer; returns the
    router's `event` log of that request."""
    assert chain.deployment is not None
    [request_id] = ask_many(chain, register(chain, ECHO), [payload])
    wait_for(chain, [request_id])
    router = chain.deployment.contract(chain.w3, "AgentRouter")
    [log] = router.events[event]().get_logs(
        from_block=chain.deployment.start_block, argument_filters={"requestId": request_id}
    )
    return log


def test_one_set_of_workers_answers_on_both_chains_under_each_chains_keys(stack: Stack) -> None:
    chains = _chains(stack)
    assert [c.w3.eth.chain_id for c in chains] == [31337, 1337]
    for chain in chains:
        assert chain.deployment is not None
        agent = register(chain, ECHO)
        [request_id] = ask_many(chain, agent, [b"chain %d" % chain.deployment.chain_id])
        status, output = wait_for(chain, [request_id])[request_id]
        assert (status, output) == (Status.OK, b'"on chain %d"' % chain.deployment.chain_id)

    # Every worker holds each chain's current key, published on that chain's TeeRegistry; the
    # chains' keys have nothing in common (each chain's gatekeeper made its own master key).
    signers = {}
    for chain in chains:
        assert chain.deployment is not None
        registry = chain.deployment.contract(chain.w3, "TeeRegistry")
        epoch = int(registry.functions.currentEpoch().call())
        signers[chain.deployment.chain_id] = registry.functions.getEpoch(epoch).call()[0]
    assert signers[31337] != signers[1337]
    for name in ("worker-1", "worker-2"):
        info = httpx.get(f"{stack.url(name)}/v1/info", timeout=5).json()
        served = {c["chainId"]: c for c in info["chains"]}
        assert set(served) == {31337, 1337}
        for chain_id, signer in signers.items():
            assert served[chain_id]["ready"]
            assert served[chain_id]["signer"] == signer


def test_a_fulfilment_for_one_chain_fulfils_nothing_on_the_other(stack: Stack) -> None:
    """The transmitter's own fulfil transaction on the first chain, sent as it is to the second
    chain's router: the signature is bound to the first chain's id and router (and key)."""
    first, second = _chains(stack)
    fulfilled = _answered(first, b"replayed", "RequestFulfilled")
    tx = first.w3.eth.get_transaction(fulfilled["transactionHash"])
    transmitter = Account.from_key(TRANSMITTER_KEY).address
    assert tx["from"] == transmitter

    def fulfils(chain: Connected, block: int | str) -> int:
        assert chain.deployment is not None
        call = {"from": transmitter, "to": chain.deployment.addresses["AgentRouter"], "data": tx["input"]}
        return int.from_bytes(chain.w3.eth.call(call, block), "big")  # type: ignore[arg-type]

    # On its own chain, just before it was mined, the same calldata fulfils the request ...
    assert fulfils(first, fulfilled["blockNumber"] - 1) == 1
    # ... and on the other it fulfils nothing, at the same router address or not.
    assert fulfils(second, "latest") == 0


def test_a_worker_runs_a_request_only_on_the_chain_it_was_made_on(stack: Stack) -> None:
    """Naming the other chain or one it does not serve: the worker refuses, and says why."""
    first, second = _chains(stack)
    event = _answered(first, b"misdirected", "AgentRequested")
    commitment = RequestCommitment.from_event(event["args"], event["blockNumber"])
    # The second chain past the request's block, so that it can only say "not open here".
    behind = event["blockNumber"] - second.w3.eth.block_number
    if behind >= 0:
        second.w3.provider.make_request(RPCEndpoint("anvil_mine"), [hex(behind + 1)])
    request = ExecuteRequest(commitment=CommitmentModel.of(commitment), input=Web3.to_hex(b"misdirected"))
    headers = {"Authorization": f"Bearer {stack.execute_token}"}
    url = f"{stack.url('worker-1')}/v1/execute-batch"
    for chain_id, status, says in ((1337, 409, "not open on-chain"), (5, 421, "serves chains [1337, 31337]")):
        body = ExecuteBatchRequest(requests=[request], chain_id=chain_id).model_dump()
        reply = httpx.post(url, json=body, headers=headers, timeout=30)
        answer = reply.json()
        if reply.status_code == 200:
            [item] = answer["results"]
            assert item["statusCode"] == status, item
            assert says in item["error"]
        else:
            assert reply.status_code == status, answer
            assert says in answer["detail"]


def test_a_gatekeeper_shares_its_master_keys_only_with_peers_of_its_own_registry(stack: Stack, tmp_path: Path) -> None:
    """The host holds every gatekeeper's account key, here even the same account on both chains.
    An honest gatekeeper it starts for another registry (one naming that account) asks the first
    chain's gatekeeper for its master keys: refused, so it cannot hand them to workers that run
    agents of the host's own under the first chain's agent ids."""
    first, second = _chains(stack)
    assert first.deployment is not None
    assert second.deployment is not None
    tee = SimulatedTee(load_authority(stack.state_dir / "attestation-authority.key"), tmp_path, code_measurement())
    identity = PrivateKey.generate()
    account = Account.from_key(GATEKEEPER_KEYS[0])
    domains = {
        chain.deployment.chain_id: KeyDomain(chain.deployment.chain_id, chain.deployment.addresses["TeeRegistry"])
        for chain in (first, second)
        if chain.deployment is not None
    }

    def join(claimed: KeyDomain, signed_for: KeyDomain) -> httpx.Response:
        digest = peer_identity_digest(bytes(identity.public_key), signed_for)
        body = JoinRequest(
            quote=tee.quote(identity_report_data(bytes(identity.public_key))).to_dict(),
            identity_public_key=Web3.to_hex(bytes(identity.public_key)),
            address=account.address,
            chain_id=claimed.chain_id,
            registry=claimed.registry,
            signature=Web3.to_hex(sign_statement(account.key, digest)),
        )
        return httpx.post(f"{stack.url('gatekeeper')}/v1/gatekeepers/join", json=body.model_dump(), timeout=10)

    refused = join(domains[1337], domains[1337])
    assert refused.status_code == 403
    assert "the peer serves chain 1337's registry" in refused.json()["detail"]
    assert "refused a gatekeeper's join" in stack.services["gatekeeper"].log_path.read_text(), "the operator sees it"
    # Naming the first chain while the account signed for the second is refused too.
    forged = join(domains[31337], domains[1337])
    assert forged.status_code == 403
    assert "not signed by the gatekeeper account it names" in forged.json()["detail"]
    # A peer of the first chain's own registry is served: the refusals above are about the chain.
    assert join(domains[31337], domains[31337]).status_code == 200


def _start_worker_serving(stack: Stack, name: str, chains: Sequence[Mapping[str, object]]) -> Service:
    stack.worker_env = {"ENCLAVE_WORKER_CHAINS": json.dumps(chains)}
    try:
        return stack.start_worker(name, wait=False)
    finally:
        stack.worker_env = {}


def _health(worker: Service, chain_id: int) -> httpx.Response:
    return httpx.get(f"{worker.url}/healthz", params={"chainId": chain_id}, timeout=5)


def test_a_chain_whose_node_is_down_costs_a_worker_that_chain_only(stack: Stack) -> None:
    [second] = stack.other_chains
    away = {
        "rpc_url": "http://127.0.0.1:9",  # nothing listens: the node is down
        "deployment": str(second.deployment_path),
        "gatekeeper_urls": [stack.url(second.service("gatekeeper"))],
        "cluster_store": str(second.cluster_store),
    }
    worker = _start_worker_serving(stack, "worker-9", [away])
    try:
        deadline = time.monotonic() + 60
        while True:
            assert worker.running, worker.log_path.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if _health(worker, 31337).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the first chain was never served"
            time.sleep(0.2)
        down = _health(worker, 1337)
        assert down.status_code == 503
        assert "no key for chain 1337" in down.json()["detail"]
        assert "chain 1337's node at http://127.0.0.1:9 does not answer" in worker.log_path.read_text()
    finally:
        worker.stop()
        del stack.services["worker-9"]


def test_a_chain_listed_twice_is_refused_at_start(stack: Stack) -> None:
    again = {
        "rpc_url": stack.rpc_url,
        "deployment": str(stack.deployment_path),
        "gatekeeper_urls": stack.gatekeeper_urls(),
        "cluster_store": str(stack.state_dir / "cluster.sqlite"),
    }
    worker = _start_worker_serving(stack, "worker-8", [again])
    try:
        assert worker.process.wait(timeout=60) != 0
        assert "each chain is served once, but the chains' ids are [31337, 31337]" in worker.log_path.read_text()
    finally:
        del stack.services["worker-8"]
