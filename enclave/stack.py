"""The whole local stack as processes: anvil, a gatekeeper, workers and the bridge.

`enclave up`, `enclave demo` and the end-to-end tests all start it through `Stack`, so what a
user runs is what the tests prove. Every service logs to a file in the state folder and listens
on a free port of 127.0.0.1.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
from eth_account import Account
from web3 import Web3

from coprocessor.tee.simulated import code_measurement
from enclave.anvil import DEV_KEYS, Anvil, free_port, port_is_free
from enclave.deploy import StakingRules, deploy_system, fund, join_fleet
from enclave.errors import StackError
from enclave.lifetime import stop_process, tied_to_this_process
from enclave.postgres import PostgresServer
from protocol.deployment import Deployment, send
from protocol.errors import DeploymentError

DEPLOYER_KEY, TRANSMITTER_KEY = DEV_KEYS[0], DEV_KEYS[1]
# Gatekeepers' chain accounts (registered in TeeRegistry at deployment); DEV_KEYS[3] and [4]
# are left for users and tests.
GATEKEEPER_KEYS = (DEV_KEYS[2], DEV_KEYS[5], DEV_KEYS[6], DEV_KEYS[7])
# Funded dev keys that no service of the stack sends from (the deployer, who owns the example
# agents and whom the dashboard acts as, sends from 0): yours, for requests and scripts.
FREE_DEV_KEYS = (DEV_KEYS[3], DEV_KEYS[4], DEV_KEYS[8])
# Operators' transmitter keys: the first bridge's, then a second operator's (its own bridge).
OPERATOR_KEYS = (TRANSMITTER_KEY, DEV_KEYS[9])
# The transmitter keys of the first operator's bridge replicas (sharing one PostgreSQL store):
# the first bridge's, then the dev mnemonic's accounts 10 and 11 (funded by the deployer).
REPLICA_KEYS = (
    TRANSMITTER_KEY,
    "0xf214f2b2cd398c806f84e317254e0f0b801d0643303237d97a22a48e01628897",
    "0x701b615bbdfb9de65240bc28bd21bbc0d996645a3dd57e7b12bc2bdf6f192c82",
)
STORES = ("sqlite", "postgresql")
# The chain ids of a stack's chains: anvil's own, then the other local development chain id
# (the simulated TEE runs on development chains only).
CHAIN_IDS = (31337, 1337)


@dataclass
class OtherChain:
    """A further chain of the stack, in its own state folder: its anvil, its deployment, its
    gatekeeper and its bridge. The stack's workers serve it too, under its own keys."""

    number: int
    state_dir: Path
    anvil: Anvil
    deployment: Deployment
    gatekeeper_port: int

    @property
    def rpc_url(self) -> str:
        return self.anvil.rpc_url

    @property
    def deployment_path(self) -> Path:
        return self.state_dir / "deployment.json"

    @property
    def cluster_store(self) -> Path:
        return self.state_dir / "cluster.sqlite"

    def web3(self) -> Web3:
        return _client(self.rpc_url)

    def service(self, role: str) -> str:
        """The stack's name of this chain's gatekeeper or bridge: its log is in its folder."""
        return f"chain-{self.number}/{role}"


@dataclass
class Service:
    """A running service process."""

    name: str
    url: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StackError(f"{self.name} exited with code {self.process.returncode}; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise StackError(f"{self.name} was not healthy within {timeout:.0f} s; see {self.log_path}")

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        stop_process(self.process, timeout, sig)


@dataclass
class Stack:
    state_dir: Path = Path(".state")
    rpc_url: str | None = None
    gatekeepers: int = 1
    workers: int = 2
    # Operators, each a bridge with its own transmitter key and stake, sharing the workers.
    operators: int = 1
    # The first operator's store: a SQLite file (the default), or PostgreSQL: this stack's own
    # server in the state folder, or the one `store_url` names. With PostgreSQL the operator may
    # run `replicas` bridges over it, each with its own transmitter key and stake.
    store: str = "sqlite"
    store_url: str | None = field(default=None, repr=False)
    replicas: int = 1
    staking: StakingRules = field(default_factory=StakingRules)
    confirmations: int = 0
    block_time: float | None = 1.0
    automine: bool = True
    # Extra settings for every worker (ENCLAVE_WORKER_*), for example a shorter wall time, and
    # for the bridge (ENCLAVE_BRIDGE_*).
    worker_env: dict[str, str] = field(default_factory=dict)
    bridge_env: dict[str, str] = field(default_factory=dict)
    # Lets agents' ctx.fetch reach loopback and private addresses (APIs on this machine).
    allow_private_networks: bool = False
    # What the bridge shows the workers to run and sign: made at start, never printed.
    execute_token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    # The dashboard: on this port (0 for any free one), or not at all (None).
    web_port: int | None = 0
    # The dashboard's admin token: made at start, printed once by `enclave up`.
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    anvil: Anvil | None = None
    deployment: Deployment | None = None
    services: dict[str, Service] = field(default_factory=dict)
    # Chosen up front, so that every gatekeeper knows every peer, including later ones.
    gatekeeper_ports: list[int] = field(default_factory=list)
    # Where earlier state went when a new chain or deployment made it stale, and what to tell.
    moved_aside: Path | None = None
    notices: list[str] = field(default_factory=list)
    # The chain's port when this stack starts anvil: this one if free (else any, and it says
    # so), or any free port (None).
    rpc_port: int | None = None
    # Where the chain, the gatekeepers, the bridges and the dashboard listen and are reached:
    # loopback, or an address of this host that workers elsewhere reach.
    listen_host: str = "127.0.0.1"
    # Workers placed in network namespaces, as on other hosts: worker index -> (the namespace,
    # the worker's address in it). The namespaces and their links are the caller's.
    worker_namespaces: dict[int, tuple[str, str]] = field(default_factory=dict)
    postgres: PostgresServer | None = None
    # Chains served: the first as above, the others each with an anvil, a deployment, a
    # gatekeeper and a bridge of their own, all sharing the workers.
    chains: int = 1
    other_chains: list[OtherChain] = field(default_factory=list)
    _lock: IO[str] | None = field(default=None, repr=False)

    # -- starting -------------------------------------------------------------------------------

    def start(self) -> Stack:
        if self.store not in STORES:
            raise StackError(f"--store is one of {', '.join(STORES)}, not {self.store!r}")
        if self.replicas > 1 and self.store != "postgresql":
            raise StackError("bridge replicas share a PostgreSQL store: add --store postgresql")
        if not 1 <= self.replicas <= len(REPLICA_KEYS):
            raise StackError(f"--replicas is 1 to {len(REPLICA_KEYS)} on a local stack")
        if not 1 <= self.chains <= len(CHAIN_IDS):
            raise StackError(f"--chains is 1 to {len(CHAIN_IDS)} on a local stack")
        if self.chains > 1 and self.rpc_url is not None:
            raise StackError("several chains are anvils of the stack's own: leave out --rpc-url")
        self._take_lock()
        try:
            if self.web_port and not port_is_free(self.web_port):
                raise StackError(
                    f"port {self.web_port} is taken, so the dashboard cannot listen there: pass --web-port 0 "
                    "for any free port, or --no-web"
                )
            self._start_chain()
            self.gatekeeper_ports = [free_port() for _ in range(self.gatekeepers)]
            for index in range(1, self.gatekeepers + 1):
                self.start_gatekeeper(index)
            for number in range(2, self.chains + 1):
                self._start_other_chain(number)
            # Workers start side by side: each one's start-up is mostly imports and attestation.
            workers = [self.start_worker(f"worker-{i}", wait=False) for i in range(1, self.workers + 1)]
            for worker in workers:
                worker.wait_healthy()
            self._start_store()
            for replica in range(1, self.replicas + 1):
                self.start_bridge(1, replica)
            for index in range(2, self.operators + 1):
                self.start_bridge(index)
            for chain in self.other_chains:
                self.start_chain_bridge(chain)
            if self.web_port is not None:
                self.start_web()
        except BaseException:
            self.stop()
            raise
        self._write_manifest()
        return self

    def _write_manifest(self) -> None:
        """Where everything runs, for `enclave status`, `enclave secrets` and `enclave keys`."""
        manifest = {
            "rpcUrl": self.rpc_url,
            "otherChains": [
                {"chainId": c.deployment.chain_id, "rpcUrl": c.rpc_url, "deployment": str(c.deployment_path)}
                for c in self.other_chains
            ],
            "teeBackend": "simulated",
            "services": {n: s.url for n, s in self.services.items()},
        }
        (self.state_dir / "stack.json").write_text(json.dumps(manifest, indent=2))

    def _start_chain(self) -> None:
        if self.rpc_url is None:
            # A new chain makes earlier state meaningless: it is moved aside, never deleted.
            self._move_aside("a new chain starts")
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self.anvil = Anvil(
                port=self._chain_port(),
                host=self.listen_host,
                block_time=self.block_time,
                automine=self.automine,
                log_path=self.state_dir / "anvil.log",
            ).start()
            self.rpc_url = self.anvil.rpc_url
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.deployment = self._deploy_or_reuse()

    def _start_store(self) -> None:
        """This stack's PostgreSQL server, in the state folder, when the store is one and no
        URL names another."""
        if self.store != "postgresql" or self.store_url is not None:
            return
        self.postgres = PostgresServer(self.state_dir / "postgres", log_path=self.state_dir / "postgres.log").start()
        self.store_url = self.postgres.url

    def _start_other_chain(self, number: int) -> OtherChain:
        """Chain `number` (2, ...): its anvil, the system deployed on it (the stack's first
        gatekeeper account and first transmitter registered there), and its gatekeeper."""
        state_dir = self.state_dir / f"chain-{number}"
        state_dir.mkdir(parents=True, exist_ok=True)
        anvil = Anvil(
            host=self.listen_host,
            block_time=self.block_time,
            automine=self.automine,
            chain_id=CHAIN_IDS[number - 1],
            log_path=state_dir / "anvil.log",
        ).start()
        w3 = _client(anvil.rpc_url)
        try:
            deployment = deploy_system(
                w3,
                DEPLOYER_KEY,
                gatekeepers=[Account.from_key(GATEKEEPER_KEYS[0]).address],
                operators=[TRANSMITTER_KEY],
                staking=self.staking,
            )
            send(
                w3,
                Account.from_key(DEPLOYER_KEY),
                deployment.contract(w3, "TeeRegistry").functions.allowMeasurement(code_measurement()),
            )
        except BaseException:
            anvil.stop()  # not yet among the chains that `stop` stops
            raise
        chain = OtherChain(number, state_dir, anvil, deployment, free_port())
        deployment.save(chain.deployment_path)
        self.other_chains.append(chain)
        name = chain.service("gatekeeper")
        env = self._common("ENCLAVE_GATEKEEPER_", chain.gatekeeper_port, name, chain) | {
            "ENCLAVE_GATEKEEPER_ETH_PRIVATE_KEY": GATEKEEPER_KEYS[0],
            "ENCLAVE_GATEKEEPER_HOST": self.listen_host,
        }
        self._spawn(name, "coprocessor.gatekeeper", env, chain.gatekeeper_port).wait_healthy()
        return chain

    def transmitter_keys(self) -> list[str]:
        """Every bridge's transmitter key: the first operator's replicas', then the others'."""
        return list(REPLICA_KEYS[: self.replicas]) + list(OPERATOR_KEYS[1 : self.operators])

    def _take_lock(self) -> None:
        """One stack per state folder: a lock beside the folder (a folder moved aside keeps no
        lock), held while this process runs and let go by the kernel whenever it ends."""
        if self._lock is not None:
            return
        lock_path = self.state_dir.with_name(f"{self.state_dir.name}.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(lock_path, "a+")  # noqa: SIM115 - held open for the stack's lifetime
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            pid = lock.read().strip() or "?"
            lock.close()
            raise StackError(
                f"a stack is already running in {self.state_dir} (pid {pid}): stop it first (Ctrl-C where it "
                f"runs, or `kill {pid}`), or give this one another --state-dir"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock = lock

    def _chain_port(self) -> int:
        if self.rpc_port is None:
            return free_port()
        if port_is_free(self.rpc_port):
            return self.rpc_port
        port = free_port()
        self.notices.append(f"port {self.rpc_port} is taken: the chain listens on {port} instead")
        return port

    def _move_aside(self, reason: str) -> None:
        """Renames a state folder that holds anything to `<name>.old-<time>`, and says so."""
        if not self.state_dir.is_dir() or not any(self.state_dir.iterdir()):
            return
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.state_dir.with_name(f"{self.state_dir.name}.old-{stamp}")
        suffix = 1
        while target.exists():
            suffix += 1
            target = self.state_dir.with_name(f"{self.state_dir.name}.old-{stamp}-{suffix}")
        self.state_dir.rename(target)
        self.moved_aside = target
        self.notices.append(f"{reason}: the earlier state in {self.state_dir} is now in {target}")

    def _deploy_or_reuse(self) -> Deployment:
        w3 = self.web3()
        path = self.deployment_path
        if path.exists():
            # An unreadable deployment file is an error to fix, never a reason to touch the keys.
            existing = Deployment.load(path)
            if "AgentRouter" not in existing.addresses:
                raise DeploymentError(f"{path} names no AgentRouter: fix it, or move the folder away")
            router = Web3.to_checksum_address(existing.addresses["AgentRouter"])
            if existing.chain_id == w3.eth.chain_id and w3.eth.get_code(router):
                return existing
            # A new deployment: the folder's keys and cursor belong to the old one.
            self._move_aside(f"{path} is of chain {existing.chain_id} with no router here")
            self.state_dir.mkdir(parents=True, exist_ok=True)
        gatekeepers = [Account.from_key(key).address for key in GATEKEEPER_KEYS[: self.gatekeepers]]
        # Each bridge's transmitter stakes, so that it may deliver and is assigned requests, and
        # holds ether for its transactions.
        operators = self.transmitter_keys()
        deployer = Account.from_key(DEPLOYER_KEY)
        for key in operators:
            address = Account.from_key(key).address
            if w3.eth.get_balance(address) == 0:
                fund(w3, deployer, address, 100 * 10**18)
        deployment = deploy_system(w3, DEPLOYER_KEY, gatekeepers=gatekeepers, operators=operators, staking=self.staking)
        # One operator's replicas are one fleet: they deliver each other's missed assignments
        # without slashing each other.
        lead = Account.from_key(REPLICA_KEYS[0])
        for key in REPLICA_KEYS[1 : self.replicas]:
            join_fleet(w3, deployment.contract(w3, "OperatorStaking"), lead, Account.from_key(key))
        tee = deployment.contract(w3, "TeeRegistry")
        send(w3, Account.from_key(DEPLOYER_KEY), tee.functions.allowMeasurement(code_measurement()))
        deployment.save(path)
        return deployment

    def _spawn(
        self,
        name: str,
        module: str,
        env: dict[str, str],
        port: int,
        host: str | None = None,
        prefix: tuple[str, ...] = (),
    ) -> Service:
        """Runs one of our modules as `name`, reached at `host` (the stack's listen host by
        default), its command after `prefix` (`ip netns exec NS` for a worker elsewhere)."""
        log_path = self.state_dir / f"{name}.log"
        log_file = open(log_path, "ab")  # noqa: SIM115 - the child process owns it from here
        process = subprocess.Popen(  # noqa: S603 - this Python running one of our own modules, no shell
            tied_to_this_process([*prefix, sys.executable, "-m", module]),
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the terminal reaches `enclave up`, which stops us in order
        )
        log_file.close()
        url = f"http://{host or self.listen_host}:{port}"
        service = Service(name=name, url=url, log_path=log_path, process=process)
        self.services[name] = service
        return service

    def _common(self, prefix: str, port: int, state: str, chain: OtherChain | None = None) -> dict[str, str]:
        """What a gatekeeper or worker is told of its (first) chain, its folder and its port;
        the attestation authority is one for the whole stack."""
        return {
            f"{prefix}RPC_URL": chain.rpc_url if chain else str(self.rpc_url),
            f"{prefix}DEPLOYMENT": str(chain.deployment_path if chain else self.deployment_path),
            f"{prefix}STATE_DIR": str(self.state_dir / state),
            f"{prefix}PORT": str(port),
            f"{prefix}ATTESTATION_AUTHORITY_KEY": str(self.state_dir / "attestation-authority.key"),
            f"{prefix}CLUSTER_STORE": str(chain.cluster_store if chain else self.state_dir / "cluster.sqlite"),
        }

    def gatekeeper_urls(self) -> list[str]:
        return [f"http://{self.listen_host}:{port}" for port in self.gatekeeper_ports]

    def start_gatekeeper(self, index: int = 1) -> Service:
        """Gatekeeper 1 makes the master key; the others fetch it from their peers."""
        name = "gatekeeper" if index == 1 else f"gatekeeper-{index}"
        port = self.gatekeeper_ports[index - 1] if index <= len(self.gatekeeper_ports) else free_port()
        peers = [url for url in self.gatekeeper_urls() if not url.endswith(f":{port}")]
        env = self._common("ENCLAVE_GATEKEEPER_", port, name) | {
            "ENCLAVE_GATEKEEPER_ETH_PRIVATE_KEY": GATEKEEPER_KEYS[index - 1],
            "ENCLAVE_GATEKEEPER_PEERS": _json_list(peers),
            "ENCLAVE_GATEKEEPER_ROTATION_DELAY_S": str((index - 1) * 2.0),
            "ENCLAVE_GATEKEEPER_HOST": self.listen_host,
        }
        service = self._spawn(name, "coprocessor.gatekeeper", env, port)
        service.wait_healthy()
        return service

    def _port(self, name: str) -> int:
        """A service keeps its port across restarts, so that its peers find it again."""
        existing = self.services.get(name)
        return int(existing.url.rsplit(":", 1)[1]) if existing else free_port()

    def start_worker(self, name: str, measurement_salt: str = "", wait: bool = True) -> Service:
        port = self._port(name)
        index = int(name.rsplit("-", 1)[1]) if name.rsplit("-", 1)[-1].isdigit() else 0
        namespace, host = self.worker_namespaces.get(index, ("", self.listen_host))
        gatekeepers = [s.url for n, s in self.services.items() if n.startswith("gatekeeper")]
        env = (
            self._common("ENCLAVE_WORKER_", port, name)
            | {
                "ENCLAVE_WORKER_NAME": name,
                "ENCLAVE_WORKER_GATEKEEPER_URLS": _json_list(gatekeepers),
                "ENCLAVE_WORKER_MEASUREMENT_SALT": measurement_salt,
                "ENCLAVE_WORKER_CONFIRMATIONS": str(self.confirmations),
                "ENCLAVE_WORKER_EXECUTE_TOKEN": self.execute_token,
                "ENCLAVE_WORKER_ALLOW_PRIVATE_NETWORKS": str(self.allow_private_networks).lower(),
                "ENCLAVE_WORKER_HOST": host,
                "ENCLAVE_WORKER_CHAINS": json.dumps(
                    [
                        {
                            "rpc_url": chain.rpc_url,
                            "deployment": str(chain.deployment_path),
                            "gatekeeper_urls": [self.url(chain.service("gatekeeper"))],
                            "cluster_store": str(chain.cluster_store),
                        }
                        for chain in self.other_chains
                    ]
                ),
            }
            | self.worker_env
        )
        prefix = ("ip", "netns", "exec", namespace) if namespace else ()
        service = self._spawn(name, "coprocessor.worker", env, port, host=host, prefix=prefix)
        if wait:
            service.wait_healthy()
        return service

    def start_bridge(self, operator: int = 1, replica: int = 1) -> Service:
        """The bridge of operator `operator` (1: the stack's own; others keep a database of their
        own), or replica `replica` of the first operator's, which share its PostgreSQL store."""
        name = "bridge" if operator == 1 else f"bridge-{operator}"
        if replica > 1:
            name = f"bridge-r{replica}"
        store = {"ENCLAVE_BRIDGE_STORE_URL": self.store_url} if operator == 1 and self.store_url else {}
        key = REPLICA_KEYS[replica - 1] if operator == 1 else OPERATOR_KEYS[operator - 1]
        return self._start_bridge(
            name, str(self.rpc_url), self.deployment_path, self.state_dir / f"{name}.sqlite", key, store
        )

    def start_chain_bridge(self, chain: OtherChain) -> Service:
        """The bridge of another chain: the first operator's transmitter, a SQLite store in the
        chain's folder, the stack's workers."""
        name = chain.service("bridge")
        return self._start_bridge(
            name, chain.rpc_url, chain.deployment_path, chain.state_dir / "bridge.sqlite", TRANSMITTER_KEY
        )

    def _start_bridge(
        self, name: str, rpc_url: str, deployment: Path, database: Path, key: str, store: dict[str, str] | None = None
    ) -> Service:
        port = self._port(name)
        workers = [s.url for n, s in self.services.items() if n.startswith("worker")]
        env = (
            (store or {})
            | {
                "ENCLAVE_BRIDGE_RPC_URL": rpc_url,
                "ENCLAVE_BRIDGE_DEPLOYMENT": str(deployment),
                "ENCLAVE_BRIDGE_DATABASE": str(database),
                "ENCLAVE_BRIDGE_WORKER_URLS": _json_list(workers),
                "ENCLAVE_BRIDGE_ETH_PRIVATE_KEY": key,
                "ENCLAVE_BRIDGE_HOST": self.listen_host,
                "ENCLAVE_BRIDGE_CONFIRMATIONS": str(self.confirmations),
                "ENCLAVE_BRIDGE_WORKER_TOKEN": self.execute_token,
                "ENCLAVE_BRIDGE_PORT": str(port),
            }
            | self.bridge_env
        )
        service = self._spawn(name, "bridge", env, port)
        service.wait_healthy()
        return service

    def start_web(self) -> Service:
        port = self.web_port or self._port("web")
        urls = {n: s.url for n, s in self.services.items()}
        env = {
            "ENCLAVE_WEB_PORT": str(port),
            "ENCLAVE_WEB_HOST": self.listen_host,
            "ENCLAVE_WEB_RPC_URL": str(self.rpc_url),
            "ENCLAVE_WEB_DEPLOYMENT": str(self.deployment_path),
            "ENCLAVE_WEB_BRIDGE_DATABASE": str(self.state_dir / "bridge.sqlite"),
            "ENCLAVE_WEB_BRIDGE_STORE_URL": self.store_url or "",
            "ENCLAVE_WEB_WORKER_URLS": _json_list([u for n, u in urls.items() if n.startswith("worker")]),
            "ENCLAVE_WEB_GATEKEEPER_URLS": _json_list(self.gatekeeper_urls()),
            "ENCLAVE_WEB_ATTESTATION_AUTHORITY_PUBLIC_KEY": str(self.state_dir / "attestation-authority.pub"),
            "ENCLAVE_WEB_OPERATOR_KEY": DEPLOYER_KEY,
            "ENCLAVE_WEB_ADMIN_TOKEN_SHA256": hashlib.sha256(self.admin_token.encode()).hexdigest(),
        }
        service = self._spawn("web", "webui", env, port)
        service.wait_healthy()
        return service

    # -- using ----------------------------------------------------------------------------------

    @property
    def deployment_path(self) -> Path:
        return self.state_dir / "deployment.json"

    def web3(self) -> Web3:
        if self.rpc_url is None:
            raise StackError("the stack has no chain yet")
        return _client(self.rpc_url)

    def url(self, name: str) -> str:
        return self.services[name].url

    # -- stopping -------------------------------------------------------------------------------

    def stop(self) -> None:
        for name in reversed(list(self.services)):
            self.services[name].stop()
        self.services.clear()
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres = None
        for chain in self.other_chains:
            chain.anvil.stop()
        self.other_chains.clear()
        if self.anvil is not None:
            self.anvil.stop()
            self.anvil = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _client(rpc_url: str) -> Web3:
    """A client of one of the stack's chains, for the stack's own transactions and its users'."""
    return Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))


def _json_list(items: list[str]) -> str:
    """pydantic-settings reads list settings from env as JSON."""
    return "[" + ",".join(f'"{item}"' for item in items) + "]"
