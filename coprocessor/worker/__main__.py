"""`python -m coprocessor.worker`: runs a worker from ENCLAVE_WORKER_* settings."""

from __future__ import annotations

import contextlib
import logging

import uvicorn
from web3 import Web3

from coprocessor.cluster_store import ClusterStore
from coprocessor.runtime import Sandbox
from coprocessor.settings import ChainSettings, WorkerSettings, start_checked
from coprocessor.worker.app import create_app
from coprocessor.worker.chains import ServedChains
from coprocessor.worker.service import Worker
from coprocessor.worker.stream import ExecuteStream
from protocol.deployment import Deployment, connect


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
    chains = [(chain, *_checked(settings, chain)) for chain in (first, *settings.chains)]
    ids = [deployment.chain_id for _, _, deployment in chains]
    if len(set(ids)) != len(ids):
        raise SystemExit(f"each chain is served once, but the chains' ids are {ids}")
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
        token, served = settings.execute_token.get_secret_value(), ServedChains(workers)
        with contextlib.ExitStack() as running:
            for worker in workers:
                following = worker.follow_requests()
                if following is not None:
                    running.callback(following.stop)
            stream = None
            if settings.execute_stream:
                stream = running.enter_context(ExecuteStream(served, token, settings.host, settings.stream_port))
            uvicorn.run(
                create_app(served, token, stream_port=stream.port if stream else None),
                host=settings.host,
                port=settings.port,
                log_level="warning",
            )


def _checked(settings: WorkerSettings, chain: ChainSettings) -> tuple[Web3, Deployment]:
    """The chain's node and deployment, checked. A node that does not answer yet costs only its
    own chain: its deployment is checked now, and the node before this worker takes its keys."""
    try:
        return settings.checked_chain(chain.rpc_url, chain.deployment)
    except OSError as err:  # requests' connection errors are OSErrors
        deployment = Deployment.load(chain.deployment)
        start_checked(settings, deployment.chain_id)
        logging.getLogger(__name__).warning(
            "chain %d's node at %s does not answer (%s): serving it once it does",
            deployment.chain_id,
            chain.rpc_url,
            err.__class__.__name__,
        )
        return connect(chain.rpc_url, 10.0), deployment


if __name__ == "__main__":
    main()
