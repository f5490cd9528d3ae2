"""What one run may reach besides its input: secrets, its agent's sealed storage and the network.

It crosses the pipe from the worker to its sandbox child (both inside the TEE) and nothing
else: `repr` hides the secrets and keys, and the worker never logs a run context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StorageGrant:
    """Access to one agent's entries in the cluster store, with the keys of the epochs at hand."""

    path: str
    agent_id: int
    epoch: int
    keys: dict[int, bytes] = field(repr=False)

    def to_wire(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "agentId": self.agent_id,
            "epoch": self.epoch,
            "keys": {str(e): k.hex() for e, k in self.keys.items()},
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> StorageGrant:
        return cls(
            path=data["path"],
            agent_id=int(data["agentId"]),
            epoch=int(data["epoch"]),
            keys={int(e): bytes.fromhex(k) for e, k in data["keys"].items()},
        )


@dataclass(frozen=True)
class RunContext:
    agent_id: int = 0
    code_hash: str = ""
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    storage: StorageGrant | None = None
    allow_hosts: tuple[str, ...] = ()
    # The operator's, not the agent's: lets `ctx.fetch` reach loopback and private addresses
    # (local development, where the APIs an agent calls run on the same machine). Off, fetch
    # refuses them, so an agent cannot reach the worker, the chain node or the cloud metadata.
    allow_private_networks: bool = False
    # The request at hand, from its commitment: the contract that asked (0x, lowercase) on which
    # chain; empty when another agent calls.
    consumer: str = ""
    chain_id: int = 0
    # The agent's own X25519 keys by epoch, for `ctx.unseal` (secrets sealed for a purpose).
    unseal_keys: dict[int, bytes] = field(default_factory=dict, repr=False)

    def to_wire(self) -> dict[str, Any]:
        return {
            "agentId": self.agent_id,
            "codeHash": self.code_hash,
            "consumer": self.consumer,
            "chainId": self.chain_id,
            "unsealKeys": {str(e): k.hex() for e, k in self.unseal_keys.items()},
            "secrets": self.secrets,
            "storage": self.storage.to_wire() if self.storage else None,
            "allowHosts": list(self.allow_hosts),
            "allowPrivateNetworks": self.allow_private_networks,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any] | None) -> RunContext:
        if not data:
            return cls()
        storage = data.get("storage")
        return cls(
            agent_id=int(data.get("agentId") or 0),
            code_hash=str(data.get("codeHash") or ""),
            consumer=str(data.get("consumer") or ""),
            chain_id=int(data.get("chainId") or 0),
            unseal_keys={int(e): bytes.fromhex(k) for e, k in (data.get("unsealKeys") or {}).items()},
            secrets=dict(data.get("secrets") or {}),
            storage=StorageGrant.from_wire(storage) if storage else None,
            allow_hosts=tuple(data.get("allowHosts") or ()),
            # Only a JSON true turns it on: anything else (absent, "false", 1) keeps the default.
            allow_private_networks=data.get("allowPrivateNetworks") is True,
        )
