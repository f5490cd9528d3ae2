"""The bridge's settings, from ENCLAVE_BRIDGE_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class BridgeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ENCLAVE_BRIDGE_")

    rpc_url: str = "http://127.0.0.1:8545"
    # Every call to the chain gives up after this long (a hung node must not hang the bridge).
    rpc_timeout_s: float = 10.0
    # The longest wait between two tries of a request (delays double up to it, jittered); a
    # request is tried until its deadline, then cancelled so that its fee goes back.
    max_backoff_s: float = 15.0
    # How long the inputs, outputs, logs and transitions of ended requests are kept (their row,
    # with its state and transactions, stays for good): bounds the database's growth.
    retention_s: float = 7 * 24 * 3600
    deployment: Path = Path(".state/deployment.json")
    database: Path = Path(".state/bridge.sqlite")
    # A `postgresql://` URL instead of the SQLite file: a server that replicas of one operator
    # share (each with its own transmitter key). Secret: it carries the password.
    store_url: SecretStr = SecretStr("")
    # How long a replica's hold on a request it works on lasts unless renewed: after it dies,
    # this long until another replica takes its requests back.
    lease_s: float = Field(30.0, ge=1.0)
    worker_urls: list[str] = []
    # The transmitter's key: it pays for fulfil transactions and earns the fees.
    eth_private_key: SecretStr = SecretStr("")
    confirmations: int = 0
    # Blocks to wait after a new key epoch is published before dispatching again.
    rotation_confirmations: int = 2
    poll_interval_s: float = 0.2
    batch_size: int = 50
    # While a fulfilment is in flight, the next batch fills up for at most this long.
    batch_linger_s: float = 0.1
    # Transactions of the bridge's account in flight at once (consecutive nonces), and how long
    # one may stay unmined before it is sent again with fees a quarter higher.
    max_txs_in_flight: int = 4
    replace_after_s: float = 20.0
    dispatch_concurrency: int = 4
    # Requests one call to a worker carries at most (what is due is shared among the workers).
    dispatch_batch_size: int = 16
    # Waits on a worker: its health check and batch co-signing; an execution waits for the
    # agent's own wall-time limit (from its manifest) plus `execute_margin_s`.
    worker_timeout_s: float = 10.0
    execute_margin_s: float = 5.0
    # Requests one worker runs at once (its sandbox processes): a hung worker holds no more.
    worker_max_in_flight: int = 2
    # A failing worker rests 1 s, then twice as long after each failure in a row, up to this;
    # then it is probed, and takes work again once its health check answers.
    worker_max_cooldown_s: float = 30.0
    # The token the workers ask for before they run or sign anything (their execute token).
    worker_token: SecretStr = SecretStr("")
    host: str = "127.0.0.1"
    port: int = 0
