"""The user's side of the key model: sealing secrets to an agent, owners' settings, rotation."""

from __future__ import annotations

import time

import httpx
from eth_account import Account
from web3 import Web3

from enclave.errors import EnclaveError
from protocol.deployment import Deployment, send
from protocol.envelope import seal_for, seal_secrets, seal_to
from protocol.statements import agent_key_digest, agent_secrets_digest, sign_statement, statement_signer
from protocol.wire import to_hex


class KeyFailure(EnclaveError):
    """A key could not be fetched, verified or used."""


def agent_public_key(gatekeeper_url: str, w3: Web3, deployment: Deployment, agent_id: int) -> tuple[int, bytes]:
    """The agent's encryption key, checked against the epoch's signer that the chain publishes."""
    try:
        served = httpx.get(f"{gatekeeper_url}/v1/agents/{agent_id}/encryption-key", timeout=10).json()
    except (httpx.HTTPError, ValueError) as err:
        raise KeyFailure(f"cannot fetch the key of agent {agent_id} from {gatekeeper_url}: {err}") from err
    epoch, public_key = int(served["epoch"]), bytes.fromhex(served["publicKey"][2:])
    on_chain = deployment.contract(w3, "TeeRegistry").functions.getEpoch(epoch).call()[0]
    signer = statement_signer(agent_key_digest(agent_id, epoch, public_key), bytes.fromhex(served["signature"][2:]))
    if signer != on_chain:
        raise KeyFailure(f"the key served for agent {agent_id} is signed by {signer}, not epoch {epoch}'s {on_chain}")
    return epoch, public_key


def encrypt_input(
    gatekeeper_url: str, w3: Web3, deployment: Deployment, agent_id: int, secrets: dict[str, str], input_: bytes = b""
) -> bytes:
    """A request input whose secrets only a worker of the cluster can read."""
    epoch, public_key = agent_public_key(gatekeeper_url, w3, deployment, agent_id)
    return seal_secrets(public_key, epoch, secrets, input_)


def functions_secrets_purpose(chain_id: int, adapter: str, owner: str) -> str:
    """What compat/chainlink-functions.js checks a request's secrets were sealed for."""
    return f"chainlink-functions:{chain_id}:{adapter.lower()}:{owner.lower()}"


def seal_functions_secrets(
    gatekeeper_url: str,
    w3: Web3,
    deployment: Deployment,
    agent_id: int,
    adapter: str,
    owner: str,
    secrets: dict[str, str],
) -> bytes:
    """A Chainlink Functions secrets reference (`FunctionsRequest.addSecretsReference`) that only
    the runtime agent `agent_id` opens, and only for requests of `owner`'s subscriptions on
    `adapter` on this chain."""
    epoch, public_key = agent_public_key(gatekeeper_url, w3, deployment, agent_id)
    purpose = functions_secrets_purpose(w3.eth.chain_id, adapter, owner)
    return seal_for(public_key, epoch, secrets, purpose)


def set_agent_secrets(
    gatekeeper_url: str,
    w3: Web3,
    deployment: Deployment,
    owner_key: str,
    agent_id: int,
    secrets: dict[str, str],
    version: int | None = None,
) -> int:
    """Seals an agent's settings (like Phala's contract settings) and hands them to the cluster.

    `version` must exceed the stored one; by default it is the time in milliseconds, which goes
    up from one upload to the next.
    """
    epoch, public_key = agent_public_key(gatekeeper_url, w3, deployment, agent_id)
    sealed = seal_to(public_key, secrets)
    version = time.time_ns() // 1_000_000 if version is None else version
    digest = agent_secrets_digest(agent_id, epoch, version, sealed)
    signature = sign_statement(Account.from_key(owner_key).key, digest)
    reply = httpx.put(
        f"{gatekeeper_url}/v1/agents/{agent_id}/secrets",
        json={"epoch": epoch, "version": version, "sealed": to_hex(sealed), "signature": to_hex(signature)},
        timeout=10,
    )
    if reply.status_code != 200:
        raise KeyFailure(f"the gatekeeper refused the secrets: {reply.json().get('detail', reply.text)}")
    return epoch


def rotate(w3: Web3, deployment: Deployment, owner_key: str, timeout: float = 60.0) -> int:
    """Asks for a new key epoch (TeeRegistry owner only) and waits until a gatekeeper publishes it."""
    registry = deployment.contract(w3, "TeeRegistry")
    before = int(registry.functions.currentEpoch().call())
    send(w3, Account.from_key(owner_key), registry.functions.requestRotation())
    deadline = time.monotonic() + timeout
    while (epoch := int(registry.functions.currentEpoch().call())) == before:
        if time.monotonic() > deadline:
            raise KeyFailure(f"no gatekeeper published epoch {before + 1} within {timeout:.0f} s")
        time.sleep(0.2)
    return epoch
