"""`python -m coprocessor.worker`: runs a worker from ENCLAVE_WORKER_* settings."""

from __future__ import annotations

import logging

import uvicorn

from coprocessor.cluster_store import ClusterStore
from coprocessor.runtime import Sandbox
from coprocessor.settings import ChainSettings, WorkerSettings
from coprocessor.worker.app import create_app
from coprocessor.worker.service import Worker


def main() -> None:
    settings = WorkerSettings()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per HTTP call is noise
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {settings.name} %(levelname)s %(message)s")
    first = ChainSettings(
        rpc_url=settings.rpc_url,
        deployment=settings.deployment,
        gatekeeper_urls=settings.gatekeeper_urls,
        cluster_store=settings.cluster_store,
    )
    # Every chain is checked before the TEE backend makes or reads anything.
    chains = [(chain, *settings.checked_chain(chain.rpc_url, chain.deployment)) for chain in (first, *settings.chains)]
    tee = settings.tee()
    with Sandbox(size=settings.sandbox_processes) as sandbox:
        # One Worker per chain: its own identity, keys, answers and code; the sandbox and the
        # TEE are shared.
        workers = []
        for chain, w3, deployment in chains:
            worker = Worker(
                settings.name,
                w3,
                deployment,
                tee,
                chain.gatekeeper_urls,
                sandbox,
                settings.limits(),
                store=ClusterStore(chain.cluster_store),
                store_path=chain.cluster_store,
                confirmations=settings.confirmations,
                allow_private_networks=settings.allow_private_networks,
            )
            worker.provision_in_background(settings.provision_retry_s)
            workers.append(worker)
        uvicorn.run(
            create_app(workers, settings.execute_token.get_secret_value()),
            host=settings.host,
            port=settings.port,
            log_level="warning",
        )


if __name__ == "__main__":
    main()
