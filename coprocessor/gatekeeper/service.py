"""The gatekeeper: keeps the master key sealed, derives epoch keys, provisions attested workers."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.utils import random
from web3 import Web3
from web3.exceptions import Web3Exception

from coprocessor import metrics
from coprocessor.cluster_store import ClusterStore
from coprocessor.errors import AttestationError, CoprocessorError
from coprocessor.keys import ClusterKey, KeyDomain, derive_agent_keys, derive_cluster_key
from coprocessor.sealing import seal, unseal, write_private
from coprocessor.tee.base import Quote, QuoteVerifier, TeeBackend, identity_report_data
from protocol.deployment import Deployment, send
from protocol.envelope import EnvelopeError, open_sealed_secrets, seal_to
from protocol.hexes import to_hex
from protocol.statements import agent_key_digest, agent_secrets_digest, sign_statement, statement_signer

log = logging.getLogger(__name__)


class Gatekeeper:
    def __init__(
        self,
        w3: Web3,
        deployment: Deployment,
        account: LocalAccount,
        tee: TeeBackend,
        verifier: QuoteVerifier,
        state_dir: Path,
        store: ClusterStore,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.tee = tee
        self.verifier = verifier
        self.registry = deployment.contract(w3, "TeeRegistry")
        self.router = deployment.contract(w3, "AgentRouter")
        # This chain's registry: the cluster keys are derived for it, and shared with its peers only.
        self.domain = KeyDomain(deployment.chain_id, self.registry.address)
        self.store = store
        self._master_path = state_dir / "master-keys.sealed"
        # One master key per epoch: a rotation makes a new one; the old ones still open what
        # was sealed before it, until it is re-encrypted.
        self._masters: dict[int, bytes] = self._load_masters()
        self._lock = threading.RLock()
        self.provisioned = 0
        # The identity a peer gatekeeper seals master keys to; it lives in memory only.
        self._identity = PrivateKey.generate()
        self.quote = tee.quote(identity_report_data(bytes(self._identity.public_key)))

    def _load_masters(self) -> dict[int, bytes]:
        if not self._master_path.exists():
            return {}
        data = json.loads(unseal(self.tee.sealing_key(), self._master_path.read_bytes()))
        return {int(epoch): bytes.fromhex(key) for epoch, key in data.items()}

    def _save_masters(self) -> None:
        data = json.dumps({str(epoch): key.hex() for epoch, key in self._masters.items()}).encode()
        write_private(self._master_path, seal(self.tee.sealing_key(), data))

    def create_genesis_master(self) -> None:
        """The first gatekeeper of a deployment makes the master key of epoch 1."""
        self._masters = {1: random(32)}
        self._save_masters()
        log.info("created the master key of epoch 1, sealed at %s", self._master_path)

    @property
    def has_masters(self) -> bool:
        return bool(self._masters)

    def current_epoch(self) -> int:
        return int(self.registry.functions.currentEpoch().call())

    def cluster_key(self, epoch: int | None = None) -> ClusterKey:
        epoch = epoch if epoch is not None else self.current_epoch()
        if epoch not in self._masters:
            raise CoprocessorError(f"this gatekeeper holds no master key for epoch {epoch}")
        return derive_cluster_key(self._masters[epoch], epoch, self.domain)

    def cluster_keys(self) -> list[ClusterKey]:
        """The current epoch's key and the previous one's: workers answer requests of both."""
        current = self.current_epoch()
        return [self.cluster_key(e) for e in (current, current - 1) if e in self._masters]

    def ensure_epoch(self) -> int:
        """Publishes epoch 1 on a fresh deployment; otherwise checks that our master key is the
        one the chain knows (a gatekeeper with another master key must not provision anyone)."""
        epoch = self.current_epoch()
        if epoch == 0:
            if not self.has_masters:
                self.create_genesis_master()
            key = self.cluster_key(1)
            call = self.registry.functions.publishEpoch(1, key.signer_address, key.encryption_public_key)
            send(self.w3, self.account, call)
            log.info("published epoch 1, signer %s", key.signer_address)
            return 1
        on_chain = self.registry.functions.getEpoch(epoch).call()
        if on_chain[0] != self.cluster_key(epoch).signer_address:
            raise CoprocessorError(f"epoch {epoch} on-chain signer {on_chain[0]} is not derived from this master key")
        return epoch

    def provision(self, quote: Quote, identity_public_key: bytes) -> tuple[int, bytes]:
        """Seals the current cluster key to a worker whose quote checks out."""
        measurement = self.verifier.verify(quote)
        if quote.report_data != identity_report_data(identity_public_key):
            raise AttestationError("the quote's report data does not bind this identity key")
        if not self.registry.functions.isMeasurementAllowed(measurement).call():
            raise AttestationError(f"measurement 0x{measurement.hex()} is not allowed in TeeRegistry")
        keys = self.cluster_keys()
        payload = json.dumps({"keys": [k.to_secret_dict() for k in keys]}).encode()
        sealed = SealedBox(PublicKey(identity_public_key)).encrypt(payload)
        self.provisioned += 1
        metrics.PROVISIONED.inc()
        metrics.GATEKEEPER_EPOCH.set(keys[0].epoch)
        log.info("provisioned epoch %d to a worker with measurement 0x%s", keys[0].epoch, measurement.hex()[:16])
        return keys[0].epoch, bytes(sealed)

    # -- agents' keys and secrets -----------------------------------------------------------------

    def agent_public_key(self, agent_id: int) -> dict[str, Any]:
        """The agent's encryption key of the current epoch, signed by the epoch's cluster key."""
        cluster = self.cluster_key()
        public_key = derive_agent_keys(cluster, agent_id).encryption_public_key
        signature = sign_statement(cluster.signing_key, agent_key_digest(agent_id, cluster.epoch, public_key))
        return {
            "agentId": agent_id,
            "epoch": cluster.epoch,
            "publicKey": to_hex(public_key),
            "signer": cluster.signer_address,
            "signature": to_hex(signature),
        }

    def set_agent_secrets(self, agent_id: int, epoch: int, version: int, sealed: bytes, signature: bytes) -> None:
        """Stores an agent's sealed settings; only its owner on-chain may set them, each upload
        with a higher version than the one stored."""
        owner = self.router.functions.getAgent(agent_id).call()[5]
        signer = statement_signer(agent_secrets_digest(agent_id, epoch, version, sealed), signature)
        if signer != owner:
            raise AttestationError(f"secrets of agent {agent_id} must be signed by its owner {owner}, not {signer}")
        stored = self.store.secrets_version(agent_id)
        if stored is not None and version <= stored:
            raise AttestationError(
                f"settings version {version} of agent {agent_id} is not newer than the stored {stored}: "
                "an older upload cannot replace a newer one"
            )
        agent_keys = derive_agent_keys(self.cluster_key(epoch), agent_id)
        try:
            open_sealed_secrets(sealed, agent_keys.encryption_key)  # refuse what no worker could open
        except EnvelopeError as err:
            raise AttestationError(str(err)) from err
        self.store.put_secrets(agent_id, epoch, sealed, version)

    def info(self) -> dict[str, Any]:
        epoch = self.current_epoch()
        key = self.cluster_key(epoch) if epoch in self._masters else None
        return {
            "role": "gatekeeper",
            "backend": self.tee.name,
            "measurement": to_hex(self.tee.measurement),
            "address": self.account.address,
            "epoch": epoch,
            # False for a moment after a peer rotated, until this gatekeeper fetched the new key.
            "holdsCurrentKey": key is not None,
            "signer": key.signer_address if key else None,
            "encryptionPublicKey": to_hex(key.encryption_public_key) if key else None,
            "epochsHeld": sorted(self._masters),
            "workersProvisioned": self.provisioned,
        }

    # -- sharing the master keys with peer gatekeepers ------------------------------------------

    def _check_peer(self, quote: Quote, identity_public_key: bytes) -> None:
        measurement = self.verifier.verify(quote)
        if quote.report_data != identity_report_data(identity_public_key):
            raise AttestationError("the quote's report data does not bind this identity key")
        if not self.registry.functions.isMeasurementAllowed(measurement).call():
            raise AttestationError(f"measurement 0x{measurement.hex()} is not allowed in TeeRegistry")

    def share_masters(
        self, quote: Quote, identity_public_key: bytes, address: str, signature: bytes, domain: KeyDomain
    ) -> bytes:
        """Seals every master key to a peer that is attested, serves this chain's registry, and
        is a gatekeeper there. (A gatekeeper's account key is the host's: without the chain in
        the statement, its host could start an honest gatekeeper for a registry of its own
        that names the same account, and have it provision workers for agents of its own.)"""
        self._check_peer(quote, identity_public_key)
        if domain.label != self.domain.label:
            raise AttestationError(
                f"the peer serves chain {domain.chain_id}'s registry {domain.registry}; this gatekeeper serves "
                f"chain {self.domain.chain_id}'s registry {self.domain.registry}"
            )
        if statement_signer(peer_identity_digest(identity_public_key, domain), signature) != address:
            raise AttestationError("the identity key is not signed by the gatekeeper account it names")
        if not self.registry.functions.isGatekeeper(address).call():
            raise AttestationError(f"{address} is not a gatekeeper in TeeRegistry")
        with self._lock:
            payload = json.dumps({str(e): k.hex() for e, k in self._masters.items()}).encode()
        log.info("shared the master keys with gatekeeper %s", address)
        return bytes(SealedBox(PublicKey(identity_public_key)).encrypt(payload))

    def join(self, peers: list[str]) -> None:
        """Fetches the master keys from the first peer that gives them."""
        identity = bytes(self._identity.public_key)
        body = {
            "quote": self.quote.to_dict(),
            "identityPublicKey": to_hex(identity),
            "address": self.account.address,
            "chainId": self.domain.chain_id,
            "registry": self.domain.registry,
            "signature": to_hex(sign_statement(self.account.key, peer_identity_digest(identity, self.domain))),
        }
        reasons = []
        for url in peers:
            try:
                reply = httpx.post(f"{url}/v1/gatekeepers/join", json=body, timeout=10)
                reply.raise_for_status()
                sealed = bytes.fromhex(reply.json()["sealedMasterKeys"][2:])
                data = json.loads(SealedBox(self._identity).decrypt(sealed))
            except (httpx.HTTPError, CryptoError, ValueError, KeyError) as err:
                reasons.append(f"{url}: {err}")
                continue
            with self._lock:
                self._masters = {int(e): bytes.fromhex(k) for e, k in data.items()}
                self._save_masters()
            log.info("joined through %s: master keys of epochs %s", url, sorted(self._masters))
            return
        raise CoprocessorError("no peer gave the master keys: " + "; ".join(reasons))

    # -- rotation ---------------------------------------------------------------------------------

    def rotate_if_requested(self, peers: list[str], delay_s: float) -> bool:
        """Carries out a requested rotation: a new master key, the next epoch published, the
        cluster store re-encrypted. Several gatekeepers may race; the chain takes the first
        epoch published, and the others fetch its master key from their peers."""
        current = self.current_epoch()
        if current not in self._masters and peers:
            self.join(peers)  # a peer rotated while we were not looking
            return False
        if not self.registry.functions.rotationPending().call():
            return False
        time.sleep(delay_s)  # staggered, so that gatekeepers seldom race
        if not self.registry.functions.rotationPending().call():
            return False
        following = current + 1
        with self._lock:
            self._masters[following] = random(32)
            key = self.cluster_key(following)
        try:
            send(
                self.w3,
                self.account,
                self.registry.functions.publishEpoch(following, key.signer_address, key.encryption_public_key),
            )
        except (Web3Exception, CoprocessorError, ValueError) as err:
            log.info("another gatekeeper published epoch %d first (%s)", following, err)
            with self._lock:
                del self._masters[following]
            if peers:
                self.join(peers)
            return False
        with self._lock:
            self._save_masters()
        moved = self.store.reencrypt(
            current,
            following,
            state_keys=lambda agent, epoch: derive_agent_keys(self.cluster_key(epoch), agent).storage_key,
            reseal_secrets=lambda agent, sealed: self._reseal(agent, sealed, current, following),
        )
        log.info(
            "rotated to epoch %d (signer %s); re-encrypted %d state entries, %d secret sets",
            following,
            key.signer_address,
            *moved,
        )
        return True

    def _reseal(self, agent_id: int, sealed: bytes, old: int, new: int) -> bytes:
        secrets = open_sealed_secrets(sealed, derive_agent_keys(self.cluster_key(old), agent_id).encryption_key)
        return seal_to(derive_agent_keys(self.cluster_key(new), agent_id).encryption_public_key, secrets)


def peer_identity_digest(identity_public_key: bytes, domain: KeyDomain) -> bytes:
    """What a joining gatekeeper's account signs: its identity key, for one chain's registry."""
    return keccak(b"EnclaveAgents gatekeeper identity/" + domain.label + b"/" + identity_public_key)
