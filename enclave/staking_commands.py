"""`enclave stake`: an operator's stake in the router's OperatorStaking (stake, unstake,
withdraw what was unstaked or won by slashing), fleets of one operator's transmitters, and the
operators' status."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from eth_account import Account
from web3 import Web3
from web3.contract import Contract

from enclave.deploy import stake
from enclave.errors import EnclaveError
from enclave.locations import RunningStack
from protocol.deployment import send


def _staking(args: argparse.Namespace) -> tuple[Web3, Contract, Contract]:
    stack = RunningStack.read(Path(args.state_dir))
    w3 = stack.web3()
    staking = stack.deployment.optional_contract(w3, "OperatorStaking")
    if staking is None:
        raise EnclaveError("this deployment has no OperatorStaking: anyone may transmit, and nothing is staked")
    return w3, staking, stack.deployment.contract(w3, "EnclaveToken")


def cmd_stake_add(args: argparse.Namespace) -> int:
    """Approves and stakes `amount` of the token from --private-key's account."""
    w3, staking, token = _staking(args)
    operator = Account.from_key(args.private_key)
    stake(w3, staking, token, operator, args.amount)
    return _show(staking, operator.address)


def cmd_stake_unstake(args: argparse.Namespace) -> int:
    """Starts unstaking `amount`: withdrawable after the delay, slashable until then."""
    w3, staking, _ = _staking(args)
    operator = Account.from_key(args.private_key)
    send(w3, operator, staking.functions.requestUnstake(args.amount))
    return _show(staking, operator.address)


def cmd_stake_withdraw(args: argparse.Namespace) -> int:
    """Withdraws what was unstaked (after its delay) and what slashing paid, to --to."""
    w3, staking, _ = _staking(args)
    operator = Account.from_key(args.private_key)
    to = args.to or operator.address
    _, unstaking, available_at, _ = staking.functions.getOperator(operator.address).call()
    rewards = staking.functions.slashRewardsOf(operator.address).call()
    if unstaking == 0 and rewards == 0:
        raise EnclaveError("nothing to withdraw: nothing is unstaking and slashing paid nothing")
    if unstaking and available_at > time.time():
        raise EnclaveError(f"{unstaking} unstaking, withdrawable from {time.ctime(available_at)}")
    if unstaking:
        send(w3, operator, staking.functions.withdrawUnstaked(to))
    if rewards:
        send(w3, operator, staking.functions.withdrawSlashRewards(to))
    print(f"sent {unstaking + rewards} to {to}")
    return 0


def cmd_stake_fleet(args: argparse.Namespace) -> int:
    """Fleets: the lead admits (or lets go) a member; a member names its lead (or leaves).
    Both sides must agree before a member is in the fleet."""
    w3, staking, _ = _staking(args)
    account = Account.from_key(args.private_key)
    if args.fleet_action == "admit":
        send(w3, account, staking.functions.admitFleetMember(args.address, not args.remove))
    else:
        send(w3, account, staking.functions.chooseFleetLead(args.address or "0x" + "00" * 20))
    return _show(staking, account.address)


def cmd_stake_status(args: argparse.Namespace) -> int:
    """The rules, the active operators and each one's stake."""
    _, staking, _ = _staking(args)
    token, (min_stake, slash, window, delay) = staking.functions.getStaking().call()
    print(f"token {token}: min stake {min_stake}, slash {slash}, window {window} s, unstake delay {delay} s")
    for operator in staking.functions.activeOperators().call():
        _show(staking, operator)
    return 0


def _show(staking: Contract, operator: str) -> int:
    staked, unstaking, available_at, active = staking.functions.getOperator(operator).call()
    rewards = staking.functions.slashRewardsOf(operator).call()
    state = "active" if active else "inactive"
    extra = f", {unstaking} unstaking until {time.ctime(available_at)}" if unstaking else ""
    lead = staking.functions.fleetOf(operator).call()
    fleet = f", in {lead}'s fleet" if lead.lower() != operator.lower() else ""
    print(f"{operator}  {state}  staked {staked}{extra}, slash rewards {rewards}{fleet}")
    return 0
