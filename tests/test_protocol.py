"""The Python side of the protocol agrees with the deployed contracts."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.abi import collapse_if_tuple
from web3 import Web3
from web3.logs import DISCARD

from coprocessor.worker.open_requests import OpenRequests
from enclave.anvil import DEV_KEYS, Anvil
from enclave.usage import send_request
from protocol.calls import FunctionEncoder
from protocol.deployment import Deployment, send
from protocol.errors import DeploymentError
from protocol.events import EventDecoder
from protocol.results import (
    COMMITMENT_TYPES,
    AgentResult,
    RequestCommitment,
    Status,
    batch_digest,
    encode_static,
    recover_result_signer,
    result_digest,
    sign_digest,
    sign_result,
)
from protocol.subscription import websocket_url
from tests.tcp_proxy import TcpProxy

CLUSTER_KEY = bytes.fromhex("c1" * 32)
CODE = b"export default async function main(input) { return input; }"
COMMITMENT = RequestCommitment(
    agent_id=3,
    code_hash=b"\x11" * 32,
    input_hash=Web3.keccak(b"input"),
    consumer="0x" + "22" * 20,
    fee=5,
    callback_gas_limit=9,
    created_at=1,
    deadline=2,
    nonce=4,
)


def test_request_id_matches_router(w3: Web3, deployment: Deployment) -> None:
    router = deployment.contract(w3, "AgentRouter")
    assert COMMITMENT.request_id == router.functions.requestIdOf(COMMITMENT.as_tuple()).call()
    other_input = replace(COMMITMENT, input_hash=Web3.keccak(b"other input"))
    assert other_input.request_id != COMMITMENT.request_id


def test_result_digest_matches_router(w3: Web3, deployment: Deployment) -> None:
    router = deployment.contract(w3, "AgentRouter")
    result = AgentResult(commitment=COMMITMENT, status=Status.TIMEOUT, output=b"late")
    ours = result_digest(chain_id=w3.eth.chain_id, router=router.address, result=result, epoch=2)
    assert ours == router.functions.resultDigest(result.as_tuple(), 2).call()


def test_result_digest_matches_eth_account_typed_data(w3: Web3, deployment: Deployment) -> None:
    """A second oracle for the hand-written EIP-712 encoding: eth_account's own."""
    router = deployment.contract(w3, "AgentRouter")
    result = AgentResult(commitment=COMMITMENT, status=Status.AGENT_ERROR, output=b"boom")
    message = encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "AgentResult": [
                    {"name": "requestId", "type": "uint256"},
                    {"name": "agentId", "type": "uint256"},
                    {"name": "codeHash", "type": "bytes32"},
                    {"name": "inputHash", "type": "bytes32"},
                    {"name": "status", "type": "uint8"},
                    {"name": "outputHash", "type": "bytes32"},
                    {"name": "epoch", "type": "uint64"},
                ],
            },
            "primaryType": "AgentResult",
            "domain": {
                "name": "EnclaveAgents",
                "version": "1",
                "chainId": w3.eth.chain_id,
                "verifyingContract": router.address,
            },
            "message": {
                "requestId": COMMITMENT.request_id,
                "agentId": COMMITMENT.agent_id,
                "codeHash": COMMITMENT.code_hash,
                "inputHash": COMMITMENT.input_hash,
                "status": int(Status.AGENT_ERROR),
                "outputHash": Web3.keccak(b"boom"),
                "epoch": 3,
            },
        }
    )
    expected = Web3.keccak(b"\x19" + message.version + message.header + message.body)
    assert result_digest(chain_id=w3.eth.chain_id, router=router.address, result=result, epoch=3) == expected


def test_batch_digest_matches_router(w3: Web3, deployment: Deployment) -> None:
    router = deployment.contract(w3, "AgentRouter")
    results = [
        AgentResult(commitment=replace(COMMITMENT, nonce=i), status=Status.OK, output=bytes([i]) * i)
        for i in range(1, 4)
    ]
    ours = batch_digest(chain_id=w3.eth.chain_id, router=router.address, results=results, epoch=4)
    theirs = router.functions.batchDigest([r.as_tuple() for r in results], 4).call()
    assert ours == theirs


def test_signature_recovers_to_cluster_signer() -> None:
    result = AgentResult(commitment=COMMITMENT, status=Status.OK, output=b"x")
    signed = sign_result(CLUSTER_KEY, chain_id=1, router="0x" + "33" * 20, result=result, epoch=1)
    signer = recover_result_signer(chain_id=1, router="0x" + "33" * 20, signed=signed)
    assert signer == Account.from_key(CLUSTER_KEY).address
    assert recover_result_signer(chain_id=2, router="0x" + "33" * 20, signed=signed) != signer


def test_static_encoding_is_eth_abis() -> None:
    """A request's id and a result's struct hash are taken of words encoded without eth_abi:
    the same bytes for any value, and what eth_abi refuses is refused."""
    rng = random.Random(7)  # noqa: S311 - test values, not secrets
    types = [*COMMITMENT_TYPES, "uint8", "uint64"]
    for _ in range(200):
        values: list[Any] = []
        for kind in types:
            if kind == "bytes32":
                values.append(rng.randbytes(32))
            elif kind == "address":
                values.append(Web3.to_checksum_address(rng.randbytes(20)))
            else:
                values.append(rng.randrange(1 << int(kind[4:])))
        assert encode_static(types, values) == encode(types, values)
    for kind, bad in [("uint96", 1 << 96), ("uint8", -1), ("bytes32", b"short"), ("address", "0x1234"), ("bool", True)]:
        with pytest.raises(ValueError, match="not a"):
            encode_static([kind], [bad])


def test_signatures_are_eth_accounts_byte_for_byte() -> None:
    """The worker signs with libsecp256k1 directly; eth_account signs the same digest alike."""
    for seed in range(20):
        digest = Web3.keccak(seed.to_bytes(4, "big"))
        expected = Account.unsafe_sign_hash(digest, CLUSTER_KEY)
        compact = sign_digest(CLUSTER_KEY, digest, 1)
        assert compact.r == expected.r.to_bytes(32, "big")
        assert int.from_bytes(compact.vs, "big") == expected.s | ((expected.v - 27) << 255)


def test_deployment_file_round_trips(w3: Web3, deployment: Deployment, tmp_path: Path) -> None:
    path = tmp_path / "deployment.json"
    deployment.save(path)
    loaded = Deployment.load(path)
    assert loaded.addresses == deployment.addresses
    assert loaded.chain_id == w3.eth.chain_id
    assert loaded.contract(w3, "AgentRouter").functions.getConfig().call()[1] == 4096


def test_deployment_load_rejects_garbage(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(DeploymentError, match="cannot read deployment file"):
        Deployment.load(path)


def _open_request(w3: Web3, deployment: Deployment, input_: bytes) -> tuple[int, RequestCommitment]:
    owner = Account.from_key(DEV_KEYS[0])
    router = deployment.contract(w3, "AgentRouter")
    tee = deployment.contract(w3, "TeeRegistry")
    if tee.functions.currentEpoch().call() == 0:
        send(w3, owner, tee.functions.publishEpoch(1, Account.from_key(CLUSTER_KEY).address, b"\x01" * 32))
    if router.functions.agentCount().call() == 0:
        send(w3, owner, router.functions.registerAgent(CODE, 0, False))
    call = deployment.contract(w3, "EchoConsumer").functions.ask(1, input_, 200_000)
    receipt = send_request(w3, owner, call, router, 1, 200_000)
    log = router.events.AgentRequested().process_receipt(receipt)[0]
    commitment = RequestCommitment.from_event(log["args"], log["blockNumber"])
    assert commitment.request_id == log["args"]["requestId"]
    assert router.functions.isOpen(commitment.request_id).call()
    return int(log["args"]["requestId"]), commitment


def test_signed_result_is_fulfilled_on_chain(w3: Web3, deployment: Deployment) -> None:
    """A request answered with a Python-signed result reaches EchoConsumer."""
    router = deployment.contract(w3, "AgentRouter")
    echo = deployment.contract(w3, "EchoConsumer")
    request_id, commitment = _open_request(w3, deployment, b"ping")
    result = AgentResult(commitment=commitment, status=Status.OK, output=b"pong")
    signed = sign_result(CLUSTER_KEY, chain_id=w3.eth.chain_id, router=router.address, result=result, epoch=1)
    transmitter = Account.from_key(DEV_KEYS[1])
    before = router.functions.balanceOf(transmitter.address).call()
    refunds_before = router.functions.balanceOf(echo.address).call()
    receipt = send(w3, transmitter, router.functions.fulfill([signed.as_tuple()]), gas=1_000_000)
    assert echo.functions.lastOutput().call() == b"pong"
    assert echo.functions.lastRequestId().call() == request_id
    [paid] = [e["args"] for e in router.events.RequestFulfilled().process_receipt(receipt, errors=DISCARD)]
    # The transmitter: the operator's fee and the delivery's gas; the consumer: the rest.
    assert paid["gasReimbursed"] > 0
    earned = router.functions.balanceOf(transmitter.address).call() - before
    assert earned == commitment.operator_fee + paid["gasReimbursed"]
    assert router.functions.balanceOf(echo.address).call() - refunds_before == paid["refunded"]
    assert commitment.price + earned + paid["refunded"] == commitment.fee


def test_a_request_is_known_open_from_the_nodes_pushes_until_it_is_closed(
    anvil: Anvil, w3: Web3, deployment: Deployment
) -> None:
    """What a worker takes from the router's pushed logs instead of asking `isOpen`: a request
    made is open, one never made is not known, a fulfilled one is closed, and a dropped
    subscription forgets everything (a closing pushed meanwhile would be missed)."""
    router = deployment.contract(w3, "AgentRouter")
    with (
        TcpProxy(int(anvil.rpc_url.rsplit(":", 1)[1])) as proxy,
        OpenRequests(websocket_url(proxy.url), router.address, router.abi, timeout_s=5) as pushed,
    ):
        _until(lambda: pushed.subscription.connected, "never subscribed")
        request_id, commitment = _open_request(w3, deployment, b"followed")
        _until(lambda: pushed.known_open(request_id), "the made request was never pushed")
        assert not pushed.known_open(replace(commitment, nonce=commitment.nonce + 1).request_id)

        result = AgentResult(commitment=commitment, status=Status.OK, output=b"done")
        signed = sign_result(CLUSTER_KEY, chain_id=w3.eth.chain_id, router=router.address, result=result, epoch=1)
        send(w3, Account.from_key(DEV_KEYS[1]), router.functions.fulfill([signed.as_tuple()]), gas=1_000_000)
        _until(lambda: not pushed.known_open(request_id), "the fulfilment was never pushed")
        assert not router.functions.isOpen(request_id).call()

        other, _ = _open_request(w3, deployment, b"followed, then cut off")
        _until(lambda: pushed.known_open(other), "the second request was never pushed")
        proxy.cut()
        _until(lambda: not pushed.subscription.connected, "the cut went unnoticed")
        assert not pushed.known_open(other), "what a dropped subscription knew is asked of the node again"


def _until(condition: Callable[[], bool], failure: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.02)


def test_batch_signed_results_are_fulfilled_on_chain(w3: Web3, deployment: Deployment) -> None:
    router = deployment.contract(w3, "AgentRouter")
    echo = deployment.contract(w3, "EchoConsumer")
    opened = [_open_request(w3, deployment, bytes([i])) for i in range(3)]
    results = [AgentResult(commitment=c, status=Status.OK, output=b"n%d" % i) for i, c in opened]
    digest = batch_digest(chain_id=w3.eth.chain_id, router=router.address, results=results, epoch=1)
    signature = sign_digest(CLUSTER_KEY, digest, 1)
    count_before = echo.functions.resultCount().call()
    send(
        w3,
        Account.from_key(DEV_KEYS[1]),
        router.functions.fulfillBatch([r.as_tuple() for r in results], signature.as_tuple()),
        gas=2_000_000,
    )
    assert echo.functions.resultCount().call() == count_before + 3
    assert echo.functions.lastOutput().call() == results[-1].output


def test_lean_call_encoding_is_web3s(w3: Web3, deployment: Deployment) -> None:
    """The submitter's calldata, encoded without web3, is byte for byte what web3 encodes."""
    router = deployment.contract(w3, "AgentRouter")
    results = [AgentResult(commitment=COMMITMENT, status=Status.OK, output=b"out %d" % i) for i in range(3)]
    signed = [sign_result(CLUSTER_KEY, chain_id=1, router=router.address, result=r, epoch=1) for r in results]
    signature = sign_digest(CLUSTER_KEY, b"\x01" * 32, 1)
    cases: dict[str, list[Any]] = {
        "fulfill": [[s.as_tuple() for s in signed]],
        "fulfillBatch": [[r.as_tuple() for r in results], signature.as_tuple()],
        "cancel": [COMMITMENT.as_tuple()],
    }
    for name, args in cases.items():
        assert FunctionEncoder.of(router.abi, name).encode(args) == bytes.fromhex(router.encode_abi(name, args)[2:])


def test_lean_log_decoding_is_web3s(w3: Web3, deployment: Deployment) -> None:
    """The bridge's own decoding of the router's logs gives what web3's `process_log` gives."""
    router = deployment.contract(w3, "AgentRouter")
    request_id, commitment = _open_request(w3, deployment, b"decode me")
    logs = router.events.AgentRequested().get_logs(from_block=commitment.created_at, to_block=commitment.created_at)
    entry = next(e for e in logs if int(e["args"]["requestId"]) == request_id)
    raw = w3.eth.get_logs({"address": router.address, "blockHash": entry["blockHash"]})
    decoder = EventDecoder.of(router.abi, "AgentRequested")
    mine = next(decoder.decode(r["topics"], bytes(r["data"])) for r in raw if bytes(r["topics"][0]) == decoder.topic)
    assert mine == dict(entry["args"])
    with pytest.raises(ValueError, match="not a RequestFulfilled log"):
        EventDecoder.of(router.abi, "RequestFulfilled").decode(raw[0]["topics"], bytes(raw[0]["data"]))


def _abi_value(item: dict[str, Any], rng: random.Random) -> Any:
    kind = item["type"]
    if kind == "tuple":
        return tuple(_abi_value(c, rng) for c in item["components"])
    if kind.startswith("uint"):
        return rng.choice([0, 1, (1 << int(kind[4:] or 256)) - 1, rng.getrandbits(int(kind[4:] or 256))])
    if kind == "address":
        return Web3.to_checksum_address(rng.randbytes(20))
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "bytes":
        return rng.randbytes(rng.choice([0, 1, 31, 32, 33, 200]))
    if kind == "string":
        return "é" * rng.randrange(40)
    if kind.startswith("bytes"):
        return rng.randbytes(int(kind[5:]))
    raise AssertionError(f"no sample of {kind}")


def test_lean_log_decoding_is_eth_abis_for_every_router_event_and_as_strict(deployment: Deployment) -> None:
    rng = random.Random(7)  # noqa: S311 - samples, not secrets
    abi = deployment.abis["AgentRouter"]
    for event in (item for item in abi if item.get("type") == "event"):
        lean = EventDecoder.of(abi, event["name"])
        assert lean.lean_data is not None, f"{event['name']} has a type the lean decoder does not read"
        by_eth_abi = replace(lean, lean_indexed=None, lean_data=None)
        for _ in range(20):
            topics = [lean.topic] + [encode([collapse_if_tuple(i)], [_abi_value(i, rng)]) for i in lean.indexed]
            data = encode([collapse_if_tuple(i) for i in lean.data], [_abi_value(i, rng) for i in lean.data])
            assert lean.decode(topics, data) == by_eth_abi.decode(topics, data), event["name"]

    requested = EventDecoder.of(abi, "AgentRequested")
    topics = [requested.topic] + [encode([i["type"]], [_abi_value(i, rng)]) for i in requested.indexed]
    values = [_abi_value(i, rng) for i in requested.data]
    values[1] = b"an input of some length"
    good = encode([collapse_if_tuple(i) for i in requested.data], values)
    at = 2 * 32  # callbackGasLimit, after codeHash and the input's offset
    malformed = {
        "short": good[:-1],
        "a uint32 with its high bytes set": good[:at] + b"\x01" + good[at + 1 :],
        "an input past the end": good[:32] + len(good).to_bytes(32, "big") + good[64:],
        "an input's padding not zero": good[:-1] + b"\x01",
        # the input's offset at callbackGasLimit's word, made 0: an empty input, were it allowed
        "an input's offset into the head": good[:32] + at.to_bytes(32, "big") + bytes(32) + good[at + 32 :],
    }
    for what, bad in malformed.items():
        for decoder in (requested, replace(requested, lean_indexed=None, lean_data=None)):
            try:
                decoder.decode(topics, bad)
            except ValueError:
                continue
            pytest.fail(f"{what}: decoded by {'eth_abi' if decoder.lean_data is None else 'the lean decoder'}")
    with pytest.raises(ValueError, match="no address"):
        requested.decode([*topics[:3], b"\x01" + bytes(topics[3][1:])], good)


def test_events_of_types_the_lean_decoder_does_not_read_are_eth_abis() -> None:
    """Arrays and nested tuples go to eth_abi, and decode as it does."""
    inner = {
        "name": "inner",
        "type": "tuple",
        "components": [{"name": "c", "type": "uint8"}, {"name": "d", "type": "uint8"}],
    }
    outer = {"name": "outer", "type": "tuple", "components": [{"name": "a", "type": "uint8"}, inner]}
    numbers = {"name": "numbers", "type": "uint256[]", "indexed": False}
    abi = [{"type": "event", "name": "Odd", "anonymous": False, "inputs": [{**outer, "indexed": False}, numbers]}]
    decoder = EventDecoder.of(abi, "Odd")
    assert decoder.lean_data is None
    data = encode(["(uint8,(uint8,uint8))", "uint256[]"], [(1, (2, 3)), [4, 5]])
    assert decoder.decode([decoder.topic], data) == {"outer": {"a": 1, "inner": {"c": 2, "d": 3}}, "numbers": (4, 5)}
