"""The worker (the pRuntime): attests, gets the cluster key, runs agents, signs results."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from typing import Any

import httpx
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox
from web3 import Web3

from coprocessor.chain import Deployment
from coprocessor.errors import ProvisioningError
from coprocessor.keys import ClusterKey
from coprocessor.protocol import (
    AgentResult,
    CompactSignature,
    Status,
    batch_digest,
    recover_result_signer,
    sign_digest,
    sign_result,
)
from coprocessor.runtime import Limits, Sandbox
from coprocessor.tee.base import TeeBackend, identity_report_data
from coprocessor.wire import CommitmentModel, ExecuteRequest, ExecuteResponse, SignatureModel, from_hex, to_hex
from coprocessor.worker.code import CodeStore

log = logging.getLogger(__name__)


class NotReady(Exception):
    """The worker has no cluster key yet."""


class Worker:
    def __init__(
        self,
        name: str,
        w3: Web3,
        deployment: Deployment,
        tee: TeeBackend,
        gatekeeper_urls: list[str],
        sandbox: Sandbox,
        limits: Limits | None = None,
    ) -> None:
        self.name = name
        self.tee = tee
        self.gatekeeper_urls = gatekeeper_urls
        self.sandbox = sandbox
        self.limits = limits or Limits()
        self.chain_id = deployment.chain_id
        self.registry = deployment.contract(w3, "TeeRegistry")
        router = deployment.contract(w3, "AgentRouter")
        self.router_address = router.address
        self.code = CodeStore(w3, router, deployment.start_block)
        # The identity key lives in memory only: a restarted worker attests again.
        self._identity = PrivateKey.generate()
        self._cluster_key: ClusterKey | None = None
        self.quote = tee.quote(identity_report_data(bytes(self._identity.public_key)))
        self.executions: Counter[str] = Counter()
        self.started_at = time.time()

    @property
    def ready(self) -> bool:
        return self._cluster_key is not None

    def provision(self) -> None:
        """Asks each gatekeeper in turn for the cluster key; raises when none gives it."""
        reasons = []
        body = {"quote": self.quote.to_dict(), "identityPublicKey": to_hex(bytes(self._identity.public_key))}
        for url in self.gatekeeper_urls:
            try:
                reply = httpx.post(f"{url}/v1/provision", json=body, timeout=10)
                if reply.status_code != 200:
                    reasons.append(f"{url}: {reply.status_code} {reply.json().get('detail', '')}")
                    continue
                sealed = from_hex(reply.json()["sealedClusterKey"])
                key = ClusterKey.from_secret_dict(json.loads(SealedBox(self._identity).decrypt(sealed)))
            except (httpx.HTTPError, CryptoError, ValueError, KeyError) as err:
                reasons.append(f"{url}: {err}")
                continue
            on_chain_signer = self.registry.functions.getEpoch(key.epoch).call()[0]
            if on_chain_signer != key.signer_address:
                reasons.append(f"{url}: gave a key for epoch {key.epoch} that the chain does not know")
                continue
            self._cluster_key = key
            log.info("provisioned with epoch %d by %s", key.epoch, url)
            return
        raise ProvisioningError("; ".join(reasons) or "no gatekeeper configured")

    def provision_in_background(self, retry_s: float) -> threading.Thread:
        def loop() -> None:
            while not self.ready:
                try:
                    self.provision()
                except ProvisioningError as err:
                    log.warning("not provisioned: %s", err)
                    time.sleep(retry_s)

        thread = threading.Thread(target=loop, name="provision", daemon=True)
        thread.start()
        return thread

    def execute(self, request: ExecuteRequest) -> ExecuteResponse:
        key = self._cluster_key
        if key is None:
            raise NotReady("this worker holds no cluster key yet")
        commitment = request.commitment.to_commitment()
        code = self.code.get(commitment.code_hash)
        execution = self.sandbox.execute(code, from_hex(request.input), self.limits)
        result = AgentResult(
            request_id=int(request.requestId), commitment=commitment, status=execution.status, output=execution.output
        )
        signing_started = time.perf_counter()
        signed = sign_result(
            key.signing_key, chain_id=self.chain_id, router=self.router_address, result=result, epoch=key.epoch
        )
        sign_ms = (time.perf_counter() - signing_started) * 1000
        self.executions[execution.status.name] += 1
        return ExecuteResponse(
            requestId=request.requestId,
            commitment=CommitmentModel.of(commitment),
            status=execution.status.name,
            output=to_hex(execution.output),
            signature=SignatureModel.of(signed.signature),
            logs=execution.logs,
            error=execution.error if execution.status != Status.OK else None,
            stats={"elapsedMs": execution.elapsed_ms, "memoryBytes": execution.memory_bytes, "signMs": sign_ms},
            worker=self.name,
        )

    def sign_batch(self, results: list[ExecuteResponse]) -> CompactSignature:
        """Co-signs a batch of results that this cluster's key signed one by one, and nothing else."""
        key = self._cluster_key
        if key is None:
            raise NotReady("this worker holds no cluster key yet")
        signed = [r.signed_result() for r in results]
        for item in signed:
            signer = recover_result_signer(chain_id=self.chain_id, router=self.router_address, signed=item)
            if item.signature.epoch != key.epoch or signer != key.signer_address:
                raise ValueError(f"result {item.result.request_id} is not signed by epoch {key.epoch}'s key")
        digest = batch_digest(
            chain_id=self.chain_id, router=self.router_address, results=[s.result for s in signed], epoch=key.epoch
        )
        return sign_digest(key.signing_key, digest, key.epoch)

    def info(self) -> dict[str, Any]:
        key = self._cluster_key
        return {
            "role": "worker",
            "name": self.name,
            "backend": self.tee.name,
            "measurement": to_hex(self.tee.measurement),
            "quote": self.quote.to_dict(),
            "identityPublicKey": to_hex(bytes(self._identity.public_key)),
            "epoch": key.epoch if key else None,
            "signer": key.signer_address if key else None,
            "ready": self.ready,
            "executions": dict(self.executions),
            "sandboxRestarts": self.sandbox.restarts,
            "agentsCached": len(self.code),
            "uptimeS": round(time.time() - self.started_at, 1),
        }
