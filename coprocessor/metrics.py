"""Prometheus metrics of the worker and the gatekeeper, each on its own registry."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.responses import Response

WORKER = CollectorRegistry()
GATEKEEPER = CollectorRegistry()

EXECUTIONS = Counter("enclave_executions", "Agent runs on this worker, by status", ["status"], registry=WORKER)
EXECUTION_SECONDS = Histogram(
    "enclave_execution_seconds",
    "Time of an agent run inside the sandbox",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0),
    registry=WORKER,
)
OPEN_CHECKS = Counter(
    "enclave_open_checks",
    "Requests found open before their run: by the node's pushes, or asked of it",
    ["by"],
    registry=WORKER,
)
WORKER_EPOCH = Gauge(
    "enclave_key_epoch", "The key epoch this worker signs with, by chain", ["chain_id"], registry=WORKER
)
PROVISIONED = Counter(
    "enclave_workers_provisioned", "Workers this gatekeeper gave the cluster key", registry=GATEKEEPER
)
GATEKEEPER_EPOCH = Gauge("enclave_key_epoch", "The key epoch on-chain, as this gatekeeper sees it", registry=GATEKEEPER)


def metrics_response(registry: CollectorRegistry) -> Response:
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
