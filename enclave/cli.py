"""The `enclave` command line: the parser, and the entry point."""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal

import requests
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, ProviderConnectionError

from coprocessor.errors import CoprocessorError
from enclave import ffi
from enclave.anvil import DEV_KEYS
from enclave.errors import EnclaveError
from enclave.locations import default_state_dir
from enclave.reverts import refusal
from enclave.stack_commands import cmd_demo, cmd_deploy, cmd_env, cmd_status, cmd_up
from enclave.staking_commands import (
    cmd_stake_add,
    cmd_stake_fleet,
    cmd_stake_status,
    cmd_stake_unstake,
    cmd_stake_withdraw,
)
from enclave.subscription_commands import (
    cmd_subscription_add_consumer,
    cmd_subscription_cancel,
    cmd_subscription_create,
    cmd_subscription_fund,
    cmd_subscription_remove_consumer,
    cmd_subscription_show,
    cmd_subscription_withdraw,
)
from enclave.user_commands import (
    cmd_agent_cost,
    cmd_agent_deploy,
    cmd_agent_list,
    cmd_agent_logs,
    cmd_agent_pause,
    cmd_agent_simulate,
    cmd_agent_unpause,
    cmd_init,
    cmd_keys_rotate,
    cmd_keys_show,
    cmd_request,
    cmd_secrets_encrypt,
    cmd_secrets_functions,
    cmd_secrets_set,
)
from protocol.errors import ProtocolError

UNITS = {"ether": 10**18, "gwei": 10**9, "wei": 1}


def wei(text: str) -> int:
    """An amount in wei that fits the router's uint96: a whole number, or a number with a unit
    (`0.01ether`, `20gwei`) that comes to a whole number of wei."""
    unit = next((u for u in UNITS if text.endswith(u)), None)
    try:
        if unit is None:
            value = int(text, 0)
        else:
            exact = Decimal(text.removesuffix(unit)) * UNITS[unit]
            if exact != exact.to_integral_value():
                raise ValueError(text)
            value = int(exact)
    except (ValueError, ArithmeticError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of wei") from None
    if not 0 <= value < 2**96:
        raise argparse.ArgumentTypeError(f"{value} wei is out of range: 0 to 2**96 - 1")
    return value


def address(text: str) -> str:
    """An Ethereum address, checksummed."""
    if not Web3.is_address(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an address")
    return Web3.to_checksum_address(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="enclave", description="Enclave Agents: a confidential coprocessor for EVM contracts."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    # ENCLAVE_STATE_DIR, or one folder per user: every command finds the stack from any folder.
    state = str(default_state_dir())

    def stack_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--rpc-url", help="use this chain instead of starting anvil")
        p.add_argument("--workers", type=int, default=2, help="how many workers (default 2)")
        p.add_argument("--confirmations", type=int, default=0, help="blocks the bridge waits (default 0)")
        p.add_argument("--state-dir", default=state, help=f"logs, keys and the database (default {state})")
        p.add_argument("--rpc-port", type=int, default=8545, help="the chain's port when free (default 8545)")
        p.add_argument("--web-port", type=int, default=8000, help="the dashboard's port (default 8000; 0: any free)")
        p.add_argument("--no-web", action="store_true", help="do not start the dashboard")
        p.add_argument(
            "--allow-private-networks",
            action="store_true",
            help="let agents fetch loopback and private addresses (local development only)",
        )
        p.add_argument(
            "--store",
            choices=("sqlite", "postgresql"),
            default="sqlite",
            help="the bridge's store: a SQLite file (default), or PostgreSQL (a server in the state folder)",
        )
        p.add_argument(
            "--store-url", help="an existing PostgreSQL server's postgresql:// URL (implies --store postgresql)"
        )
        p.add_argument(
            "--replicas",
            type=int,
            default=1,
            help="bridge replicas sharing the PostgreSQL store (default 1; at most 3)",
        )
        p.add_argument(
            "--chains",
            type=int,
            default=1,
            help="chains to serve (default 1; 2 adds an anvil of chain id 1337 with its own deployment, "
            "gatekeeper and bridge, served by the same workers)",
        )

    up = sub.add_parser("up", help="start anvil, the contracts, a gatekeeper, workers and the bridge")
    stack_options(up)
    up.set_defaults(run=cmd_up)

    demo = sub.add_parser("demo", help="start the stack and answer one real request on-chain")
    stack_options(demo)
    # The demo's dashboard takes any free port, so that it runs beside an `enclave up`.
    # The demo's chain takes any free port too.
    demo.set_defaults(run=cmd_demo, state_dir=str(default_state_dir() / "demo"), web_port=0, rpc_port=None)

    status = sub.add_parser("status", help="what is deployed and running")
    status.add_argument("--state-dir", default=state)
    status.set_defaults(run=cmd_status)

    env = sub.add_parser("env", help="the running stack's RPC URL, chain id, addresses and a free dev key")
    env.add_argument("--state-dir", default=state)
    env.add_argument("--json", action="store_true", help="as JSON (with every free dev key and the services)")
    env.set_defaults(run=cmd_env)

    agent = sub.add_parser("agent", help="simulate, deploy and list agents").add_subparsers(
        dest="action", required=True
    )
    sim = agent.add_parser("simulate", help="run an agent locally in the worker's sandbox")
    sim.add_argument("file")
    sim.add_argument("--input", default="", help="0x hex, or text (JSON included)")
    sim.add_argument("--secrets", help="a JSON file of secrets, as ctx.secrets")
    sim.add_argument("--allow-host", action="append", default=[], help="add a host to the allow-list")
    sim.add_argument("--agent", action="append", default=[], metavar="ID=FILE", help="an agent ctx.callAgent may call")
    sim.add_argument(
        "--allow-private-networks", action="store_true", help="let the agent fetch loopback and private addresses"
    )
    sim.set_defaults(run=cmd_agent_simulate)
    dep = agent.add_parser("deploy", help="publish an agent on-chain")
    dep.add_argument("file")
    dep.add_argument("--price", type=wei, default=0, help="wei per request")
    dep.add_argument("--allow-host", action="append", default=[], help="a host ctx.fetch may reach")
    dep.add_argument("--name", help="a name, kept in the code's @enclave line")
    dep.add_argument("--private-key", default=DEV_KEYS[0], help="the owner's key (default: anvil's first)")
    dep.add_argument("--private-logs", action="store_true", help="seal the agent's logs and errors to the owner's key")
    dep.set_defaults(run=cmd_agent_deploy)
    logs = agent.add_parser("logs", help="a request's logs; private ones opened with ENCLAVE_OWNER_KEY")
    logs.add_argument("request_id", help="0x hex or decimal")
    logs.add_argument("--state-dir", default=state)
    logs.set_defaults(run=cmd_agent_logs)
    pausing = []
    for verb, run in (("pause", cmd_agent_pause), ("unpause", cmd_agent_unpause)):
        p = agent.add_parser(verb, help=f"{verb} an agent (its owner only)")
        p.add_argument("agent_id", type=int)
        p.add_argument(
            "--private-key",
            default=DEV_KEYS[0],
            help="the agent owner's key (default: anvil's first, which `enclave agent deploy` uses)",
        )
        p.set_defaults(run=run)
        pausing.append(p)
    lst = agent.add_parser("list", help="the agents on-chain")
    lst.set_defaults(run=cmd_agent_list)
    cost = agent.add_parser("cost", help="the most a request sent now can cost, in wei (the value to send)")
    cost.add_argument("agent_id", type=int)
    cost.add_argument("--callback-gas", type=int, default=0, help="the request's callback gas limit")
    cost.add_argument("--parts", action="store_true", help="also print the price, operator's fee and gas part")
    cost.add_argument("--token", action="store_true", help="in the router's fee token: what a token request takes")
    cost.set_defaults(run=cmd_agent_cost)
    request = sub.add_parser("request", help="request an agent through EchoConsumer")
    request.add_argument("agent_id", type=int)
    request.add_argument("--input", default="")
    request.add_argument("--secret", action="append", default=[], metavar="KEY=VALUE", help="seal to the agent")
    request.add_argument("--fee", type=wei, help="wei (default: the most the request can cost, as `agent cost`)")
    request.add_argument("--wait", action="store_true", help="wait for the on-chain result and print it")
    request.add_argument("--timeout", type=float, default=120.0)
    request.set_defaults(run=cmd_request)
    for p in (dep, lst, cost, request, *pausing):
        p.add_argument("--state-dir", default=state)

    secrets = sub.add_parser("secrets", help="seal secrets to an agent").add_subparsers(dest="action", required=True)
    encrypt = secrets.add_parser("encrypt", help="print a request input carrying sealed secrets")
    encrypt.add_argument("--agent", type=int, required=True)
    encrypt.add_argument("--input", default="", help="the plain input that travels beside the secrets")
    encrypt.add_argument("secrets", nargs="+", metavar="KEY=VALUE")
    encrypt.set_defaults(run=cmd_secrets_encrypt)
    functions = secrets.add_parser(
        "functions", help="print a Chainlink Functions secrets reference (for addSecretsReference)"
    )
    functions.add_argument("--agent", type=int, required=True, help="the Functions runtime agent's id")
    functions.add_argument("--adapter", type=address, required=True, help="the FunctionsRouterAdapter's address")
    functions.add_argument("--owner", type=address, required=True, help="the subscription owner's address")
    functions.add_argument("secrets", nargs="+", metavar="KEY=VALUE")
    functions.set_defaults(run=cmd_secrets_functions)
    setter = secrets.add_parser("set", help="set an agent's sealed settings (owner only)")
    setter.add_argument("--agent", type=int, required=True)
    setter.add_argument("--private-key", default=DEV_KEYS[0], help="the agent owner's key")
    setter.add_argument("secrets", nargs="+", metavar="KEY=VALUE")
    setter.set_defaults(run=cmd_secrets_set)

    subscription = sub.add_parser(
        "subscription", help="prepaid balances that pay for their consumers' requests"
    ).add_subparsers(dest="action", required=True)
    sub_create = subscription.add_parser("create", help="create a subscription owned by --private-key")
    sub_create.add_argument("--token", action="store_true", help="hold and pay in the router's fee token, not wei")
    sub_create.set_defaults(run=cmd_subscription_create)
    sub_fund = subscription.add_parser(
        "fund", help="add wei, or the fee token with a permit signed by --private-key, to a subscription (anyone may)"
    )
    sub_fund.add_argument("subscription_id", type=int)
    sub_fund.add_argument(
        "amount", type=wei, help="in the subscription's currency (wei or token units), or with a unit: 0.1ether"
    )
    sub_fund.set_defaults(run=cmd_subscription_fund)
    sub_show = subscription.add_parser("show", help="a subscription's owner, balance and holds")
    sub_show.add_argument("subscription_id", type=int)
    sub_show.set_defaults(run=cmd_subscription_show)
    sub_parsers = [sub_create, sub_fund, sub_show]
    for verb, run, text in (
        ("add-consumer", cmd_subscription_add_consumer, "let a consumer contract charge requests to it (owner only)"),
        ("remove-consumer", cmd_subscription_remove_consumer, "stop a consumer from charging it (owner only)"),
    ):
        p = subscription.add_parser(verb, help=text)
        p.add_argument("subscription_id", type=int)
        p.add_argument("consumer", type=address, help="the consumer contract's address")
        p.set_defaults(run=run)
        sub_parsers.append(p)
    sub_withdraw = subscription.add_parser("withdraw", help="take out what no open request holds (owner only)")
    sub_withdraw.add_argument("subscription_id", type=int)
    sub_withdraw.add_argument("amount", type=wei, help="in the subscription's currency, or with a unit: 0.1ether")
    sub_withdraw.add_argument("--to", type=address, required=True, help="the recipient's address")
    sub_withdraw.set_defaults(run=cmd_subscription_withdraw)
    sub_cancel = subscription.add_parser("cancel", help="pay the whole balance out and delete it (owner only)")
    sub_cancel.add_argument("subscription_id", type=int)
    sub_cancel.add_argument("--to", type=address, required=True, help="the recipient's address")
    sub_cancel.set_defaults(run=cmd_subscription_cancel)
    for p in (*sub_parsers, sub_withdraw, sub_cancel):
        p.add_argument("--state-dir", default=state)
        p.add_argument("--private-key", default=DEV_KEYS[0], help="the sender's key (default: anvil's first)")

    staking = sub.add_parser("stake", help="an operator's stake: add, unstake, withdraw, status").add_subparsers(
        dest="action", required=True
    )
    stake_add = staking.add_parser("add", help="stake tokens from --private-key's account (approves them first)")
    stake_add.add_argument("amount", type=wei, help="token units of 18 decimals, or with a unit: 100ether")
    stake_add.set_defaults(run=cmd_stake_add)
    stake_unstake = staking.add_parser("unstake", help="start unstaking: withdrawable after the delay")
    stake_unstake.add_argument("amount", type=wei, help="token units of 18 decimals, or with a unit: 100ether")
    stake_unstake.set_defaults(run=cmd_stake_unstake)
    stake_withdraw = staking.add_parser("withdraw", help="withdraw what was unstaked and what slashing paid")
    stake_withdraw.add_argument("--to", type=address, help="the recipient (default: the operator)")
    stake_withdraw.set_defaults(run=cmd_stake_withdraw)
    stake_status = staking.add_parser("status", help="the rules and the active operators' stakes")
    stake_status.set_defaults(run=cmd_stake_status)
    fleet = staking.add_parser(
        "fleet", help="one operator's transmitters (replicas): they deliver each other's missed requests unslashed"
    ).add_subparsers(dest="fleet_action", required=True)
    fleet_admit = fleet.add_parser("admit", help="as the lead, admit a member (it must also join)")
    fleet_admit.add_argument("address", type=address, help="the member's transmitter address")
    fleet_admit.add_argument("--remove", action="store_true", help="let the member go instead")
    fleet_join = fleet.add_parser("join", help="as a member, name the fleet's lead (none: leave)")
    fleet_join.add_argument("address", type=address, nargs="?", help="the lead's address (leave out to leave)")
    for p in (fleet_admit, fleet_join):
        p.set_defaults(run=cmd_stake_fleet)
    for p in (stake_add, stake_unstake, stake_withdraw, stake_status, fleet_admit, fleet_join):
        p.add_argument("--state-dir", default=state)
        p.add_argument("--private-key", default=DEV_KEYS[1], help="the operator's key (default: the bridge's)")

    keys = sub.add_parser("keys", help="key epochs and rotation").add_subparsers(dest="action", required=True)
    rotate_cmd = keys.add_parser("rotate", help="rotate the cluster's keys (admin)")
    rotate_cmd.add_argument("--private-key", default=DEV_KEYS[0], help="the TeeRegistry owner's key")
    rotate_cmd.set_defaults(run=cmd_keys_rotate)
    keys.add_parser("show", help="the key epochs on-chain").set_defaults(run=cmd_keys_show)
    for p in (encrypt, functions, setter, rotate_cmd, keys.choices["show"]):
        p.add_argument("--state-dir", default=state)

    init = sub.add_parser("init", help="make a consumer project of your own: contract, agent, tests")
    init.add_argument("dir", help="a new (or empty) folder")
    init.add_argument("--package", help="the contracts' npm tarball to use (default: packed from this checkout)")
    init.set_defaults(run=cmd_init)

    deploy = sub.add_parser("deploy", help="deploy the contracts and write a deployment file")
    deploy.add_argument("--rpc-url", help="chain to deploy to (default: a fresh local anvil)")
    deploy.add_argument("--private-key", default=DEV_KEYS[0], help="deployer key (default: anvil's first dev key)")
    deploy.add_argument("--out", default=".state/deployment.json", help="where to write the deployment file")
    deploy.set_defaults(run=cmd_deploy)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["ffi"]:  # for forge's vm.ffi: its own arguments and output (enclave/ffi.py)
        ffi.main(argv[1:])
        return 0
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (EnclaveError, CoprocessorError, ProtocolError) as err:
        return _fail(str(err))
    except (ContractCustomError, ContractLogicError) as err:
        # Refused by a contract (when estimating or calling, so no transaction was sent).
        return _fail(refusal(err))
    except (requests.ConnectionError, requests.Timeout, ProviderConnectionError) as err:
        return _fail(f"the stack's chain does not answer ({err.__class__.__name__}): is `enclave up` running?")
    except OSError as err:
        return _fail(f"{err.strerror or err}: {err.filename}" if err.filename else str(err))
    except KeyboardInterrupt:
        return 130


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
