"""The worker (the pRuntime): attests, gets the cluster key, runs agents, signs results."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox
from web3 import Web3
from web3.exceptions import ContractLogicError

from coprocessor import metrics
from coprocessor.cluster_store import ClusterStore
from coprocessor.errors import (
    CodeInvalid,
    CodeNotFound,
    CoprocessorError,
    HostUnavailable,
    NotReady,
    OwnerSettingsUnreadable,
    ProvisioningError,
    RequestRefused,
)
from coprocessor.keys import AgentKeys, ClusterKey, derive_agent_keys
from coprocessor.runtime import Execution, Limits, RunContext, Sandbox, StorageGrant
from coprocessor.runtime.engine import with_output_types
from coprocessor.tee.base import TeeBackend, identity_report_data
from coprocessor.worker.code import CodeStore
from coprocessor.worker.open_requests import OpenRequests
from coprocessor.worker.parts import in_parts
from protocol.calls import FunctionEncoder
from protocol.deployment import Deployment
from protocol.envelope import EnvelopeError, envelope_epoch, is_envelope, open_envelope, open_sealed_secrets
from protocol.errors import ManifestError
from protocol.jsonrpc import JsonRpc
from protocol.keccak import keccak256
from protocol.manifest import Manifest, parse_manifest
from protocol.private_logs import seal_logs
from protocol.results import (
    AgentResult,
    CompactSignature,
    RequestCommitment,
    Status,
    batch_digest_of,
    recover_digest_signer,
    sign_digest,
    sign_result,
    typed_digest,
)
from protocol.subscription import websocket_url
from protocol.wire import CommitmentModel, ExecuteRequest, ExecuteResponse, SignatureModel, from_hex, to_hex

log = logging.getLogger(__name__)


# Signed answers kept so that a retry of a request gets the same answer instead of a new run.
ANSWERS_KEPT = 20_000
# Agent keys kept derived, over the epoch keys held; past this many they are derived afresh.
MAX_DERIVED_KEYS = 4096


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
        store: ClusterStore | None = None,
        store_path: Path | None = None,
        confirmations: int = 0,
        allow_private_networks: bool = False,
    ) -> None:
        self.name = name
        self.w3 = w3
        self.confirmations = confirmations
        self.allow_private_networks = allow_private_networks
        # One signed answer per request: a bridge cannot re-run a non-deterministic agent until
        # it likes the output. In memory: a restarted worker has a new identity and new keys.
        self._answers: OrderedDict[int, ExecuteResponse] = OrderedDict()
        self._running: set[int] = set()
        self._answers_changed = threading.Condition()
        self.tee = tee
        self.gatekeeper_urls = gatekeeper_urls
        self.sandbox = sandbox
        # A batch's runs, side by side: one thread per sandbox process.
        self._batch_runs = ThreadPoolExecutor(max_workers=sandbox.size, thread_name_prefix="batch-run")
        self.limits = limits or Limits()
        self.chain_id = deployment.chain_id
        self.registry = deployment.contract(w3, "TeeRegistry")
        self.router = deployment.contract(w3, "AgentRouter")
        self.router_address = self.router.address
        # The request path's calls to the node, without web3's per-call formatting.
        self._rpc = JsonRpc.of(w3, timeout_s=10.0)
        self._is_open = FunctionEncoder.of(self.router.abi, "isOpen")
        # What the node pushed as open, when following it (`follow_requests`): no round trip.
        self.open_requests: OpenRequests | None = None
        self.code = CodeStore(w3, self.router, deployment.start_block)
        # The identity key lives in memory only: a restarted worker attests again.
        self._identity = PrivateKey.generate()
        # The current epoch's key first, then the previous one's (for requests sealed to it).
        self._keys: list[ClusterKey] = []
        # Per-agent keys of the epoch keys held, by (epoch, agent): every run needs them, two
        # HKDFs each. Emptied when the keys change, so a retired key's derivations go with it.
        self._derived: dict[tuple[int, int], AgentKeys] = {}
        self.chain_epoch = 0
        self.store = store
        self.store_path = store_path
        self.quote = tee.quote(identity_report_data(bytes(self._identity.public_key)))
        self.executions: Counter[str] = Counter()
        self.started_at = time.time()

    @property
    def ready(self) -> bool:
        """Holds the key of the chain's current epoch (a worker left behind by a rotation is not)."""
        return bool(self._keys) and self._keys[0].epoch >= self.chain_epoch

    @property
    def _cluster_key(self) -> ClusterKey | None:
        return self._keys[0] if self._keys else None

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
                payload = json.loads(SealedBox(self._identity).decrypt(sealed))
                keys = [ClusterKey.from_secret_dict(k) for k in payload["keys"]]
            except (httpx.HTTPError, CryptoError, ValueError, KeyError) as err:
                reasons.append(f"{url}: {err}")
                continue
            unknown = [k.epoch for k in keys if self.registry.functions.getEpoch(k.epoch).call()[0] != k.signer_address]
            if unknown or not keys:
                reasons.append(f"{url}: gave keys for epochs {unknown} that the chain does not know")
                continue
            self._keys, self._derived = keys, {}
            metrics.WORKER_EPOCH.labels(str(self.chain_id)).set(keys[0].epoch)
            log.info("chain %d: provisioned with epoch %d by %s", self.chain_id, keys[0].epoch, url)
            return
        raise ProvisioningError("; ".join(reasons) or "no gatekeeper configured")

    def provision_in_background(self, retry_s: float) -> threading.Thread:
        """Provisions, then follows the chain's epoch: after a rotation, provisions again."""

        # Asked every `retry_s` for the worker's life: a lean call, not web3's (under load, a
        # tenth of the worker's interpreter time went to this one check).
        epoch_call = {
            "to": self.registry.address,
            "data": to_hex(FunctionEncoder.of(self.registry.abi, "currentEpoch").encode([])),
        }

        def loop() -> None:
            node_checked = False
            while True:
                try:
                    if not node_checked:  # a node that did not answer at start is checked here
                        node_chain_id = int(self.w3.eth.chain_id)
                        if node_chain_id != self.chain_id:
                            raise ProvisioningError(
                                f"the node serves chain {node_chain_id}, the deployment is on chain {self.chain_id}"
                            )
                        node_checked = True
                    epoch = int(str(self._rpc.call("eth_call", [epoch_call, "latest"])), 16)
                    self.chain_epoch = epoch
                    key = self._cluster_key
                    if key is None or key.epoch < epoch:
                        self.provision()
                except ProvisioningError as err:
                    log.warning("chain %d: not provisioned: %s", self.chain_id, err)
                except Exception as err:  # noqa: BLE001 - the chain may be away for a moment
                    log.warning("chain %d: epoch check failed: %s", self.chain_id, err)
                time.sleep(retry_s)

        thread = threading.Thread(target=loop, name="provision", daemon=True)
        thread.start()
        return thread

    def follow_requests(self, timeout_s: float = 10.0) -> OpenRequests | None:
        """Follows the router's logs on the node's WebSocket, so that a request pushed as made
        is known open without asking (with no confirmations to wait for); to be stopped."""
        if self.confirmations != 0:
            return None
        self.open_requests = OpenRequests(websocket_url(self._rpc.url), self.router_address, self.router.abi, timeout_s)
        return self.open_requests.start()

    def execute_batch(self, requests: list[ExecuteRequest]) -> list[ExecuteResponse | CoprocessorError]:
        """Runs several requests, each answered or refused on its own: whether they are open is
        asked of the chain in one round trip, and they run side by side on the sandbox's
        processes. (One request per HTTP call cost the bridge and the worker more CPU than the
        agent's run itself.)"""
        items = self._checked(requests)
        if len(items) == 1:  # no hop to another thread for a batch of one (an idle chain's)
            return [self._answer_or_refusal(items[0])]
        return list(self._batch_runs.map(self._answer_or_refusal, items))

    def execute_each(
        self, requests: list[ExecuteRequest], heartbeat_s: float
    ) -> Generator[list[tuple[int, ExecuteResponse | CoprocessorError]], None, None]:
        """As `execute_batch`, but yields the answers as they are ready, with their places in
        the batch (`parts.in_parts`): those ready together in one part, and an empty part after
        each `heartbeat_s` in which none was. Runs not yet begun when the caller stops listening
        are not run."""
        items = self._checked(requests)
        if len(items) == 1:
            yield [(0, self._answer_or_refusal(items[0]))]
            return
        yield from in_parts(self._batch_runs, self._answer_or_refusal, items, heartbeat_s)

    def _checked(
        self, requests: list[ExecuteRequest]
    ) -> list[tuple[ExecuteRequest, RequestCommitment, CoprocessorError | None]]:
        """Each request with its commitment and what the chain says of it (None: open)."""
        commitments = [request.commitment.to_commitment() for request in requests]
        return list(zip(requests, commitments, self._open_many(commitments), strict=True))

    def _answer_or_refusal(
        self, item: tuple[ExecuteRequest, RequestCommitment, CoprocessorError | None]
    ) -> ExecuteResponse | CoprocessorError:
        try:
            return self._answer(*item)
        except CoprocessorError as err:
            return err

    def execute(self, request: ExecuteRequest) -> ExecuteResponse:
        """One request: a batch of one, its refusal raised."""
        [answer] = self.execute_batch([request])
        if isinstance(answer, CoprocessorError):
            raise answer
        return answer

    def _answer(
        self, request: ExecuteRequest, commitment: RequestCommitment, verdict: CoprocessorError | None
    ) -> ExecuteResponse:
        """Runs a request the chain made, on the input its id names; the same answer on a retry.
        `verdict` is what the chain said of it (None: open, `confirmations` blocks deep)."""
        raw_input = from_hex(request.input)
        if keccak256(raw_input) != commitment.input_hash:
            raise RequestRefused(
                f"the input's hash {to_hex(keccak256(raw_input))} is not the request's input hash "
                f"{to_hex(commitment.input_hash)}"
            )
        # One answer per request: a retry gets the same signed answer for as long as the chain
        # would accept it; only an answer that can no longer be delivered (its epoch revoked, or
        # too old for this request after a rotation) lets the request run again. One run at a time.
        request_id = commitment.request_id
        with self._answers_changed:
            while True:
                answer = self._answers.get(request_id)
                if answer is not None and self._deliverable(answer, commitment):
                    return answer
                if request_id not in self._running:
                    self._running.add(request_id)
                    break
                self._answers_changed.wait()
        try:
            answer = self._execute_once(commitment, raw_input, verdict)
            with self._answers_changed:
                self._answers[request_id] = answer
                while len(self._answers) > ANSWERS_KEPT:
                    self._answers.popitem(last=False)
        finally:
            with self._answers_changed:
                self._running.discard(request_id)
                self._answers_changed.notify_all()
        return answer

    def _deliverable(self, answer: ExecuteResponse, commitment: RequestCommitment) -> bool:
        """Whether the router would still take this answer's signature for this request."""
        epoch = answer.signature.epoch
        if not self._keys or epoch not in {k.epoch for k in self._keys}:
            return False
        if epoch == self._keys[0].epoch:
            return True
        try:  # an older epoch answers only requests made before the next one was published
            signer, valid_before = self.registry.functions.epochSigner(epoch).call()
        except Exception as err:
            raise HostUnavailable(f"could not ask the chain about epoch {epoch}: {err}") from err
        return int(signer, 16) != 0 and commitment.created_at < int(valid_before)

    def _open_many(self, commitments: list[RequestCommitment]) -> list[CoprocessorError | None]:
        """Whether each request is open on-chain, `confirmations` blocks deep: None for an open
        one, else why not. The bridge cannot make up a request, or name a real one with other
        fields (agent, code, input). What the node pushed as open is not asked again; the rest
        is asked in one JSON-RPC batch."""
        pushed = self.open_requests
        known = [pushed is not None and pushed.known_open(c.request_id) for c in commitments]
        metrics.OPEN_CHECKS.labels("pushed").inc(sum(known))
        unknown = [c for c, k in zip(commitments, known, strict=True) if not k]
        if not unknown:
            return [None] * len(commitments)
        metrics.OPEN_CHECKS.labels("asked").inc(len(unknown))
        asked = iter(self._ask_many(unknown))
        return [None if k else next(asked) for k in known]

    def _ask_many(self, commitments: list[RequestCommitment]) -> list[CoprocessorError | None]:
        try:
            head, replies = self._ask_open([c.request_id for c in commitments])
            checked_at = head - self.confirmations
        except Exception as err:  # noqa: BLE001 - the node away: the bridge tries again later
            away = HostUnavailable(f"could not ask the chain whether the requests are open: {err}")
            return [away] * len(commitments)
        verdicts: list[CoprocessorError | None] = []
        for commitment, reply in zip(commitments, replies, strict=True):
            if commitment.created_at > checked_at:
                verdicts.append(
                    HostUnavailable(
                        f"request of block {commitment.created_at} is not {self.confirmations} blocks deep yet "
                        f"(head {head})"
                    )
                )
            elif reply.get("result") is None:
                verdicts.append(
                    HostUnavailable(f"the node did not say whether the request is open: {reply.get('error')}")
                )
            elif int(str(reply["result"]), 16) != 1:
                verdicts.append(_not_open(commitment, checked_at))
            else:
                verdicts.append(None)
        return verdicts

    def _ask_open(self, request_ids: list[int]) -> tuple[int, list[dict[str, Any]]]:
        """The head, and `isOpen` of each request `confirmations` blocks below it: with no
        confirmations, all in one JSON-RPC batch; else the head first, then the batch."""

        def is_open(request_id: int, block: str) -> tuple[str, list[Any]]:
            data = to_hex(self._is_open.encode([request_id]))
            return "eth_call", [{"to": self.router_address, "data": data}, block]

        if self.confirmations == 0:
            # "latest" may be a block past the head read alongside: a request seen there is as open.
            replies = self._rpc.batch([("eth_blockNumber", []), *(is_open(i, "latest") for i in request_ids)])
        else:
            head = int(str(self._rpc.call("eth_blockNumber", [])), 16)
            block = hex(head - self.confirmations)
            replies = [{"result": hex(head)}, *self._rpc.batch([is_open(i, block) for i in request_ids])]
        return int(str(replies[0]["result"]), 16), replies[1:]

    def _execute_once(
        self, commitment: RequestCommitment, raw_input: bytes, verdict: CoprocessorError | None
    ) -> ExecuteResponse:
        key = self._cluster_key
        if key is None or not self.ready:
            raise NotReady(f"this worker holds no key for the current epoch {self.chain_epoch}")
        if verdict is not None:
            raise verdict
        # The request is open, so the router bound this code hash to this agent when it was made:
        # agent keys are derived only for a version the agent's owner published.
        manifest: Manifest | None = None
        try:
            code = self.code.get(commitment.code_hash)
            manifest = parse_manifest(code)
        except CodeInvalid as err:
            execution = Execution.failed(Status.AGENT_ERROR, str(err))
        except ManifestError as err:
            execution = Execution.failed(Status.AGENT_ERROR, f"bad @enclave manifest: {err}")
        else:
            execution = self._run(code, manifest, commitment, raw_input)
        if execution.host_error is not None:
            raise HostUnavailable(f"the run needed the chain and could not reach it: {execution.host_error}")
        logs_key = manifest.logs_key if manifest is not None else None
        logs, error = execution.logs, execution.error if execution.status != Status.OK else None
        sealed_logs = None
        if logs_key is not None:
            # Private logs: the full error and every log line for the owner's eyes only; the
            # output, which goes on-chain, names the status and no detail.
            sealed_logs = to_hex(seal_logs(logs_key, commitment.request_id, logs, error))
            logs, error = [], None
            if execution.status != Status.OK:
                execution.output = f"{execution.status.name} (details sealed to the agent's owner)".encode()
        result = AgentResult(commitment=commitment, status=execution.status, output=execution.output)
        signing_started = time.perf_counter()
        signed = sign_result(
            key.signing_key, chain_id=self.chain_id, router=self.router_address, result=result, epoch=key.epoch
        )
        sign_ms = (time.perf_counter() - signing_started) * 1000
        self.executions[execution.status.name] += 1
        metrics.EXECUTIONS.labels(execution.status.name).inc()
        metrics.EXECUTION_SECONDS.observe(execution.elapsed_ms / 1000)
        metrics.WORKER_EPOCH.labels(str(self.chain_id)).set(key.epoch)
        return ExecuteResponse(
            request_id=str(commitment.request_id),
            commitment=CommitmentModel.of(commitment),
            status=execution.status.name,
            output=to_hex(execution.output),
            signature=SignatureModel.of(signed.signature),
            logs=logs,
            error=error,
            sealed_logs=sealed_logs,
            stats={
                "elapsedMs": execution.elapsed_ms,
                "memoryBytes": execution.memory_bytes,
                "httpCalls": execution.http_calls,
                "signMs": sign_ms,
                "limits": execution.limits,
            },
            calls=execution.calls,
            worker=self.name,
        )

    def _run(self, code: str, manifest: Manifest, commitment: RequestCommitment, raw_input: bytes) -> Execution:
        """Opens the input's sealed secrets and the owner's, applies the agent's manifest, runs it."""
        agent_id = commitment.agent_id
        agent_keys = self._agent_keys_of(agent_id)
        try:
            input_, secrets = raw_input, self._owner_secrets(agent_id, agent_keys)
            if is_envelope(raw_input):
                epoch = envelope_epoch(raw_input)
                if epoch not in agent_keys:
                    raise EnvelopeError(f"the secrets are sealed to epoch {epoch}, which this cluster no longer holds")
                opened = open_envelope(raw_input, agent_keys[epoch].encryption_key)
                # The owner's settings win over a requester's: the owner decides what the agent trusts.
                input_, secrets = opened.input, opened.secrets | secrets
        except EnvelopeError as err:
            return Execution.failed(Status.BAD_INPUT, str(err))
        context = self._context(agent_id, commitment.code_hash, manifest, secrets, agent_keys, commitment.consumer)
        limits = manifest.apply(self.limits)
        execution = self.sandbox.execute(code, input_, limits, context, self._resolve)
        execution.limits = limits.as_dict()
        return with_output_types(execution, manifest)

    def _context(
        self,
        agent_id: int,
        code_hash: bytes,
        manifest: Manifest,
        secrets: dict[str, str],
        agent_keys: dict[int, AgentKeys],
        consumer: str = "",
    ) -> RunContext:
        storage = None
        if self.store_path is not None:
            storage = StorageGrant(
                path=str(self.store_path),
                agent_id=agent_id,
                epoch=self._keys[0].epoch,
                keys={e: k.storage_key for e, k in agent_keys.items()},
            )
        return RunContext(
            agent_id=agent_id,
            code_hash=to_hex(code_hash),
            secrets=secrets,
            storage=storage,
            allow_hosts=manifest.allow_hosts,
            allow_private_networks=self.allow_private_networks,
            consumer=consumer.lower(),
            chain_id=self.chain_id if consumer else 0,
            unseal_keys={e: k.encryption_key for e, k in agent_keys.items()},
        )

    def _resolve(self, agent_id: int) -> dict[str, Any]:
        """Another agent's current code and context, for ctx.callAgent (asked by the sandbox)."""
        try:
            record = self.router.functions.getAgent(agent_id).call()
        except ContractLogicError:
            return {"error": "no such agent"}
        except Exception as err:  # noqa: BLE001 - the chain being away is the host's failure, not the agent's
            return {"hostError": f"getAgent({agent_id}): {err.__class__.__name__}: {err}"}
        code_hash, paused, restricted = bytes(record[0]), bool(record[3]), bool(record[4])
        if paused:
            return {"error": "the agent is paused"}
        if restricted:
            # Its owner chose which consumers may use it; another agent is none of them.
            return {"error": "the agent is restricted to its allowed consumers"}
        try:
            code = self.code.get(code_hash)
            manifest = parse_manifest(code)
            agent_keys = self._agent_keys_of(agent_id)
            secrets = self._owner_secrets(agent_id, agent_keys)
        except CodeNotFound as err:
            return {"hostError": str(err)}
        except OwnerSettingsUnreadable as err:
            return {"hostError": str(err)}
        except (CodeInvalid, ManifestError, EnvelopeError) as err:
            return {"error": str(err)}
        context = self._context(agent_id, code_hash, manifest, secrets, agent_keys)
        return {
            "codeHash": to_hex(code_hash),
            "code": code,
            "limits": manifest.apply(self.limits).as_dict(),
            "context": context.to_wire(),
            "privateLogs": manifest.private_logs,
        }

    def _agent_keys_of(self, agent_id: int) -> dict[int, AgentKeys]:
        """The agent's keys under each epoch key this worker holds."""
        keys, derived = self._keys, self._derived
        if len(derived) > MAX_DERIVED_KEYS:
            derived.clear()
        found = {}
        for key in keys:
            if (key.epoch, agent_id) not in derived:
                derived[(key.epoch, agent_id)] = derive_agent_keys(key, agent_id)
            found[key.epoch] = derived[(key.epoch, agent_id)]
        return found

    def _owner_secrets(self, agent_id: int, agent_keys: dict[int, AgentKeys]) -> dict[str, str]:
        stored = self.store.secrets(agent_id) if self.store is not None else None
        if stored is None:
            return {}
        # The row lives in the host's file: one that does not open was altered by the host, and
        # is never signed as the requester's bad input.
        epoch, sealed = stored
        if epoch not in agent_keys:
            raise OwnerSettingsUnreadable(
                f"the agent's settings are filed under epoch {epoch}, which this worker does not hold"
            )
        try:
            return open_sealed_secrets(sealed, agent_keys[epoch].encryption_key)
        except EnvelopeError as err:
            raise OwnerSettingsUnreadable(f"the agent's stored settings do not open: {err}") from err

    def sign_batch(self, results: list[ExecuteResponse]) -> CompactSignature:
        """Co-signs a batch of results that this cluster's key signed one by one, and nothing else."""
        key = self._cluster_key
        if key is None:
            raise NotReady("this worker holds no cluster key yet")
        signed = [r.signed_result() for r in results]
        struct_hashes = []
        for item in signed:
            struct_hash = item.result.struct_hash(key.epoch)
            digest = typed_digest(self.chain_id, self.router_address, struct_hash)
            if item.signature.epoch != key.epoch or _signer_or_none(digest, item.signature) != key.signer_address:
                raise ValueError(
                    f"result {item.result.request_id} is not signed by chain {self.chain_id}'s epoch {key.epoch} key"
                )
            struct_hashes.append(struct_hash)  # each result hashed once, for its check and the batch
        return sign_digest(
            key.signing_key, batch_digest_of(self.chain_id, self.router_address, struct_hashes), key.epoch
        )

    def chain_info(self) -> dict[str, Any]:
        """Where this worker's keys for its chain stand."""
        key = self._cluster_key
        return {
            "chainId": self.chain_id,
            "router": self.router_address,
            "epoch": key.epoch if key else None,
            "signer": key.signer_address if key else None,
            "ready": self.ready,
        }

    def info(self) -> dict[str, Any]:
        key = self._cluster_key
        return {
            "role": "worker",
            "name": self.name,
            "chainId": self.chain_id,
            "backend": self.tee.name,
            "measurement": to_hex(self.tee.measurement),
            "quote": self.quote.to_dict(),
            "identityPublicKey": to_hex(bytes(self._identity.public_key)),
            "epoch": key.epoch if key else None,
            "signer": key.signer_address if key else None,
            "ready": self.ready,
            "executions": dict(self.executions),
            "sandboxRestarts": self.sandbox.restarts,
            # The router's logs the node pushed (the requests known open without asking it).
            "routerLogs": None
            if self.open_requests is None
            else {
                "connected": self.open_requests.subscription.connected,
                "received": self.open_requests.subscription.received,
            },
            "agentsCached": len(self.code),
            "uptimeS": round(time.time() - self.started_at, 1),
        }


def _signer_or_none(digest: bytes, signature: CompactSignature) -> str | None:
    try:
        return recover_digest_signer(digest, signature)
    except ValueError:  # no key makes this signature: not the cluster's either
        return None


def _not_open(commitment: RequestCommitment, block: int) -> RequestRefused:
    return RequestRefused(
        f"request 0x{commitment.request_id:064x} is not open on-chain at block {block}: never made with "
        "these fields and this input, or already closed"
    )
