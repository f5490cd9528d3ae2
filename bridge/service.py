"""The bridge: watcher, dispatcher and submitter, each in its own loop over one store."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from eth_account import Account

from bridge.agent_timeouts import AgentTimeouts
from bridge.dispatcher import Dispatcher
from bridge.expiry import Expirer
from bridge.heads import Header, HeadSubscription
from bridge.leadership import Leadership
from bridge.metrics import BridgeMetrics
from bridge.rotation import RotationGate
from bridge.sender import Sender
from bridge.settings import BridgeSettings
from bridge.stake import StakeGate
from bridge.store import RequestStore
from bridge.submitter import Submitter
from bridge.watcher import ChainWatcher
from bridge.workers import WorkerPool
from protocol.deployment import Deployment, connect
from protocol.subscription import websocket_url

log = logging.getLogger(__name__)

# Consecutive failures after which a loop logs at error level (it keeps trying: the chain or a
# worker coming back is the normal way out).
LOUD_AFTER = 10
PRUNE_EVERY_S = 60.0
RECEIPT_POLL_S = 0.02


class Bridge:
    def __init__(self, settings: BridgeSettings) -> None:
        self.settings = settings
        w3 = connect(settings.rpc_url, settings.rpc_timeout_s)
        deployment = Deployment.load(settings.deployment)
        router = deployment.contract(w3, "AgentRouter")
        account = Account.from_key(settings.eth_private_key.get_secret_value())
        location = settings.store_url.get_secret_value() or settings.database
        # Each replica sharing a store has its own transmitter: its address names its claims.
        self.store = RequestStore(location, owner=account.address.lower(), lease_s=settings.lease_s)
        self.leader = Leadership(location)
        self.workers = WorkerPool(
            settings.worker_urls,
            timeout_s=settings.worker_timeout_s,
            token=settings.worker_token.get_secret_value(),
            max_in_flight=settings.worker_max_in_flight,
            max_cooldown_s=settings.worker_max_cooldown_s,
            chain_id=deployment.chain_id,
        )
        self.watcher = ChainWatcher(
            w3, router, self.store, deployment.start_block, settings.confirmations, rpc_timeout_s=settings.rpc_timeout_s
        )
        self.dispatcher = Dispatcher(
            self.store,
            self.workers,
            AgentTimeouts(router, deployment.start_block, margin_s=settings.execute_margin_s),
            concurrency=settings.dispatch_concurrency,
            max_backoff_s=settings.max_backoff_s,
            batch_size=settings.dispatch_batch_size,
            transmitter=account.address,
        )
        self.rotation = RotationGate(
            w3,
            deployment.contract(w3, "TeeRegistry"),
            settings.rotation_confirmations,
            rpc_timeout_s=settings.rpc_timeout_s,
        )
        self.dispatcher.is_held = self.rotation.held
        self.errors: dict[str, str] = {}
        self.metrics = BridgeMetrics(self.store, self.rotation.epoch, lambda: dict(self.errors), self.workers.health)
        self.sender = Sender(
            w3,
            account,
            max_in_flight=settings.max_txs_in_flight,
            replace_after_s=settings.replace_after_s,
            rpc_timeout_s=settings.rpc_timeout_s,
        )
        self.submitter = Submitter(
            w3,
            router,
            self.sender,
            self.store,
            self.workers,
            deployment.start_block,
            settings.batch_size,
            linger_s=settings.batch_linger_s,
            max_backoff_s=settings.max_backoff_s,
            cosign_timeout_s=min(settings.worker_timeout_s, 2.0),
        )
        self.submitter.on_delivered = self.metrics.delivered
        self.metrics.leading.set_function(lambda: 1.0 if self.leader.leading else 0.0)
        self.stake = StakeGate(w3, deployment, account.address)
        self.submitter.is_held = self._submit_held
        self.expirer = Expirer(w3, router, self.sender, self.store)
        self._stop = threading.Event()
        # Each loop sleeps on its own event; the stage before it sets it when there is work, so
        # a request moves on at once rather than at the next poll.
        self._wake = {
            name: threading.Event() for name in ("watcher", "dispatcher", "submitter", "prober", "pruner", "leases")
        }
        self._pruned_at = 0.0
        self._leases_at = 0.0
        # New blocks wake the loops that read the chain; polling stays as the fallback.
        self.heads = HeadSubscription(websocket_url(settings.rpc_url), self._new_head, settings.rpc_timeout_s)
        self.watcher.claim_new = self.dispatcher.claim_new
        self.watcher.dispatch_claimed = self.dispatcher.dispatch_claimed
        self.dispatcher.on_executed = self._wake["submitter"].set
        self.dispatcher.deliver_now = self.submitter.deliver_now
        self.dispatcher.on_slot_free = self._wake["dispatcher"].set
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self.dispatcher.recover()
        self.submitter.recover()
        self.heads.start()
        for name, step, next_stage in (
            # One replica of those sharing a store reads the chain into it (`bridge.leadership`).
            ("watcher", lambda: self.watcher.poll() if self.leader.held() else 0, "dispatcher"),
            ("dispatcher", self.dispatcher.poll, None),
            # A worker that cooled down is probed before it takes work again.
            ("prober", self.workers.probe, "dispatcher"),
            ("pruner", self._prune, None),
            ("leases", self._leases, "dispatcher"),
            # One thread sends every transaction of the account: fulfilments, then cancellations
            # (by the leading replica only, so that two never cancel the same request).
            ("submitter", lambda: self.submitter.poll() + (self.expirer.poll() if self.leader.leading else 0), None),
        ):
            args = (name, step, next_stage)
            thread = threading.Thread(target=self._loop, args=args, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _loop(self, name: str, step: Callable[[], int], next_stage: str | None) -> None:
        failures = 0
        wake = self._wake[name]
        while not self._stop.is_set():
            wake.clear()
            try:
                busy = step()
                if busy and next_stage:
                    self._wake[next_stage].set()
                failures = 0
                self.errors.pop(name, None)
            except Exception as err:  # noqa: BLE001 - a loop must outlive any one failure
                failures += 1
                self.errors[name] = f"{err.__class__.__name__}: {err}"
                level = logging.ERROR if failures >= LOUD_AFTER else logging.WARNING
                log.log(level, "%s failed (%d in a row): %s", name, failures, err)
                busy = 0
            if failures:
                # A failing loop backs off whatever wakes it (new heads come many times a second).
                self._stop.wait(self._idle_wait(name) * (1 + min(failures, 10)))
            elif not busy:
                wake.wait(self._idle_wait(name))

    def _idle_wait(self, name: str) -> float:
        # With transactions in flight the submitter looks for receipts often (a node without
        # subscriptions tells of no new block).
        if name == "submitter" and self.sender.in_flight():
            return min(RECEIPT_POLL_S, self.settings.poll_interval_s)
        return self.settings.poll_interval_s

    def _submit_held(self) -> str | None:
        """Why fulfilments wait (the transmitter does not stake enough), also as an error."""
        reason = self.stake.held()
        if reason:
            self.errors["stake"] = reason
        else:
            self.errors.pop("stake", None)
        return reason

    def _new_head(self, header: Header) -> None:
        self.watcher.new_head(header)
        self.sender.new_head(header.number)
        self._wake["watcher"].set()
        if self.sender.in_flight():  # a new block may hold their receipts; else it has no news for it
            self._wake["submitter"].set()

    def _leases(self) -> int:
        """A few times per lease: renews this replica's holds, and (leading) puts back the
        requests of replicas that stopped renewing theirs."""
        if time.monotonic() - self._leases_at < self.settings.lease_s / 3:
            return 0
        self._leases_at = time.monotonic()
        self.store.renew_leases(self.dispatcher.running())
        reclaimed = self.store.reclaim_expired() if self.leader.held() else 0
        if reclaimed:
            log.warning("took back %d request(s) from a replica that stopped holding them", reclaimed)
        return reclaimed

    def _prune(self) -> int:
        """Once a minute, the bulky parts of requests that ended more than `retention_s` ago."""
        if not self.leader.leading or time.monotonic() - self._pruned_at < PRUNE_EVERY_S:
            return 0
        self._pruned_at = time.monotonic()
        pruned = 0
        while (batch := self.store.prune(time.time() - self.settings.retention_s)) > 0:
            pruned += batch
        if pruned:
            log.info("pruned %d ended request(s) older than the retention", pruned)
        return pruned

    def status(self) -> dict[str, Any]:
        # The store may be away (a restarting server): the status says so rather than failing.
        try:
            cursor, counts = self.store.cursor(), self.store.counts()
            self.errors.pop("store", None)
        except Exception as err:  # noqa: BLE001 - any failure to read the store is the status's news
            cursor, counts = None, None
            self.errors["store"] = f"{err.__class__.__name__}: {err}"
        return {
            "counts": counts,
            "lastBlockSeen": cursor.last_block_seen if cursor else None,
            "lastBlockProcessed": cursor.last_block_processed if cursor else None,
            "reorgs": self.watcher.reorgs,
            "dispatchHeld": self.rotation.reason or None,
            "submitHeld": self.stake.reason or None,
            "errors": dict(self.errors),
            "workers": self.workers.health(),
            "newHeads": {
                "subscribed": self.heads.connected,
                "received": self.heads.received,
                "error": self.heads.error,
            },
            "fulfilTxsInFlight": self.sender.in_flight(),
            "replica": {"owner": self.store.owner, "leads": self.leader.leading, "sharedStore": self.leader.shared},
            "store": self.store.database.location,
            "replacements": self.sender.replacements,
            "time": time.time(),
        }

    def stop(self) -> None:
        self._stop.set()
        for event in self._wake.values():
            event.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.heads.stop()
        self.watcher.close()
        self.submitter.close()
        self.sender.close()
        self.dispatcher.close()
        self.leader.close()
        self.store.close()
