"""`python -m coprocessor.worker`: runs a worker from ENCLAVE_WORKER_* settings."""

from __future__ import annotations

import logging

import uvicorn

from coprocessor.cluster_store import ClusterStore
from coprocessor.runtime import Sandbox
from coprocessor.settings import WorkerSettings
from coprocessor.worker.app import create_app
from coprocessor.worker.service import Worker


def main() -> None:
    settings = WorkerSettings()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per HTTP call is noise
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {settings.name} %(levelname)s %(message)s")
    w3, deployment = settings.checked_chain()
    with Sandbox(size=settings.sandbox_processes) as sandbox:
        worker = Worker(
            settings.name,
            w3,
            deployment,
            settings.tee(),
            settings.gatekeeper_urls,
            sandbox,
            settings.limits(),
            store=ClusterStore(settings.cluster_store),
            store_path=settings.cluster_store,
            confirmations=settings.confirmations,
            allow_private_networks=settings.allow_private_networks,
        )
        worker.provision_in_background(settings.provision_retry_s)
        uvicorn.run(
            create_app(worker, settings.execute_token.get_secret_value()),
            host=settings.host,
            port=settings.port,
            log_level="warning",
        )


if __name__ == "__main__":
    main()
