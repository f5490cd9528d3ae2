"""`enclave subscription`: prepaid balances that pay for the requests of the consumers added to
them (create, fund, add and remove consumers, show, withdraw, cancel), in wei or in the router's
fee token; a token subscription is funded with an EIP-2612 permit in the same transaction."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from eth_account import Account
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from enclave.locations import RunningStack
from enclave.permit import sign_permit
from protocol.deployment import load_artifact, send
from protocol.status import Currency

# How long a funding permit stays good: long enough for its transaction to be mined.
PERMIT_LIFETIME_S = 600


def _router(args: argparse.Namespace) -> tuple[Web3, Contract]:
    stack = RunningStack.read(Path(args.state_dir))
    w3 = stack.web3()
    return w3, stack.deployment.contract(w3, "AgentRouter")


def _fee_token(w3: Web3, router: Contract) -> Contract:
    """The router's own fee token (whichever ERC-20 it was deployed with), as an ERC-20 with permit."""
    token: Contract = w3.eth.contract(
        address=router.functions.FEE_TOKEN().call(), abi=load_artifact("EnclaveToken").abi
    )
    return token


def _currency(router: Contract, subscription_id: int) -> Currency:
    return Currency(router.functions.getSubscription(subscription_id).call()[4])


def unit(currency: Currency) -> str:
    """What amounts in `currency` are counted in, for people."""
    return "wei" if currency is Currency.ETH else "token units"


def cmd_subscription_create(args: argparse.Namespace) -> int:
    w3, router = _router(args)
    create = router.functions.createTokenSubscription() if args.token else router.functions.createSubscription()
    receipt = send(w3, Account.from_key(args.private_key), create)
    [created] = router.events.SubscriptionCreated().process_receipt(receipt, errors=DISCARD)
    subscription_id = int(created["args"]["subscriptionId"])
    paying = "the fee token" if args.token else "wei"
    print(f"subscription {subscription_id} created, owned by {created['args']['owner']}, paying in {paying}")
    return 0


def cmd_subscription_fund(args: argparse.Namespace) -> int:
    w3, router = _router(args)
    funder = Account.from_key(args.private_key)
    if _currency(router, args.subscription_id) is Currency.ETH:
        send(w3, funder, router.functions.fundSubscription(args.subscription_id), value=args.amount)
        return cmd_subscription_show(args)
    token = _fee_token(w3, router)
    permit = sign_permit(token, funder, router.address, args.amount, int(time.time()) + PERMIT_LIFETIME_S)
    call = router.functions.fundSubscriptionWithPermit(
        args.subscription_id, permit.value, permit.deadline, permit.v, permit.r, permit.s
    )
    send(w3, funder, call)
    return cmd_subscription_show(args)


def cmd_subscription_add_consumer(args: argparse.Namespace) -> int:
    w3, router = _router(args)
    send(w3, Account.from_key(args.private_key), router.functions.addConsumer(args.subscription_id, args.consumer))
    print(f"{args.consumer} may charge requests to subscription {args.subscription_id}")
    return 0


def cmd_subscription_remove_consumer(args: argparse.Namespace) -> int:
    w3, router = _router(args)
    call = router.functions.removeConsumer(args.subscription_id, args.consumer)
    send(w3, Account.from_key(args.private_key), call)
    print(f"{args.consumer} may no longer charge requests to subscription {args.subscription_id}")
    return 0


def cmd_subscription_show(args: argparse.Namespace) -> int:
    _, router = _router(args)
    owner, balance, held, proposed, currency = router.functions.getSubscription(args.subscription_id).call()
    units = unit(Currency(currency))
    print(f"subscription {args.subscription_id}  owner {owner}")
    print(f"  balance    {balance} {units}")
    print(f"  held       {held} {units} (the most its open requests can still cost)")
    print(f"  available  {balance - held} {units}")
    if int(proposed, 16):
        print(f"  offered to {proposed}")
    return 0


def cmd_subscription_withdraw(args: argparse.Namespace) -> int:
    w3, router = _router(args)
    call = router.functions.withdrawFromSubscription(args.subscription_id, args.to, args.amount)
    send(w3, Account.from_key(args.private_key), call)
    print(f"{args.amount} {unit(_currency(router, args.subscription_id))} sent to {args.to}")
    return cmd_subscription_show(args)


def cmd_subscription_cancel(args: argparse.Namespace) -> int:
    w3, router = _router(args)
    units = unit(_currency(router, args.subscription_id))
    call = router.functions.cancelSubscription(args.subscription_id, args.to)
    receipt = send(w3, Account.from_key(args.private_key), call)
    [cancelled] = router.events.SubscriptionCanceled().process_receipt(receipt, errors=DISCARD)
    amount = cancelled["args"]["fundsAmount"]
    print(f"subscription {args.subscription_id} cancelled: {amount} {units} sent to {args.to}")
    return 0
