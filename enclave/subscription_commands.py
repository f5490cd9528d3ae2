"""`enclave subscription`: prepaid balances that pay for the requests of the consumers added to
them (create, fund, add and remove consumers, show, withdraw, cancel)."""

from __future__ import annotations

import argparse
from pathlib import Path

from eth_account import Account
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from enclave.locations import RunningStack
from protocol.deployment import send


def _router(args: argparse.Namespace) -> tuple[Web3, Contract]:
    stack = RunningStack.read(Path(args.state_dir))
    w3 = stack.web3()
    return w3, stack.deployment.contract(w3, "AgentRouter")


def cmd_subscription_create(args: argparse.Namespace) -> int:
    w3, router = _router(args)
    receipt = send(w3, Account.from_key(args.private_key), router.functions.createSubscription())
    [created] = router.events.SubscriptionCreated().process_receipt(receipt, errors=DISCARD)
    subscription_id = int(created["args"]["subscriptionId"])
    print(f"subscription {subscription_id} created, owned by {created['args']['owner']}")
    return 0


def cmd_subscription_fund(args: argparse.Namespace) -> int:
    w3, router = _router(args)
    call = router.functions.fundSubscription(args.subscription_id)
    send(w3, Account.from_key(args.private_key), call, value=args.amount)
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
    owner, balance, held, proposed = router.functions.getSubscription(args.subscription_id).call()
    print(f"subscription {args.subscription_id}  owner {owner}")
    print(f"  balance    {balance} wei")
    print(f"  held       {held} wei (the most its open requests can still cost)")
    print(f"  available  {balance - held} wei")
    if int(proposed, 16):
        print(f"  offered to {proposed}")
    return 0


def cmd_subscription_withdraw(args: argparse.Namespace) -> int:
    w3, router = _router(args)
    call = router.functions.withdrawFromSubscription(args.subscription_id, args.to, args.amount)
    send(w3, Account.from_key(args.private_key), call)
    print(f"{args.amount} wei sent to {args.to}")
    return cmd_subscription_show(args)


def cmd_subscription_cancel(args: argparse.Namespace) -> int:
    w3, router = _router(args)
    call = router.functions.cancelSubscription(args.subscription_id, args.to)
    receipt = send(w3, Account.from_key(args.private_key), call)
    [cancelled] = router.events.SubscriptionCanceled().process_receipt(receipt, errors=DISCARD)
    print(f"subscription {args.subscription_id} cancelled: {cancelled['args']['fundsAmount']} wei sent to {args.to}")
    return 0
