"""The gatekeeper: keeps the master key sealed, derives epoch keys, provisions attested workers."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from nacl.public import PublicKey, SealedBox
from nacl.utils import random
from web3 import Web3

from coprocessor.chain import Deployment, send
from coprocessor.errors import AttestationError, CoprocessorError
from coprocessor.keys import ClusterKey, derive_cluster_key
from coprocessor.sealing import seal, unseal, write_private
from coprocessor.tee.base import Quote, QuoteVerifier, TeeBackend, identity_report_data

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
    ) -> None:
        self.w3 = w3
        self.account = account
        self.tee = tee
        self.verifier = verifier
        self.registry = deployment.contract(w3, "TeeRegistry")
        self._master_path = state_dir / "master-key.sealed"
        self._master_key = self._load_or_create_master_key()
        self.provisioned = 0

    def _load_or_create_master_key(self) -> bytes:
        if self._master_path.exists():
            return unseal(self.tee.sealing_key(), self._master_path.read_bytes())
        master = random(32)
        write_private(self._master_path, seal(self.tee.sealing_key(), master))
        log.info("created a new master key, sealed at %s", self._master_path)
        return master

    def current_epoch(self) -> int:
        return int(self.registry.functions.currentEpoch().call())

    def cluster_key(self, epoch: int | None = None) -> ClusterKey:
        return derive_cluster_key(self._master_key, epoch if epoch is not None else self.current_epoch())

    def ensure_epoch(self) -> int:
        """Publishes epoch 1 on a fresh deployment; otherwise checks that our master key is the
        one the chain knows (a gatekeeper with another master key must not provision anyone)."""
        epoch = self.current_epoch()
        if epoch == 0:
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
        key = self.cluster_key()
        sealed = SealedBox(PublicKey(identity_public_key)).encrypt(json.dumps(key.to_secret_dict()).encode())
        self.provisioned += 1
        log.info("provisioned epoch %d to a worker with measurement 0x%s", key.epoch, measurement.hex()[:16])
        return key.epoch, bytes(sealed)

    def info(self) -> dict[str, Any]:
        key = self.cluster_key()
        return {
            "role": "gatekeeper",
            "backend": self.tee.name,
            "measurement": "0x" + self.tee.measurement.hex(),
            "address": self.account.address,
            "epoch": key.epoch,
            "signer": key.signer_address,
            "encryptionPublicKey": "0x" + key.encryption_public_key.hex(),
            "workersProvisioned": self.provisioned,
        }
