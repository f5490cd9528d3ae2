"""`python -m coprocessor.gatekeeper`: runs a gatekeeper from ENCLAVE_GATEKEEPER_* settings."""

from __future__ import annotations

import logging
import threading

import uvicorn
from eth_account import Account

from coprocessor.cluster_store import ClusterStore
from coprocessor.gatekeeper.app import create_app
from coprocessor.gatekeeper.service import Gatekeeper
from coprocessor.settings import GatekeeperSettings

log = logging.getLogger("coprocessor.gatekeeper")


def watch_rotation(gatekeeper: Gatekeeper, settings: GatekeeperSettings) -> None:
    while True:
        try:
            gatekeeper.rotate_if_requested(settings.peers, settings.rotation_delay_s)
        except Exception as err:  # noqa: BLE001 - the watcher must outlive a failed round
            log.warning("rotation watch: %s", err)
        threading.Event().wait(settings.rotation_poll_s)


def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per HTTP call is noise
    logging.basicConfig(level=logging.INFO, format="%(asctime)s gatekeeper %(levelname)s %(message)s")
    settings = GatekeeperSettings()
    w3, deployment = settings.checked_chain()
    account = Account.from_key(settings.eth_private_key.get_secret_value())
    gatekeeper = Gatekeeper(
        w3,
        deployment,
        account,
        settings.tee(),
        settings.verifier(),
        settings.state_dir,
        ClusterStore(settings.cluster_store),
    )
    # The first gatekeeper of a fresh deployment makes the master key (ensure_epoch); any other
    # fetches it from a peer.
    if not gatekeeper.has_masters and gatekeeper.current_epoch() > 0:
        gatekeeper.join(settings.peers)
    gatekeeper.ensure_epoch()
    threading.Thread(target=watch_rotation, args=(gatekeeper, settings), name="rotation", daemon=True).start()
    uvicorn.run(create_app(gatekeeper), host=settings.host, port=settings.port, log_level="warning")


if __name__ == "__main__":
    main()
