"""The commands that run the stack: `enclave deploy`, `up`, `demo` and `status`."""

from __future__ import annotations

import argparse
import json
import re
import secrets
import shlex
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import httpx
from eth_account import Account
from web3 import Web3

from enclave.anvil import Anvil
from enclave.demo import HELLO_AGENT, SEALED_AGENT, request_and_wait, secret_leaks, stage_times
from enclave.deploy import deploy_system
from enclave.errors import StackError
from enclave.keys import encrypt_input
from enclave.locations import RunningStack
from enclave.stack import FREE_DEV_KEYS, Stack
from enclave.usage import register
from protocol.status import Status


def cmd_deploy(args: argparse.Namespace) -> int:
    """Deploys the contracts to --rpc-url (or a fresh anvil) and writes the deployment file."""
    anvil = None if args.rpc_url else Anvil().start()
    try:
        rpc_url = args.rpc_url or anvil.rpc_url  # type: ignore[union-attr]
        deployment = deploy_system(Web3(Web3.HTTPProvider(rpc_url)), args.private_key)
        deployment.save(Path(args.out))
        print(f"chain {deployment.chain_id} at {rpc_url}")
        for name, address in deployment.addresses.items():
            print(f"  {name:14} {address}")
        print(f"deployment written to {args.out}")
    finally:
        if anvil is not None:
            anvil.stop()
    return 0


SIMULATED_NOTICE = "SIMULATED: no hardware isolation; keys and results are only as safe as this machine"


def _stack(args: argparse.Namespace) -> Stack:
    return Stack(
        state_dir=Path(args.state_dir),
        rpc_url=args.rpc_url,
        workers=args.workers,
        confirmations=args.confirmations,
        web_port=None if args.no_web else args.web_port,
        allow_private_networks=args.allow_private_networks,
        rpc_port=args.rpc_port,
        store="postgresql" if args.store_url else args.store,
        store_url=args.store_url,
        replicas=args.replicas,
        chains=args.chains,
    )


def _describe(stack: Stack) -> None:
    if stack.deployment is None:
        raise StackError("the stack has no deployment yet: start it first")
    for notice in stack.notices:
        print(notice)
    print(f"chain      {stack.rpc_url} (chain id {stack.deployment.chain_id})")
    print(f"TEE        {SIMULATED_NOTICE}")
    for name, address in stack.deployment.addresses.items():
        print(f"  {name:13} {address}")
    for chain in stack.other_chains:
        print(f"chain      {chain.rpc_url} (chain id {chain.deployment.chain_id}), deployment {chain.deployment_path}")
    for name, service in stack.services.items():
        print(f"{name:10} {service.url}   log {service.log_path}")
    if "web" in stack.services:
        print(f"\ndashboard  {stack.url('web')}")
        print(f"admin token (shown once; log in with it to deploy, pause, try and rotate): {stack.admin_token}")


def cmd_up(args: argparse.Namespace) -> int:
    """Starts the stack and keeps it running until Ctrl-C."""
    stack = _stack(args)

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    print("starting the stack...")
    with stack:
        _describe(stack)
        print("running; Ctrl-C stops everything")
        # On a terminal the status line is rewritten in place; in a log, a line per change.
        live = sys.stdout.isatty()
        last = ""
        try:
            while True:
                line = _status_line(stack.url("bridge"))
                counts = line.split(": ", 1)[-1]
                if live:
                    print("\r" + line.ljust(100), end="", flush=True)
                elif counts != last:
                    print(line, flush=True)
                last = counts
                time.sleep(1)
        except KeyboardInterrupt:
            print("\nstopping...")
    return 0


def _status_line(bridge_url: str) -> str:
    try:
        status = httpx.get(f"{bridge_url}/v1/status", timeout=2).json()
    except httpx.HTTPError as err:
        return f"bridge unreachable: {err}"
    counts = " ".join(f"{state} {n}" for state, n in (status["counts"] or {}).items() if n)
    line = f"block {status['lastBlockProcessed']}: requests {counts or 'none yet'}"
    # A loop that keeps failing (the chain unreachable, say) and workers that are down say so.
    problems = [f"{loop}: {error}" for loop, error in (status.get("errors") or {}).items()]
    problems += [f"worker {url} down" for url, w in (status.get("workers") or {}).items() if not w.get("up", True)]
    return line + (f" | ! {'; '.join(problems)}" if problems else "")


def cmd_demo(args: argparse.Namespace) -> int:
    """Brings the stack up, has a contract request an agent, and prints the on-chain result."""
    print("starting the stack (anvil, gatekeeper, workers, bridge)...")
    with _stack(args) as stack:
        _describe(stack)
        if stack.deployment is None:
            raise StackError("the stack has no deployment yet: start it first")
        agent_id = register(stack, HELLO_AGENT)
        print(f"\nregistered agent {agent_id} ({HELLO_AGENT.name}); EchoConsumer asks it to greet 'Enclave'")
        result = request_and_wait(stack, agent_id, b"Enclave")
        print(f"request    0x{result.request_id:064x}")
        print(f"  request tx   {result.request_tx}")
        for stage, ms in stage_times(result.transitions):
            print(f"  {stage:14} {ms:8.1f} ms")
        print(f"  fulfil tx    {result.fulfil_tx}")
        print(f"  request to callback: {result.latency_s * 1000:.0f} ms")
        print(f"EchoConsumer received {Status(result.status).name}: {result.output.decode('utf-8', 'replace')}")

        sealed_agent = register(stack, SEALED_AGENT)
        passphrase = "demo-" + secrets.token_hex(8)
        envelope = encrypt_input(
            stack.url("gatekeeper"),
            stack.web3(),
            stack.deployment,
            sealed_agent,
            {"PASSPHRASE": passphrase},
            b"Enclave",
        )
        print(f"\nregistered agent {sealed_agent} ({SEALED_AGENT.name}); its PASSPHRASE secret is sealed to")
        print("the agent's key, which the gatekeeper serves signed by the epoch's cluster key")
        sealed = request_and_wait(stack, sealed_agent, envelope)
        answer = json.loads(sealed.output)
        print(f"EchoConsumer received {Status(sealed.status).name}: {sealed.output.decode('utf-8', 'replace')}")
        expected = Web3.keccak(text=f"{passphrase}:{answer['greeting']}").hex().removeprefix("0x")
        print(f"  the proof matches the passphrase: {answer['proof'] == '0x' + expected}")
        leaks = secret_leaks(stack, passphrase.encode(), sealed.request_tx)
        print(f"  plaintext passphrase found on-chain, in the bridge's database or in any log: {leaks or 'nowhere'}")
    ok = result.status == Status.OK and sealed.status == Status.OK and not leaks
    return 0 if ok else 1


def cmd_env(args: argparse.Namespace) -> int:
    """What a shell, a forge script or an application needs to reach the running stack."""
    state_dir = Path(args.state_dir)
    stack = RunningStack.read(state_dir)
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    try:
        chain_id = int(httpx.post(stack.rpc_url, json=body, timeout=3).json()["result"], 16)
    except (httpx.HTTPError, ValueError, KeyError):
        raise StackError(
            f"the stack in {state_dir} is not running (its chain at {stack.rpc_url} does not answer)"
        ) from None
    if chain_id != stack.deployment.chain_id:
        raise StackError(
            f"the chain at {stack.rpc_url} is not the one {state_dir} deployed to: start `enclave up` again"
        )
    contracts = stack.deployment.addresses
    free = [{"address": Account.from_key(key).address, "privateKey": key} for key in FREE_DEV_KEYS]
    if args.json:
        print(
            json.dumps(
                {
                    "stateDir": str(state_dir),
                    "rpcUrl": stack.rpc_url,
                    "chainId": chain_id,
                    "contracts": contracts,
                    "services": stack.services,
                    "freeDevKeys": free,
                },
                indent=2,
            )
        )
        return 0
    exports = {
        "ENCLAVE_STATE_DIR": str(state_dir),
        "ENCLAVE_RPC_URL": stack.rpc_url,
        "ENCLAVE_CHAIN_ID": str(chain_id),
        **{f"ENCLAVE_{_snake(name).upper()}": address for name, address in contracts.items()},
        # A funded key that no service sends from: yours, for requests and forge scripts.
        "ENCLAVE_DEV_KEY": free[0]["privateKey"],
        "ENCLAVE_DEV_ADDRESS": free[0]["address"],
    }
    for name, value in exports.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def _snake(name: str) -> str:
    """AgentRouter -> agent_router."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def cmd_status(args: argparse.Namespace) -> int:
    """What is deployed and running, with counts of requests by state."""
    stack = RunningStack.read(Path(args.state_dir))
    print(f"chain {stack.rpc_url} (chain id {stack.deployment.chain_id})")
    if stack.tee_backend == "simulated":
        print(f"TEE   {SIMULATED_NOTICE}")
    for name, address in stack.deployment.addresses.items():
        print(f"  {name:13} {address}")
    for name, url in stack.services.items():
        try:
            healthy = httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            healthy = False
        print(f"{name:10} {url:28} {'healthy' if healthy else 'DOWN'}")
    if "bridge" in stack.services:
        print(_status_line(stack.services["bridge"]))
    return 0
