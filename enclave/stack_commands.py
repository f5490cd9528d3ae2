"""The commands that run the stack: `enclave deploy`, `up`, `demo` and `status`."""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import httpx
from web3 import Web3

from enclave.anvil import Anvil
from enclave.demo import HELLO_AGENT, SEALED_AGENT, request_and_wait, secret_leaks, stage_times
from enclave.deploy import deploy_system
from enclave.errors import StackError
from enclave.keys import encrypt_input
from enclave.stack import Stack
from enclave.usage import register
from protocol.status import Status

DEFAULT_STATE = Path(".state")


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
    counts = " ".join(f"{state} {n}" for state, n in status["counts"].items() if n)
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


def cmd_status(args: argparse.Namespace) -> int:
    """What is deployed and running, with counts of requests by state."""
    state_dir = Path(args.state_dir)
    try:
        info = json.loads((state_dir / "stack.json").read_text())
        deployment = json.loads((state_dir / "deployment.json").read_text())
    except (OSError, ValueError):
        print(f"no stack in {state_dir}: start one with `enclave up`")
        return 1
    print(f"chain {info['rpcUrl']} (chain id {deployment['chainId']})")
    if info.get("teeBackend", "simulated") == "simulated":
        print(f"TEE   {SIMULATED_NOTICE}")
    for name, entry in deployment["contracts"].items():
        print(f"  {name:13} {entry['address']}")
    for name, url in info["services"].items():
        try:
            healthy = httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            healthy = False
        print(f"{name:10} {url:28} {'healthy' if healthy else 'DOWN'}")
    if "bridge" in info["services"]:
        print(_status_line(info["services"]["bridge"]))
    return 0
