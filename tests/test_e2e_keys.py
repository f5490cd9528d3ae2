"""End to end: sealed secrets, sealed state, rotation with requests in flight, and no leaks."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import httpx
import pytest
from web3 import Web3

from coprocessor.keys import KeyDomain, derive_cluster_key
from coprocessor.sealing import sealing_key, unseal
from coprocessor.tee.simulated import code_measurement
from enclave import cli
from enclave.anvil import DEV_KEYS
from enclave.keys import KeyFailure, encrypt_input, rotate, set_agent_secrets
from enclave.stack import DEPLOYER_KEY, Stack
from enclave.usage import ask_many, register, results, wait_for
from protocol.envelope import MAGIC
from protocol.results import NotProcessedReason, Status
from tests.forging import submit_signed_by
from tests.state import fresh_state_dir

pytestmark = pytest.mark.chain

SECRET = "sk-live-" + secrets.token_hex(16)  # what must never leave a worker in the clear
OWNER_SECRET = "owner-" + secrets.token_hex(16)

SECRET_AGENT = """export default async function main(input, ctx) {
  return { name: input.text, keyLength: ctx.secrets.API_KEY.length,
           keyHash: ctx.hash.keccak256(ctx.secrets.API_KEY),
           owner: ctx.secrets.OWNER_KEY ? ctx.hash.keccak256(ctx.secrets.OWNER_KEY) : null };
}"""
COUNTER_AGENT = """export default async function main(input, ctx) {
  const n = Number(ctx.storage.get("count") ?? "0") + 1;
  ctx.storage.set("count", String(n));
  return { n, owner: ctx.secrets.OWNER_KEY ? ctx.hash.keccak256(ctx.secrets.OWNER_KEY) : null };
}"""


def keccak_hex(text: str) -> str:
    return "0x" + Web3.keccak(text=text).hex().removeprefix("0x")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack(state_dir=fresh_state_dir("e2e-keys"), workers=2) as running:
        yield running


def gatekeeper(stack: Stack) -> str:
    return stack.url("gatekeeper")


def test_sealed_input_secret_reaches_only_the_agent(stack: Stack) -> None:
    assert stack.deployment is not None
    agent = register(stack, SECRET_AGENT)
    envelope = encrypt_input(gatekeeper(stack), stack.web3(), stack.deployment, agent, {"API_KEY": SECRET}, b"bob")
    assert SECRET.encode() not in envelope
    [request_id] = ask_many(stack, agent, [envelope])
    status, output = wait_for(stack, [request_id])[request_id]
    assert status == Status.OK
    assert json.loads(output) == {"name": "bob", "keyLength": len(SECRET), "keyHash": keccak_hex(SECRET), "owner": None}


def test_cli_seals_secrets_and_shows_the_epochs(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    agent = register(stack, SECRET_AGENT)
    state = ["--state-dir", str(stack.state_dir)]
    assert cli.main(["secrets", "encrypt", "--agent", str(agent), "--input", "cli", f"API_KEY={SECRET}", *state]) == 0
    envelope = bytes.fromhex(capsys.readouterr().out.strip()[2:])
    [request_id] = ask_many(stack, agent, [envelope])
    status, output = wait_for(stack, [request_id])[request_id]
    assert (status, json.loads(output)["name"], json.loads(output)["keyHash"]) == (Status.OK, "cli", keccak_hex(SECRET))
    assert cli.main(["keys", "show", *state]) == 0
    assert "epoch 1: signer 0x" in capsys.readouterr().out
    assert cli.main(["status", *state]) == 0
    printed = capsys.readouterr().out
    assert "bridge" in printed
    assert "TEE   SIMULATED" in printed


def test_envelope_for_another_agent_is_bad_input(stack: Stack) -> None:
    assert stack.deployment is not None
    agent = register(stack, SECRET_AGENT)
    other = register(stack, SECRET_AGENT)
    envelope = encrypt_input(gatekeeper(stack), stack.web3(), stack.deployment, other, {"API_KEY": SECRET})
    [request_id, garbled] = ask_many(stack, agent, [envelope, MAGIC + b"not an envelope"])
    outputs = wait_for(stack, [request_id, garbled])
    assert outputs[request_id][0] == Status.BAD_INPUT
    assert b"cannot be opened" in outputs[request_id][1]
    assert outputs[garbled][0] == Status.BAD_INPUT
    assert outputs[garbled][1].startswith(b"malformed secret envelope")


def test_owner_settings_are_sealed_and_only_the_owner_may_set_them(stack: Stack) -> None:
    assert stack.deployment is not None
    agent = register(stack, SECRET_AGENT)
    with pytest.raises(KeyFailure, match="must be signed by its owner"):
        set_agent_secrets(gatekeeper(stack), stack.web3(), stack.deployment, DEV_KEYS[4], agent, {"OWNER_KEY": "x"})
    set_agent_secrets(
        gatekeeper(stack), stack.web3(), stack.deployment, DEPLOYER_KEY, agent, {"OWNER_KEY": OWNER_SECRET}
    )
    envelope = encrypt_input(gatekeeper(stack), stack.web3(), stack.deployment, agent, {"API_KEY": SECRET})
    [request_id] = ask_many(stack, agent, [envelope])
    status, output = wait_for(stack, [request_id])[request_id]
    assert status == Status.OK
    assert json.loads(output)["owner"] == keccak_hex(OWNER_SECRET)


def test_an_older_signed_settings_upload_is_refused(stack: Stack) -> None:
    """A host that kept an owner's earlier signed upload cannot put it back over a newer one."""
    assert stack.deployment is not None
    agent = register(
        stack, "export default async (input, ctx) => ({ owner: ctx.hash.keccak256(ctx.secrets.OWNER_KEY) });"
    )
    uploads: list[dict[str, object]] = []
    original_put = httpx.put

    def recording_put(url: str, json: dict[str, object], timeout: float) -> httpx.Response:
        uploads.append(json)
        return original_put(url, json=json, timeout=timeout)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("enclave.keys.httpx.put", recording_put)
        set_agent_secrets(
            gatekeeper(stack), stack.web3(), stack.deployment, DEPLOYER_KEY, agent, {"OWNER_KEY": "v1"}, 1
        )
    set_agent_secrets(gatekeeper(stack), stack.web3(), stack.deployment, DEPLOYER_KEY, agent, {"OWNER_KEY": "v2"}, 2)

    replayed = httpx.put(f"{gatekeeper(stack)}/v1/agents/{agent}/secrets", json=uploads[0], timeout=10)
    assert replayed.status_code == 403, replayed.text
    assert "not newer than the stored 2" in replayed.json()["detail"]
    with pytest.raises(KeyFailure, match="not newer"):
        set_agent_secrets(
            gatekeeper(stack), stack.web3(), stack.deployment, DEPLOYER_KEY, agent, {"OWNER_KEY": "v0"}, 2
        )
    [request_id] = ask_many(stack, agent, [b"which"])
    status, output = wait_for(stack, [request_id])[request_id]
    assert status == Status.OK
    assert json.loads(output)["owner"] == keccak_hex("v2")


def test_state_survives_workers_and_rotation_with_requests_in_flight(stack: Stack) -> None:
    assert stack.deployment is not None
    w3 = stack.web3()
    counter = register(stack, COUNTER_AGENT)
    echo = register(stack, "export default async (input) => input.bytes;")
    set_agent_secrets(gatekeeper(stack), w3, stack.deployment, DEPLOYER_KEY, counter, {"OWNER_KEY": OWNER_SECRET})
    sealed_before = encrypt_input(gatekeeper(stack), w3, stack.deployment, echo, {"API_KEY": SECRET}, b"sealed early")

    counts = [_one(stack, counter) for _ in range(3)]  # sequential: any worker may serve each
    assert [c["n"] for c in counts] == [1, 2, 3]
    assert counts[0]["owner"] == keccak_hex(OWNER_SECRET)

    in_flight = ask_many(stack, echo, [f"flight-{i}".encode() for i in range(8)])
    epoch = rotate(w3, stack.deployment, DEPLOYER_KEY)
    assert epoch == 2
    after = ask_many(stack, echo, [f"after-{i}".encode() for i in range(4)] + [sealed_before])
    outputs = wait_for(stack, in_flight + after)
    assert all(status == Status.OK for status, _ in outputs.values()), "no request lost across the rotation"
    assert outputs[after[-1]][1] == b"sealed early", "input sealed to epoch 1 still opens in epoch 2"

    later = _one(stack, counter)
    assert later == {"n": 4, "owner": keccak_hex(OWNER_SECRET)}, "state and settings re-encrypted, still readable"

    # Even with epoch 1's key in hand (here: taken from the simulated TEE's files, as a machine's
    # operator could), a result for a request made after the rotation is refused.
    [fresh] = ask_many(stack, counter, [b"x"])
    _assert_old_key_refused(stack, fresh)


def _one(stack: Stack, agent: int) -> dict[str, object]:
    [request_id] = ask_many(stack, agent, [b""])
    status, output = wait_for(stack, [request_id])[request_id]
    assert status == Status.OK, output
    value: dict[str, object] = json.loads(output)
    return value


def _assert_old_key_refused(stack: Stack, request_id: int) -> None:
    assert stack.deployment is not None
    state = stack.state_dir / "gatekeeper"
    key = sealing_key((state / "cpu-secret").read_bytes(), code_measurement())
    masters = json.loads(unseal(key, (state / "master-keys.sealed").read_bytes()))
    domain = KeyDomain(stack.deployment.chain_id, stack.deployment.addresses["TeeRegistry"])
    old = derive_cluster_key(bytes.fromhex(masters["1"]), 1, domain)
    reasons = submit_signed_by(stack, old.signing_key, 1, request_id, b"old key", DEV_KEYS[4])
    if reasons:  # the honest result may have landed first, then the forged one is a duplicate
        assert reasons in ([NotProcessedReason.STALE_EPOCH], [NotProcessedReason.UNKNOWN_REQUEST])
    assert results(stack).get(request_id, [(None, b"")])[0][1] != b"old key"
    status, _ = wait_for(stack, [request_id])[request_id]
    assert status == Status.OK


def test_no_plaintext_secret_anywhere(stack: Stack) -> None:
    """Runs last in this module: after secrets went through every path, look everywhere."""
    assert stack.deployment is not None
    w3 = stack.web3()
    needles = [SECRET.encode(), OWNER_SECRET.encode()]
    haystacks: dict[str, bytes] = {}
    for block_number in range(stack.deployment.start_block, w3.eth.block_number + 1):
        block = w3.eth.get_block(block_number, full_transactions=True)
        for tx in block["transactions"]:
            if not isinstance(tx, bytes):  # full transactions, not hashes
                haystacks[f"tx {tx['hash'].hex()}"] = bytes(tx["input"])
    for log in w3.eth.get_logs({"fromBlock": stack.deployment.start_block, "toBlock": "latest"}):
        haystacks[f"log {log['transactionHash'].hex()}"] = bytes(log["data"])
    for path in stack.state_dir.rglob("*"):
        if path.is_file():
            haystacks[str(path)] = path.read_bytes()
    for name, service in stack.services.items():
        for route in ("/v1/info", "/v1/status", "/healthz"):
            haystacks[f"{name}{route}"] = httpx.get(service.url + route, timeout=5).content
    for request_id in results(stack):
        haystacks[f"bridge request {request_id}"] = httpx.get(
            f"{stack.url('bridge')}/v1/requests/{request_id}", timeout=5
        ).content
        for route in (f"/requests/{request_id}", f"/api/requests/{request_id}"):
            haystacks[f"dashboard {route}"] = httpx.get(stack.url("web") + route, timeout=10).content
    for route in ("/", "/requests", "/agents", "/workers", "/keys", "/api/overview", "/api/agents", "/api/services"):
        haystacks[f"dashboard {route}"] = httpx.get(stack.url("web") + route, timeout=10).content
    assert len(haystacks) > 20
    leaks = [name for name, data in haystacks.items() if any(n in data for n in needles)]
    assert leaks == []
