"""Cluster keys are derived for one chain's TeeRegistry: the same master key gives unrelated
keys on another chain or registry."""

from __future__ import annotations

from coprocessor.keys import KeyDomain, derive_agent_keys, derive_cluster_key

MASTER = bytes(range(32))
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def test_the_same_master_key_derives_unrelated_keys_for_another_chain_or_registry() -> None:
    home = derive_cluster_key(MASTER, 1, KeyDomain(31337, REGISTRY))
    assert derive_cluster_key(MASTER, 1, KeyDomain(31337, REGISTRY.lower())) == home, "the address's case is no part"
    for elsewhere in (KeyDomain(1337, REGISTRY), KeyDomain(31337, "0x" + "11" * 20)):
        other = derive_cluster_key(MASTER, 1, elsewhere)
        assert other.signer_address != home.signer_address
        assert other.encryption_key != home.encryption_key
        assert derive_agent_keys(other, 1).encryption_key != derive_agent_keys(home, 1).encryption_key
