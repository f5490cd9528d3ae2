"""Agents from the developer's side: simulate one locally, deploy it, list what is deployed."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils.crypto import keccak
from web3 import Web3
from web3.logs import DISCARD

from coprocessor.runtime import Execution, Limits, RunContext, Sandbox, StorageGrant
from coprocessor.runtime.engine import with_output_types
from coprocessor.worker.code import CodeStore
from enclave.errors import EnclaveError
from protocol.deployment import Deployment, send
from protocol.hexes import to_hex
from protocol.kdf import hkdf
from protocol.manifest import Manifest, parse_manifest, with_manifest
from protocol.private_logs import owner_logs_key

# A fixed development key for simulated ctx.storage: simulation is not confidential.
SIMULATION_STORAGE_KEY = hkdf(b"enclave-agents simulation", b"storage")


def parse_input(text: str) -> bytes:
    """0x hex is bytes; anything else (JSON included) is its UTF-8 text."""
    if text.startswith("0x"):
        try:
            return bytes.fromhex(text[2:])
        except ValueError as err:
            raise EnclaveError(f"--input starts with 0x but is not hex: {err}") from err
    return text.encode()


@dataclass
class Simulation:
    execution: Execution
    limits: Limits
    manifest: Manifest


def simulate(
    path: Path,
    input_: bytes,
    secrets: dict[str, str] | None = None,
    allow_hosts: tuple[str, ...] = (),
    state_dir: Path = Path(".state/simulate"),
    defaults: Limits | None = None,
    agents: dict[int, Path] | None = None,
    allow_private_networks: bool = False,
    agent_id: int = 0,
    consumer: str = "",
    chain_id: int = 0,
    unseal_keys: dict[int, bytes] | None = None,
) -> Simulation:
    """Runs an agent as a worker would: the same sandbox process, manifest and limits.

    `agents` maps the ids that `ctx.callAgent` may call to local files, for simulating
    composition without a chain. `consumer`, `chain_id` and `unseal_keys` stand for the request
    at hand and the agent's keys, as a worker gives them to `ctx.request` and `ctx.unseal`.
    """
    code = path.read_text()
    manifest = parse_manifest(code)
    manifest = replace(manifest, allow_hosts=manifest.allow_hosts + tuple(allow_hosts))
    limits = manifest.apply(defaults or Limits())
    storage = StorageGrant(
        path=str(state_dir / "cluster.sqlite"), agent_id=agent_id, epoch=1, keys={1: SIMULATION_STORAGE_KEY}
    )
    state_dir.mkdir(parents=True, exist_ok=True)
    context = RunContext(
        agent_id=agent_id,
        code_hash=to_hex(keccak(code.encode())),
        secrets=secrets or {},
        storage=storage,
        allow_hosts=manifest.allow_hosts,
        allow_private_networks=allow_private_networks,
        consumer=consumer.lower(),
        chain_id=chain_id,
        unseal_keys=unseal_keys or {},
    )
    with Sandbox(size=1) as sandbox:
        execution = sandbox.execute(
            code, input_, limits, context, local_resolver(agents or {}, allow_hosts, state_dir, defaults)
        )
    return Simulation(execution=with_output_types(execution, manifest), limits=limits, manifest=manifest)


def local_resolver(
    agents: dict[int, Path], allow_hosts: tuple[str, ...], state_dir: Path, defaults: Limits | None
) -> Any:
    def resolve(agent_id: int) -> dict[str, Any]:
        if agent_id not in agents:
            return {"error": f"no such agent (simulate with --agent {agent_id}=FILE)"}
        code = agents[agent_id].read_text()
        manifest = parse_manifest(code)
        storage = StorageGrant(
            path=str(state_dir / "cluster.sqlite"), agent_id=agent_id, epoch=1, keys={1: SIMULATION_STORAGE_KEY}
        )
        context = RunContext(
            agent_id=agent_id,
            code_hash=to_hex(keccak(code.encode())),
            storage=storage,
            allow_hosts=manifest.allow_hosts + allow_hosts,
        )
        limits = manifest.apply(defaults or Limits())
        return {"codeHash": context.code_hash, "code": code, "limits": limits.as_dict(), "context": context.to_wire()}

    return resolve


def prepare_code(
    path: Path, name: str | None, allow_hosts: list[str], private_logs_owner_key: str | None = None
) -> str:
    """The code to publish: the file, with its manifest line updated by the deploy flags.
    `private_logs_owner_key` makes the logs private to the owner of that Ethereum key."""
    code = path.read_text()
    manifest = parse_manifest(code)
    if name is None and not allow_hosts and private_logs_owner_key is None:
        return code
    logs_key = manifest.logs_key
    if private_logs_owner_key is not None:
        logs_key = bytes(owner_logs_key(Account.from_key(private_logs_owner_key).key).public_key)
    changed = replace(
        manifest,
        name=name or manifest.name,
        allow_hosts=tuple(dict.fromkeys(manifest.allow_hosts + tuple(allow_hosts))),
        logs_key=logs_key,
    )
    return with_manifest(code, changed)


def deploy(w3: Web3, deployment: Deployment, key: str, code: str, price: int) -> tuple[int, bytes]:
    router = deployment.contract(w3, "AgentRouter")
    receipt = send(w3, Account.from_key(key), router.functions.registerAgent(code.encode(), price, False))
    event = router.events.AgentRegistered().process_receipt(receipt, errors=DISCARD)[0]["args"]
    return int(event["agentId"]), bytes(event["codeHash"])


def list_agents(w3: Web3, deployment: Deployment) -> list[dict[str, Any]]:
    router = deployment.contract(w3, "AgentRouter")
    store = CodeStore(w3, router, deployment.start_block)
    agents = []
    for agent_id in range(1, int(router.functions.agentCount().call()) + 1):
        code_hash, price, version, paused, restricted, owner, _ = router.functions.getAgent(agent_id).call()
        manifest = parse_manifest(store.get(bytes(code_hash)))
        agents.append(
            {
                "id": agent_id,
                "name": manifest.name,
                "version": version,
                "price": price,
                "paused": paused,
                "restricted": restricted,
                "owner": owner,
                "codeHash": to_hex(bytes(code_hash)),
                "allowHosts": list(manifest.allow_hosts),
            }
        )
    return agents
