"""The bridge's Prometheus metrics, computed at scrape time from the store (like the overview)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from bridge.stats import stage_durations
from bridge.store import RequestStore

STAGE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
GAS_BUCKETS = (25_000, 50_000, 75_000, 100_000, 150_000, 250_000, 500_000, 1_000_000, 2_500_000)
# Histograms cover the requests that ended in the last hour: enough for rates and quantiles.
WINDOW_S = 3600


def _histogram(
    name: str, doc: str, buckets: tuple[float, ...], series: dict[str, list[float]], label: str
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=[label] if label else None)
    for key, values in series.items():
        counts = [(str(b), float(sum(1 for v in values if v <= b))) for b in buckets]
        counts.append(("+Inf", float(len(values))))
        family.add_metric([key] if label else [], counts, sum_value=float(sum(values)))
    return family


class StoreCollector(Collector):
    def __init__(self, store: RequestStore, epoch: Callable[[], int]) -> None:
        self.store = store
        self.epoch = epoch

    def collect(self) -> Iterator[GaugeMetricFamily | HistogramMetricFamily]:
        states = GaugeMetricFamily("enclave_requests", "Requests known to the bridge, by state", labels=["state"])
        for state, count in self.store.counts().items():
            states.add_metric([state], count)
        yield states
        since = time.time() - WINDOW_S
        yield _histogram(
            "enclave_request_stage_seconds",
            "Time in each stage of the pipeline, for requests that ended in the last hour",
            STAGE_BUCKETS,
            stage_durations(self.store, since),
            "stage",
        )
        gas = [
            float(g)
            for (g,) in self.store.query(
                "SELECT gas_used FROM requests WHERE gas_used IS NOT NULL AND updated_at >= ?", (since,)
            )
        ]
        yield _histogram(
            "enclave_fulfil_gas_used", "Gas per delivered result (the tx's share)", GAS_BUCKETS, {"": gas}, ""
        )
        epoch = GaugeMetricFamily("enclave_key_epoch", "The key epoch on-chain")
        epoch.add_metric([], self.epoch())
        yield epoch


def registry(store: RequestStore, epoch: Callable[[], int]) -> CollectorRegistry:
    reg = CollectorRegistry()
    reg.register(StoreCollector(store, epoch))
    return reg
