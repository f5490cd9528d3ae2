"""What the dashboard shows and does: read models over the bridge's store, the chain and the
services' own endpoints, and the few admin actions. Routes only call into this."""

from __future__ import annotations

import itertools
import json
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from bridge import stats
from bridge.store import STATES, RequestStore
from coprocessor.errors import AttestationError
from coprocessor.tee.base import Quote, QuoteVerifier
from coprocessor.worker.code import CodeStore
from enclave.display import show_bytes
from protocol.deployment import Deployment, send
from protocol.fees import GasPrice, current_gas_price, request_value
from protocol.hexes import to_hex
from protocol.manifest import decode_output, parse_manifest, with_manifest
from protocol.wire import from_hex

PAGE_SIZE = 25
# The callback gas of a request made from the dashboard's "try it" form (EchoConsumer).
TRY_CALLBACK_GAS = 300_000


@dataclass
class ServiceSeen:
    """What the dashboard last learnt of a service."""

    last_seen: float | None = None
    verified_quote: str | None = None
    quote_verified_at: float | None = None
    quote_error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChainStatus:
    """Whether the dashboard's node answers: shown on every page, since agents, keys and the
    deploy and try-it forms need it while requests and counts come from the bridge's store."""

    url: str
    ok: bool
    head: int | None = None
    error: str | None = None


CHAIN_PROBE_TIMEOUT_S = 1.5
CHAIN_PROBE_EVERY_S = 2.0


class Dashboard:
    def __init__(
        self,
        w3: Web3,
        deployment: Deployment,
        store: RequestStore,
        workers: list[str],
        gatekeepers: list[str],
        verifier: QuoteVerifier | None,
        operator_key: str,
    ) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.store = store
        self.worker_urls = workers
        self.gatekeeper_urls = gatekeepers
        self.verifier = verifier
        self.operator_key = operator_key
        self.router = deployment.contract(w3, "AgentRouter")
        self.registry = deployment.contract(w3, "TeeRegistry")
        self.code = CodeStore(w3, self.router, deployment.start_block)
        self.seen: dict[str, ServiceSeen] = {}
        self._chain: ChainStatus | None = None
        self._chain_checked = 0.0

    def chain(self) -> ChainStatus:
        """The node's head, asked at most every two seconds with a short timeout, so that a
        page says within seconds that the chain is away instead of hanging on it."""
        if self._chain is None or time.monotonic() - self._chain_checked >= CHAIN_PROBE_EVERY_S:
            url = str(getattr(self.w3.provider, "endpoint_uri", ""))
            body = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
            try:
                head = int(httpx.post(url, json=body, timeout=CHAIN_PROBE_TIMEOUT_S).json()["result"], 16)
                self._chain = ChainStatus(url=url, ok=True, head=head)
            except (httpx.HTTPError, ValueError, KeyError) as err:
                self._chain = ChainStatus(url=url, ok=False, error=f"{err.__class__.__name__}: {err}")
            self._chain_checked = time.monotonic()
        return self._chain

    # -- requests -------------------------------------------------------------------------------

    def overview(self) -> dict[str, Any]:
        return {
            "counts": self.store.counts(),
            "minute": stats.window(self.store, 60),
            "hour": stats.window(self.store, 3600),
            "chart": stats.per_minute(self.store, 60),
            "failures": stats.recent_failures(self.store, 10),
        }

    def requests(self, state: str, agent: str, consumer: str, page: int) -> dict[str, Any]:
        # Plain ASCII digits within SQLite's integer range; any other filter text matches nothing.
        agent_id = int(agent) if re.fullmatch(r"[0-9]{1,18}", agent) else None
        rows, total = self.store.page(
            state if state in STATES else None, agent_id, consumer.strip() or None, PAGE_SIZE, (page - 1) * PAGE_SIZE
        )
        pages = max(1, -(-total // PAGE_SIZE))
        return {"rows": rows, "total": total, "page": page, "pages": pages, "states": STATES}

    def request(self, request_id: int) -> dict[str, Any] | None:
        stored = self.store.get(request_id)
        if stored is None:
            return None
        row = stored.row
        transitions = self.store.transitions(request_id)
        for previous, current in itertools.pairwise(transitions):
            current["after_ms"] = (current["at"] - previous["at"]) * 1000
        result = stored.result or {}
        return {
            "id": request_id,
            "row": row,
            "terminal": stored.state in ("fulfilled", "failed", "cancelled"),
            "transitions": transitions,
            "input": show_bytes(stored.input),
            "output": show_bytes(bytes(row["output"])) if row["output"] is not None else None,
            "logs": json.loads(row["logs"]) if row["logs"] else [],
            "stats": json.loads(row["stats"]) if row["stats"] else {},
            "calls": result.get("calls", []),
            "error": row["error"],
            "decoded": self._decoded(row),
            # Private logs reach the dashboard as ciphertext only: say how much, never what.
            "sealed_logs_bytes": len(from_hex(result["sealedLogs"])) if result.get("sealedLogs") else None,
        }

    def _decoded(self, row: Any) -> dict[str, Any] | None:
        """The output by the ABI types its agent's manifest declares, for an OK answer."""
        if row["status"] != "OK" or row["output"] is None:
            return None
        try:
            manifest = parse_manifest(self.code.get(from_hex(str(row["code_hash"]))))
        except Exception:  # noqa: BLE001 - the code or the chain unavailable: show the bytes only
            return None
        values = decode_output(manifest, bytes(row["output"]))
        return None if values is None else {"types": list(manifest.output), "values": [str(v) for v in values]}

    def request_is_open(self, request_id: int) -> bool:
        return bool(self.router.functions.isOpen(request_id).call())

    # -- agents ---------------------------------------------------------------------------------

    def agents(self) -> list[dict[str, Any]]:
        count = int(self.router.functions.agentCount().call())
        usage = {
            int(agent_id): (int(n), last)
            for agent_id, n, last in self.store.query(
                "SELECT agent_id, COUNT(*), MAX(requested_at) FROM requests GROUP BY agent_id"
            )
        }
        agents = [self.agent(agent_id, with_code=False) for agent_id in range(1, count + 1)]
        for agent in agents:
            agent["requests"], agent["last_used"] = usage.get(agent["id"], (0, None))
        return agents

    def agent(self, agent_id: int, with_code: bool = True) -> dict[str, Any]:
        code_hash, price, version, paused, restricted, owner, _ = self.router.functions.getAgent(agent_id).call()
        code = self.code.get(bytes(code_hash))
        agent: dict[str, Any] = {
            "id": agent_id,
            "codeHash": to_hex(bytes(code_hash)),
            "price": price,
            "version": version,
            "paused": paused,
            "restricted": restricted,
            "owner": owner,
            "manifest": parse_manifest(code),
        }
        if with_code:
            agent["code"] = code
            agent["versions"] = self._versions(agent_id, bytes(code_hash))
        return agent

    def _versions(self, agent_id: int, current: bytes) -> list[dict[str, Any]]:
        registered = self.router.events.AgentRegistered().get_logs(
            from_block=self.deployment.start_block, argument_filters={"agentId": agent_id}
        )
        later = self.router.events.AgentVersionPublished().get_logs(
            from_block=self.deployment.start_block, argument_filters={"agentId": agent_id}
        )
        versions = [
            {"version": 1, "codeHash": to_hex(bytes(e["args"]["codeHash"])), "block": e["blockNumber"]}
            for e in registered
        ]
        versions += [
            {
                "version": e["args"]["version"],
                "codeHash": to_hex(bytes(e["args"]["codeHash"])),
                "block": e["blockNumber"],
            }
            for e in later
        ]
        return versions

    # -- workers, gatekeepers, keys --------------------------------------------------------------------

    def services(self) -> dict[str, list[dict[str, Any]]]:
        served = dict(
            self.store.query("SELECT worker, COUNT(*) FROM requests WHERE worker IS NOT NULL GROUP BY worker")
        )
        return {
            "workers": [self._service(url, served) for url in self.worker_urls],
            "gatekeepers": [self._service(url, served) for url in self.gatekeeper_urls],
        }

    def _service(self, url: str, served: dict[str, int]) -> dict[str, Any]:
        seen = self.seen.setdefault(url, ServiceSeen())
        healthy = False
        try:
            seen.info = httpx.get(f"{url}/v1/info", timeout=2).raise_for_status().json()
            seen.last_seen = time.time()
            # A worker without the current epoch's key answers, but cannot serve.
            healthy = bool(seen.info.get("ready", True))
            self._verify_quote(seen)
        except (httpx.HTTPError, ValueError):
            healthy = False
        info = seen.info
        return {
            "url": url,
            "name": info.get("name") or info.get("role", "service"),
            "healthy": healthy,
            "info": info,
            "last_seen": seen.last_seen,
            "quote_verified_at": seen.quote_verified_at,
            "quote_error": seen.quote_error,
            "served": served.get(info.get("name", ""), 0),
        }

    def _verify_quote(self, seen: ServiceSeen) -> None:
        quote = seen.info.get("quote")
        if self.verifier is None or not quote or quote.get("signature") == seen.verified_quote:
            return  # a quote already verified (a restarted worker brings a new one)
        seen.verified_quote = quote.get("signature")
        try:
            self.verifier.verify(Quote.from_dict(quote))
            seen.quote_verified_at, seen.quote_error = time.time(), None
        except (AttestationError, KeyError, ValueError) as err:
            seen.quote_error = str(err)

    def keys(self) -> dict[str, Any]:
        current = int(self.registry.functions.currentEpoch().call())
        epochs = []
        for epoch in range(current, 0, -1):
            signer, published, valid_before, key = self.registry.functions.getEpoch(epoch).call()
            if epoch == current:
                state = "current"
            elif valid_before == 0:
                state = "revoked"
            else:
                state = f"answers requests made before block {valid_before}"
            epochs.append(
                {
                    "epoch": epoch,
                    "signer": signer,
                    "publishedAt": published,
                    "key": to_hex(bytes(key)),
                    "state": state,
                }
            )
        return {
            "current": current,
            "rotationPending": self.registry.functions.rotationPending().call(),
            "epochs": epochs,
        }

    def economics(self) -> dict[str, Any]:
        """The router's fee settings, the operators with their stakes and missed assignments, and
        the subscriptions with their balances, read from the chain."""
        start = self.deployment.start_block
        config = self.router.functions.getConfig().call()
        subscriptions = []
        for log in self.router.events.SubscriptionCreated().get_logs(from_block=start):
            subscription_id = int(log["args"]["subscriptionId"])
            try:
                owner, balance, held, _, currency = self.router.functions.getSubscription(subscription_id).call()
            except ContractLogicError:
                continue  # cancelled: paid out and deleted
            subscriptions.append(
                {"id": subscription_id, "owner": owner, "balance": balance, "held": held, "currency": currency}
            )
        fee_token = self.router.functions.FEE_TOKEN().call()
        return {
            "operatorFee": config[4],
            "feeToken": fee_token if int(fee_token, 16) else None,
            "tokensPerEth": self.router.functions.tokensPerEth().call(),
            "fulfilGasOverhead": config[5],
            "staking": self._staking(start),
            "subscriptions": subscriptions,
        }

    def _staking(self, start: int) -> dict[str, Any] | None:
        staking = self.deployment.optional_contract(self.w3, "OperatorStaking")
        if staking is None:
            return None
        _, (min_stake, slash, window, delay) = staking.functions.getStaking().call()
        slashes = [log["args"] for log in staking.events.OperatorSlashed().get_logs(from_block=start)]
        known = [log["args"]["operator"] for log in staking.events.Staked().get_logs(from_block=start)]
        operators = []
        for address in dict.fromkeys(known):
            staked, unstaking, available_at, active = staking.functions.getOperator(address).call()
            lead = staking.functions.fleetOf(address).call()
            operators.append(
                {
                    "address": address,
                    "active": active,
                    "staked": staked,
                    "unstaking": unstaking,
                    "unstakeAvailableAt": available_at,
                    "missed": sum(1 for s in slashes if s["assignee"] == address),
                    "slashed": sum(s["amount"] for s in slashes if s["assignee"] == address),
                    "deliveredForOthers": sum(1 for s in slashes if s["deliverer"] == address),
                    "fleet": lead if lead != address else None,
                }
            )
        return {
            "minStake": min_stake,
            "slashAmount": slash,
            "assignmentWindowS": window,
            "unstakeDelayS": delay,
            "operators": operators,
        }

    # -- admin actions ----------------------------------------------------------------------------

    def _send(self, call: Any, value: int = 0, gas_price: GasPrice | None = None) -> Any:
        return send(self.w3, Account.from_key(self.operator_key), call, value=value, gas_price=gas_price)

    def deploy_agent(self, code: str, price: int, name: str = "", allow_hosts: tuple[str, ...] = ()) -> int:
        manifest = parse_manifest(code)  # a broken manifest is refused before it costs gas
        if name or allow_hosts:
            hosts = tuple(dict.fromkeys(manifest.allow_hosts + allow_hosts))
            code = with_manifest(code, replace(manifest, name=name or manifest.name, allow_hosts=hosts))
            parse_manifest(code)  # the hosts as typed must make a valid manifest too
        receipt = self._send(self.router.functions.registerAgent(code.encode(), price, False))
        return int(self.router.events.AgentRegistered().process_receipt(receipt, errors=DISCARD)[0]["args"]["agentId"])

    def set_paused(self, agent_id: int, paused: bool) -> None:
        function = self.router.functions.pauseAgent if paused else self.router.functions.unpauseAgent
        self._send(function(agent_id))

    def try_agent(self, agent_id: int, payload: bytes) -> int:
        gas_price = current_gas_price(self.w3)
        value = request_value(self.router, agent_id, TRY_CALLBACK_GAS, gas_price)
        echo = self.deployment.contract(self.w3, "EchoConsumer")
        receipt = self._send(echo.functions.ask(agent_id, payload, TRY_CALLBACK_GAS), value=value, gas_price=gas_price)
        return int(self.router.events.AgentRequested().process_receipt(receipt, errors=DISCARD)[0]["args"]["requestId"])

    def request_rotation(self) -> None:
        self._send(self.registry.functions.requestRotation())
