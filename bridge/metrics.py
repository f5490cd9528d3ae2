"""The bridge's Prometheus metrics.

Request counts by state and the key epoch are read from the store at scrape time (like the
overview). Stage times and gas are cumulative histograms, observed when this bridge records a
delivery: their counts only go up (a restart resets them, which `rate()` understands), unlike a
sliding window computed from the store. The dashboard's 1-minute and 1-hour figures are computed
from the store separately (`bridge/stats.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bridge.stats import stage_times
from bridge.store import RequestStore

STAGE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
GAS_BUCKETS = (25_000, 50_000, 75_000, 100_000, 150_000, 250_000, 500_000, 1_000_000, 2_500_000)


class StoreCollector(Collector):
    """Gauges read from the store when scraped."""

    def __init__(self, store: RequestStore, epoch: Callable[[], int]) -> None:
        self.store = store
        self.epoch = epoch

    def collect(self) -> Iterator[GaugeMetricFamily]:
        states = GaugeMetricFamily("enclave_requests", "Requests known to the bridge, by state", labels=["state"])
        for state, count in self.store.counts().items():
            states.add_metric([state], count)
        yield states
        epoch = GaugeMetricFamily("enclave_key_epoch", "The key epoch on-chain")
        epoch.add_metric([], self.epoch())
        yield epoch


class BridgeMetrics:
    """Everything the bridge exports at /metrics."""

    def __init__(self, store: RequestStore, epoch: Callable[[], int]) -> None:
        self.store = store
        self.registry = CollectorRegistry()
        self.registry.register(StoreCollector(store, epoch))
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

    def delivered(self, request_id: int, gas_used: int | None) -> None:
        for stage, seconds in stage_times(self.store.first_transitions(request_id)).items():
            self.stage_seconds.labels(stage).observe(seconds)
        if gas_used is not None:
            self.fulfil_gas.observe(gas_used)
