"""The `enclave` command line."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import httpx
from web3 import Web3

from coprocessor.chain import deploy_system
from coprocessor.errors import CoprocessorError
from coprocessor.status import Status
from enclave.anvil import DEV_KEYS, Anvil
from enclave.demo import HELLO_AGENT, request_and_wait, stage_times
from enclave.errors import EnclaveError
from enclave.stack import Stack
from enclave.usage import register

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


def _stack(args: argparse.Namespace) -> Stack:
    return Stack(
        state_dir=Path(args.state_dir),
        rpc_url=args.rpc_url,
        workers=args.workers,
        confirmations=args.confirmations,
    )


def _describe(stack: Stack) -> None:
    assert stack.deployment is not None
    print(f"chain      {stack.rpc_url} (chain id {stack.deployment.chain_id})")
    for name, address in stack.deployment.addresses.items():
        print(f"  {name:13} {address}")
    for name, service in stack.services.items():
        print(f"{name:10} {service.url}   log {service.log_path}")
    (stack.state_dir / "stack.json").write_text(
        json.dumps({"rpcUrl": stack.rpc_url, "services": {n: s.url for n, s in stack.services.items()}}, indent=2)
    )


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
        last = ""
        try:
            while True:
                line = _status_line(stack.url("bridge"))
                if line != last:
                    print(line, flush=True)
                    last = line
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
    return f"block {status['lastBlockProcessed']}: requests {counts or 'none yet'}"


def cmd_demo(args: argparse.Namespace) -> int:
    """Brings the stack up, has a contract request an agent, and prints the on-chain result."""
    print("starting the stack (anvil, gatekeeper, workers, bridge)...")
    with _stack(args) as stack:
        _describe(stack)
        assert stack.deployment is not None
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
    return 0 if result.status == Status.OK else 1


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="enclave", description="Enclave Agents: a confidential coprocessor for EVM contracts."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def stack_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--rpc-url", help="use this chain instead of starting anvil")
        p.add_argument("--workers", type=int, default=2, help="how many workers (default 2)")
        p.add_argument("--confirmations", type=int, default=0, help="blocks the bridge waits (default 0)")
        p.add_argument("--state-dir", default=str(DEFAULT_STATE), help="logs, keys and the database")

    up = sub.add_parser("up", help="start anvil, the contracts, a gatekeeper, workers and the bridge")
    stack_options(up)
    up.set_defaults(run=cmd_up)

    demo = sub.add_parser("demo", help="start the stack and answer one real request on-chain")
    stack_options(demo)
    demo.set_defaults(run=cmd_demo, state_dir=str(DEFAULT_STATE / "demo"))

    status = sub.add_parser("status", help="what is deployed and running")
    status.add_argument("--state-dir", default=str(DEFAULT_STATE))
    status.set_defaults(run=cmd_status)

    deploy = sub.add_parser("deploy", help="deploy the contracts and write a deployment file")
    deploy.add_argument("--rpc-url", help="chain to deploy to (default: a fresh local anvil)")
    deploy.add_argument("--private-key", default=DEV_KEYS[0], help="deployer key (default: anvil's first dev key)")
    deploy.add_argument("--out", default=".state/deployment.json", help="where to write the deployment file")
    deploy.set_defaults(run=cmd_deploy)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (EnclaveError, CoprocessorError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
