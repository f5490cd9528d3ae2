"""Deploying the contracts of a stack: the protocol's two and the EchoConsumer example."""

from __future__ import annotations

from dataclasses import dataclass
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


def fund(w3: Web3, account: LocalAccount, to: str, wei: int) -> None:
    """Sends `wei` from `account` to `to` and waits for it to be mined."""
    tx = {
        "to": Web3.to_checksum_address(to),
        "value": wei,
        "gas": 21_000,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        "chainId": w3.eth.chain_id,
        "maxFeePerGas": 2 * int(w3.eth.get_block("latest").get("baseFeePerGas", 0)) + 10**9,
        "maxPriorityFeePerGas": 10**9,
    }
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)  # type: ignore[arg-type]
    w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)


@dataclass(frozen=True)
class StakingRules:
    """What `OperatorStaking` is deployed with, in token units of 18 decimals and seconds."""

    min_stake: int = 100 * 10**18
    slash_amount: int = 10 * 10**18
    assignment_window_s: int = 10
    unstake_delay_s: int = 24 * 3600

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.min_stake, self.slash_amount, self.assignment_window_s, self.unstake_delay_s)


# What a local stack's fee token is worth: 2,000 tokens (of 18 decimals) per ether.
TOKENS_PER_ETH = 2_000 * 10**18
DEPLOYER_TOKENS = 1_000_000 * 10**18


def deploy_system(
    w3: Web3,
    deployer_key: str,
    gatekeepers: list[str] | None = None,
    operators: list[str] | None = None,
    staking: StakingRules | None = None,
    tokens_per_eth: int = TOKENS_PER_ETH,
    stake_each: int | None = None,
) -> Deployment:
    """Deploys TeeRegistry, EnclaveToken, AgentRouter and the EchoConsumer example, owned by the
    deployer.

    The router takes fees in wei and in the EnclaveToken (which the deployer mints), at
    `tokens_per_eth`. `gatekeepers` are added to the TeeRegistry (the deployer by default, as on
    a dev chain). With `operators` (private keys), the router is built with an OperatorStaking
    of the same token, and each operator stakes `stake_each` of it (`staking.min_stake` by
    default), so that it may
    transmit and is assigned requests.
    """
    account: LocalAccount = Account.from_key(deployer_key)
    start_block = w3.eth.block_number
    tee = deploy_contract(w3, account, "TeeRegistry", account.address)
    token = deploy_contract(w3, account, "EnclaveToken", account.address)
    contracts = {"TeeRegistry": tee, "EnclaveToken": token}
    staking_address = "0x" + "00" * 20
    if operators:
        rules = staking or StakingRules()
        stakes = deploy_contract(w3, account, "OperatorStaking", account.address, token.address, rules.as_tuple())
        contracts |= {"OperatorStaking": stakes}
        staking_address = stakes.address
    router = deploy_contract(w3, account, "AgentRouter", account.address, tee.address, staking_address, token.address)
    send(w3, account, router.functions.setTokenRate(tokens_per_eth))
    # The deployer (the CLI's default sender) holds tokens to fund token subscriptions with.
    send(w3, account, token.functions.mint(account.address, DEPLOYER_TOKENS))
    contracts |= {"AgentRouter": router, "EchoConsumer": deploy_contract(w3, account, "EchoConsumer", router.address)}
    for gatekeeper in gatekeepers if gatekeepers is not None else [account.address]:
        send(w3, account, tee.functions.addGatekeeper(Web3.to_checksum_address(gatekeeper)))
    if operators:
        send(w3, account, contracts["OperatorStaking"].functions.bindRouter(router.address))
        staking_contract = contracts["OperatorStaking"]
        for key in operators:
            operator = Account.from_key(key)
            amount = rules.min_stake if stake_each is None else stake_each
            send(w3, account, token.functions.mint(operator.address, amount))
            stake(w3, staking_contract, token, operator, amount)
    return Deployment(
        chain_id=w3.eth.chain_id,
        start_block=start_block,
        addresses={name: c.address for name, c in contracts.items()},
        abis={name: load_artifact(name).abi for name in contracts},
    )


def stake(w3: Web3, staking: Contract, token: Contract, operator: LocalAccount, amount: int) -> None:
    """Approves `amount` of the stake token from `operator` to the staking contract and stakes it."""
    send(w3, operator, token.functions.approve(staking.address, amount))
    send(w3, operator, staking.functions.stake(amount))


def join_fleet(w3: Web3, staking: Contract, lead: LocalAccount, member: LocalAccount) -> None:
    """Puts `member` in `lead`'s fleet, both consenting: one operator's transmitters (bridge
    replicas) then deliver each other's missed assignments without slashing each other."""
    send(w3, lead, staking.functions.admitFleetMember(member.address, True))
    send(w3, member, staking.functions.chooseFleetLead(lead.address))
