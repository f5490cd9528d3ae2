"""Deploying the contracts of a stack: the protocol's two and the EchoConsumer example."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from protocol.deployment import Deployment, load_artifact, send


def deploy_contract(w3: Web3, account: LocalAccount, name: str, *args: Any, source_file: str | None = None) -> Contract:
    """Deploys a compiled contract from out/ and returns it."""
    artifact = load_artifact(name, source_file)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = send(w3, account, factory.constructor(*args))
    contract: Contract = w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi)
    return contract


def deploy_system(w3: Web3, deployer_key: str, gatekeepers: list[str] | None = None) -> Deployment:
    """Deploys TeeRegistry, AgentRouter and the EchoConsumer example, owned by the deployer.

    `gatekeepers` are added to the TeeRegistry (the deployer by default, as on a dev chain).
    """
    account: LocalAccount = Account.from_key(deployer_key)
    start_block = w3.eth.block_number
    tee = deploy_contract(w3, account, "TeeRegistry", account.address)
    router = deploy_contract(w3, account, "AgentRouter", account.address, tee.address)
    echo = deploy_contract(w3, account, "EchoConsumer", router.address)
    for gatekeeper in gatekeepers if gatekeepers is not None else [account.address]:
        send(w3, account, tee.functions.addGatekeeper(Web3.to_checksum_address(gatekeeper)))
    contracts = {"TeeRegistry": tee, "AgentRouter": router, "EchoConsumer": echo}
    return Deployment(
        chain_id=w3.eth.chain_id,
        start_block=start_block,
        addresses={name: c.address for name, c in contracts.items()},
        abis={name: load_artifact(name).abi for name in contracts},
    )
