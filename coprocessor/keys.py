"""The key hierarchy: master key -> cluster key per epoch -> per-agent keys.

Every derivation is HKDF-SHA256 (RFC 5869) under its own label, so keys of different purposes
or epochs are independent even though they come from one master key. Key material is held in
`bytes` and never formatted into a log line or a response: `ClusterKey.__repr__` hides it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from eth_account import Account
from nacl.public import PrivateKey

from protocol.kdf import hkdf

LABEL_PREFIX = b"enclave-agents/v1/"
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _secp256k1_key(seed: bytes, info: bytes) -> bytes:
    """A valid secp256k1 private key from HKDF; re-derives in the (2^-128) case it is out of range."""
    for attempt in range(256):
        candidate = hkdf(seed, info + b"/" + str(attempt).encode())
        if 0 < int.from_bytes(candidate, "big") < SECP256K1_ORDER:
            return candidate
    raise ValueError("no valid secp256k1 key derived")  # unreachable in practice


@dataclass(frozen=True)
class ClusterKey:
    """The keys of one epoch that every worker of the cluster holds."""

    epoch: int
    signing_key: bytes = field(repr=False)  # secp256k1: signs results
    encryption_key: bytes = field(repr=False)  # X25519: opens what requesters seal to the cluster

    @cached_property  # asked for every batch a worker co-signs; deriving it is a key's worth of work
    def signer_address(self) -> str:
        return str(Account.from_key(self.signing_key).address)

    @property
    def encryption_public_key(self) -> bytes:
        return bytes(PrivateKey(self.encryption_key).public_key)

    def to_secret_dict(self) -> dict[str, str | int]:
        """For sealing to a worker only."""
        return {"epoch": self.epoch, "signingKey": self.signing_key.hex(), "encryptionKey": self.encryption_key.hex()}

    @classmethod
    def from_secret_dict(cls, data: dict[str, str | int]) -> ClusterKey:
        return cls(
            epoch=int(data["epoch"]),
            signing_key=bytes.fromhex(str(data["signingKey"])),
            encryption_key=bytes.fromhex(str(data["encryptionKey"])),
        )


@dataclass(frozen=True)
class KeyDomain:
    """Where a cluster's keys serve: one chain's TeeRegistry. Cluster keys are derived under it,
    so a master key that reached the gatekeepers of another chain or registry derives nothing
    that this one's workers sign with or agents' secrets are sealed to."""

    chain_id: int
    registry: str

    @property
    def label(self) -> bytes:
        return f"chain:{self.chain_id}/registry:{self.registry.lower()}".encode()


def derive_cluster_key(master_key: bytes, epoch: int, domain: KeyDomain) -> ClusterKey:
    label = LABEL_PREFIX + b"cluster/" + domain.label + b"/epoch:" + str(epoch).encode()
    return ClusterKey(
        epoch=epoch,
        signing_key=_secp256k1_key(master_key, label + b"/signing"),
        encryption_key=hkdf(master_key, label + b"/encryption"),
    )


@dataclass(frozen=True)
class AgentKeys:
    """An agent's keys in one epoch: sealing secrets to it, and encrypting its stored state."""

    agent_id: int
    epoch: int
    encryption_key: bytes = field(repr=False)  # X25519: requesters and owners seal secrets to it
    storage_key: bytes = field(repr=False)  # XSalsa20-Poly1305: the agent's ctx.storage

    @property
    def encryption_public_key(self) -> bytes:
        return bytes(PrivateKey(self.encryption_key).public_key)


def derive_agent_keys(cluster: ClusterKey, agent_id: int) -> AgentKeys:
    """Per-agent keys from the cluster key: any worker holding the cluster key derives them."""
    seed = cluster.signing_key + cluster.encryption_key
    label = LABEL_PREFIX + f"agent:{agent_id}/epoch:{cluster.epoch}".encode()
    return AgentKeys(
        agent_id=agent_id,
        epoch=cluster.epoch,
        encryption_key=hkdf(seed, label + b"/encryption"),
        storage_key=hkdf(seed, label + b"/storage"),
    )
