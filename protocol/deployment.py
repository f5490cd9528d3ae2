"""Compiled contracts, and deploying the whole system to any RPC URL.

Artifacts come from forge's `out/` folder (the setup runs `forge build`). A deployment is
written as JSON with the chain id, the block it started at, and every contract's address and
ABI, so that the bridge, the workers, the dashboard and users' scripts all read one file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.types import RPCEndpoint

from protocol.errors import ArtifactMissing, DeploymentError
from protocol.fees import GasPrice

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS_DIR = PROJECT_ROOT / "out"


def connect(rpc_url: str, timeout_s: float = 10.0) -> Web3:
    """A chain client whose every call gives up after `timeout_s`, with no silent retries of its
    own (web3's default retries a timeout five times): the services' loops retry, and say so.

    Answers that cannot change (the chain id, which web3 asks before every call to validate
    it) are cached: without that, every contract call cost two round trips to the node. The
    environment's proxy settings are read once, here: by default each call read them (and
    looked for a ~/.netrc) again, which cost more than a local node's answer."""
    session = requests.Session()
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(rpc_url))
    provider = Web3.HTTPProvider(
        rpc_url,
        session=session,
        request_kwargs={"timeout": timeout_s},
        exception_retry_configuration=None,
        cache_allowed_requests=True,
        # Only these: web3 would also cache blocks and transactions, which a reorg can change.
        cacheable_requests={RPCEndpoint("eth_chainId"), RPCEndpoint("net_version")},
    )
    return Web3(provider)


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str


def load_artifact(name: str, source_file: str | None = None, artifacts_dir: Path = ARTIFACTS_DIR) -> Artifact:
    """The ABI and creation bytecode of a compiled contract (forge names out/ by source file,
    `<name>.sol` unless `source_file` says otherwise)."""
    path = artifacts_dir / (source_file or f"{name}.sol") / f"{name}.json"
    if not path.exists():
        raise ArtifactMissing(name, str(path))
    data = json.loads(path.read_text())
    return Artifact(name=name, abi=data["abi"], bytecode=data["bytecode"]["object"])


def send(
    w3: Web3,
    account: LocalAccount,
    call: Any,
    value: int = 0,
    gas: int | None = None,
    gas_price: GasPrice | None = None,
) -> Any:
    """Signs and sends a contract call (or a constructor) from `account`; returns the receipt.
    `gas_price` fixes the fee cap and tip (a request's value was reckoned at that cap).

    Raises DeploymentError when the transaction reverts.
    """
    params: dict[str, Any] = {
        "from": account.address,
        "value": value,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
    }
    if gas is not None:
        params["gas"] = gas
    if gas_price is not None:
        params.update(gas_price.params())
    tx = call.build_transaction(params)
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    if receipt["status"] != 1:
        raise DeploymentError(f"transaction {tx_hash.hex()} reverted")
    return receipt


@dataclass
class Deployment:
    """Where the system lives on one chain."""

    chain_id: int
    start_block: int
    addresses: dict[str, str]
    abis: dict[str, list[dict[str, Any]]]

    def contract(self, w3: Web3, name: str) -> Contract:
        if name not in self.addresses:
            raise DeploymentError(f"{name} is not in this deployment")
        contract: Contract = w3.eth.contract(
            address=Web3.to_checksum_address(self.addresses[name]), abi=self.abis[name]
        )
        return contract

    def optional_contract(self, w3: Web3, name: str) -> Contract | None:
        """A contract that deployments may leave out (OperatorStaking: a router without staking)."""
        return self.contract(w3, name) if name in self.addresses else None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "chainId": self.chain_id,
            "startBlock": self.start_block,
            "contracts": {name: {"address": self.addresses[name], "abi": self.abis[name]} for name in self.addresses},
        }
        path.write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, path: Path) -> Deployment:
        try:
            data = json.loads(path.read_text())
            contracts = data["contracts"]
            return cls(
                chain_id=int(data["chainId"]),
                start_block=int(data["startBlock"]),
                addresses={name: entry["address"] for name, entry in contracts.items()},
                abis={name: entry["abi"] for name, entry in contracts.items()},
            )
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DeploymentError(f"cannot read deployment file {path}: {err}") from err
