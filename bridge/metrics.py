"""The bridge's Prometheus metrics.

Request counts by state and the key epoch are read from the store at scrape time (like the
overview). Stage times and gas are cumulative histograms, observed when this bridge records a
delivery: their counts only go up (a restart resets them, which `rate()` understands), unlike a
sliding window computed from the store. The dashboard's 1-minute and 1-hour figures are computed
from the store separately (`bridge/stats.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bridge.stats import stage_times
from bridge.store import RequestStore

LOOPS = ("watcher", "dispatcher", "prober", "pruner", "leases", "submitter")
STAGE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
GAS_BUCKETS = (25_000, 50_000, 75_000, 100_000, 150_000, 250_000, 500_000, 1_000_000, 2_500_000)


class StoreCollector(Collector):
    """Gauges read when scraped: requests by state, the epoch, loops failing, workers up."""

    def __init__(
        self,
        store: RequestStore,
        epoch: Callable[[], int | None],
        failing: Callable[[], dict[str, str]],
        workers: Callable[[], dict[str, dict[str, Any]]],
    ) -> None:
        self.store = store
        self.epoch = epoch
        self.failing = failing
        self.workers = workers

    def collect(self) -> Iterator[GaugeMetricFamily]:
        states = GaugeMetricFamily("enclave_requests", "Requests known to the bridge, by state", labels=["state"])
        try:
            counts = self.store.counts()
        except Exception:  # noqa: BLE001 - the store away (a restarting server): no counts, not a broken scrape
            counts = {}
        for state, count in counts.items():
            states.add_metric([state], count)
        yield states
        failing = self.failing()
        loops = GaugeMetricFamily(
            "enclave_bridge_loop_failing",
            "1 while a loop of the bridge keeps failing (the chain away)",
            labels=["loop"],
        )
        for loop in LOOPS:
            loops.add_metric([loop], 1.0 if loop in failing else 0.0)
        yield loops
        up = GaugeMetricFamily(
            "enclave_worker_up", "1 while a worker takes work, 0 while it cools down", labels=["worker"]
        )
        for url, health in self.workers().items():
            up.add_metric([url], 1.0 if health.get("up") else 0.0)
        yield up
        # As the bridge last read it from the chain: left out before it has (the loop gauges
        # above say why), and never asked at scrape time, so a scrape answers at once.
        current = self.epoch()
        if current is None:
            return
        epoch = GaugeMetricFamily("enclave_key_epoch", "The key epoch on-chain")
        epoch.add_metric([], current)
        yield epoch


class BridgeMetrics:
    """Everything the bridge exports at /metrics."""

    def __init__(
        self,
        store: RequestStore,
        epoch: Callable[[], int | None],
        failing: Callable[[], dict[str, str]] = dict,
        workers: Callable[[], dict[str, dict[str, Any]]] = dict,
    ) -> None:
        self.store = store
        self.registry = CollectorRegistry()
        self.registry.register(StoreCollector(store, epoch, failing, workers))
        self.stage_seconds = Histogram(
            "enclave_request_stage_seconds",
            "Time in each stage of the pipeline, for the requests this bridge delivered",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.fulfil_gas = Histogram(
            "enclave_fulfil_gas_used",
            "Gas per delivered result (its share of the fulfil transaction)",
            buckets=GAS_BUCKETS,
            registry=self.registry,
        )
        # Of replicas sharing a store, exactly one should show 1 (a bridge alone always does).
        self.leading = Gauge(
            "enclave_bridge_leading",
            "1 while this bridge watches the chain for the replicas sharing its store",
            registry=self.registry,
        )

    def delivered(self, request_id: int, gas_used: int | None) -> None:
        for stage, seconds in stage_times(self.store.first_transitions(request_id)).items():
            self.stage_seconds.labels(stage).observe(seconds)
        if gas_used is not None:
            self.fulfil_gas.observe(gas_used)
