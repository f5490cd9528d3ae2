"""Settings of the coprocessor's services, from environment variables (and flags, via env)."""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import BaseModel, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from web3 import Web3

from coprocessor.errors import InsecureBackendRefused
from coprocessor.tee.base import QuoteVerifier, TeeBackend
from coprocessor.tee.simulated import (
    SimulatedTee,
    SimulatedVerifier,
    code_measurement,
    load_authority,
    load_authority_public_key,
    public_key_path,
)
from protocol.deployment import Deployment, connect
from protocol.limits import Limits

# The chain ids of local development chains (anvil and hardhat; geth --dev and ganache): the
# only places the simulated TEE may run without saying so explicitly.
DEVELOPMENT_CHAIN_IDS = frozenset({31337, 1337})


class ServiceSettings(BaseSettings):
    """What the gatekeeper and the worker share: the chain, the state folder, the TEE backend."""

    rpc_url: str = "http://127.0.0.1:8545"
    deployment: Path = Path(".state/deployment.json")
    state_dir: Path = Path(".state/service")
    host: str = "127.0.0.1"
    port: int = 0
    tee_backend: str = "simulated"
    # The simulated TEE's attestation authority (its private key: it stands for the CPU vendor).
    attestation_authority_key: Path = Path(".state/attestation-authority.key")
    # The simulated TEE gives no isolation: outside development chains a service refuses to start with
    # it unless this names the risk explicitly.
    insecure_simulated_tee: bool = False
    # Changes the simulated measurement, as modified worker code would: for tests of refusal.
    measurement_salt: str = ""
    # The store every worker of the cluster reaches: agents' sealed state and owners' secrets.
    cluster_store: Path = Path(".state/cluster.sqlite")

    def web3(self) -> Web3:
        return connect(self.rpc_url, 10.0)

    def load_deployment(self) -> Deployment:
        return Deployment.load(self.deployment)

    def checked_chain(self, rpc_url: str | None = None, deployment_path: Path | None = None) -> tuple[Web3, Deployment]:
        """The chain and the deployment (this service's, or those named), once the TEE backend
        may run on them and they agree; otherwise the service exits saying why."""
        w3 = connect(rpc_url, 10.0) if rpc_url else self.web3()
        node_chain_id = w3.eth.chain_id
        start_checked(self, node_chain_id)  # before the deployment file: it may be missing
        deployment = Deployment.load(deployment_path) if deployment_path else self.load_deployment()
        # The deployment's chain too: a node may claim a development chain it is not.
        start_checked(self, node_chain_id, deployment.chain_id, quiet=True)
        if node_chain_id != deployment.chain_id:
            raise SystemExit(
                f"the RPC node serves chain {node_chain_id}, the deployment is on chain {deployment.chain_id}"
            )
        return w3, deployment

    # dcap: the policy that quotes of workers and peer gatekeepers must meet.
    dcap_allowed_mr_td: list[str] = []
    dcap_allowed_mr_enclave: list[str] = []
    dcap_allowed_mr_signer: list[str] = []
    dcap_accepted_tcb_statuses: list[str] = ["UpToDate"]

    def check_backend(self, chain_id: int) -> None:
        """Refuses the simulated TEE on any chain but a development one, unless told otherwise."""
        if (
            self.tee_backend == "simulated"
            and chain_id not in DEVELOPMENT_CHAIN_IDS
            and not self.insecure_simulated_tee
        ):
            raise InsecureBackendRefused(
                f"refusing the SIMULATED TEE on chain {chain_id}: it gives no hardware isolation, so anyone with "
                "this machine can read keys and forge results. Use TEE_BACKEND=dcap, or set "
                "INSECURE_SIMULATED_TEE=true to run it anyway (testnets you do not care about)"
            )

    def tee(self) -> TeeBackend:
        if self.tee_backend == "simulated":
            authority = load_authority(self.attestation_authority_key)
            return SimulatedTee(authority, self.state_dir, code_measurement(self.measurement_salt))
        if self.tee_backend == "dcap":
            # The dcap backend is an optional extra (`pip install enclave-agents[dcap]`).
            from coprocessor.tee.dcap import DcapTee, DstackQuoteSource

            source = DstackQuoteSource()
            return DcapTee(source, source.sealing_secret())
        raise ValueError(f"unknown TEE backend {self.tee_backend!r} (simulated or dcap)")

    def verifier(self) -> QuoteVerifier:
        if self.tee_backend == "dcap":
            from coprocessor.tee.dcap import DcapPolicy, DcapVerifier

            return DcapVerifier(
                DcapPolicy(
                    allowed_mr_td=frozenset(self.dcap_allowed_mr_td),
                    allowed_mr_enclave=frozenset(self.dcap_allowed_mr_enclave),
                    allowed_mr_signer=frozenset(self.dcap_allowed_mr_signer),
                    accepted_tcb_statuses=frozenset(self.dcap_accepted_tcb_statuses),
                )
            )
        return SimulatedVerifier(load_authority_public_key(public_key_path(self.attestation_authority_key)))


class GatekeeperSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ENCLAVE_GATEKEEPER_")

    # The gatekeeper's chain account, registered in TeeRegistry: it publishes epochs.
    eth_private_key: SecretStr = SecretStr("")
    # Other gatekeepers to fetch the master keys from (at start, and after a peer rotated).
    peers: list[str] = []
    rotation_poll_s: float = 0.5
    # Waited before carrying out a rotation; give each gatekeeper its own, so they seldom race.
    rotation_delay_s: float = 0.0


class ChainSettings(BaseModel):
    """Another chain a worker serves, beside its first: the node, the deployment, the chain's
    own gatekeepers (its TeeRegistry's), and the cluster store of its agents."""

    rpc_url: str
    deployment: Path
    gatekeeper_urls: list[str]
    cluster_store: Path


class WorkerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ENCLAVE_WORKER_")

    name: str = "worker"
    gatekeeper_urls: list[str] = []
    sandbox_processes: int = 2
    provision_retry_s: float = 1.0
    # Default limits of an agent run (per-agent limits may lower or raise them).
    wall_time_ms: int = 10_000
    memory_mb: int = 64
    # Blocks deep a request must be before this worker runs it (its own check, not the bridge's).
    confirmations: int = 0
    # What the bridge presents to run and sign (Authorization: Bearer ...); empty refuses all.
    execute_token: SecretStr = SecretStr("")
    # Lets ctx.fetch reach loopback and private addresses: for local development only.
    allow_private_networks: bool = False
    # More chains to serve with the same sandbox, each under its own keys (JSON in the env).
    chains: list[ChainSettings] = []
    # The execute stream (coprocessor/worker/stream.py), the bridge's fast way in: its port (0:
    # any free one; /v1/info names it), or none at all (the bridge then calls the HTTP API).
    execute_stream: bool = True
    stream_port: int = 0

    def limits(self) -> Limits:
        return Limits(wall_time_ms=self.wall_time_ms, memory_bytes=self.memory_mb * 1024 * 1024)


def start_checked(settings: ServiceSettings, *chain_ids: int, quiet: bool = False) -> None:
    """Exits with the reason when the TEE backend may not run on these chains (the RPC node's
    answer and the deployment's, which the signatures are bound to: a node could lie about the
    first); says SIMULATED plainly in the log whenever it runs."""
    try:
        for chain_id in chain_ids:
            settings.check_backend(chain_id)
    except InsecureBackendRefused as err:
        raise SystemExit(str(err)) from err
    if settings.tee_backend == "simulated" and not quiet:
        logging.getLogger("coprocessor").warning(
            "TEE backend SIMULATED on chain %s: no hardware isolation, for development only",
            ", ".join(str(c) for c in sorted(set(chain_ids))),
        )
