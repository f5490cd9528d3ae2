"""The `enclave` command line."""

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

from coprocessor.chain import Deployment, deploy_system
from coprocessor.display import show_bytes
from coprocessor.errors import CoprocessorError
from coprocessor.status import Status
from enclave.agents import deploy, list_agents, parse_input, prepare_code, simulate
from enclave.anvil import DEV_KEYS, Anvil
from enclave.demo import HELLO_AGENT, SEALED_AGENT, request_and_wait, secret_leaks, stage_times
from enclave.errors import EnclaveError
from enclave.keys import encrypt_input, rotate, set_agent_secrets
from enclave.stack import Stack
from enclave.usage import Connected, register, request_ids, send_asks, wait_for

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
        web_port=None if args.no_web else args.web_port,
    )


def _describe(stack: Stack) -> None:
    assert stack.deployment is not None
    print(f"chain      {stack.rpc_url} (chain id {stack.deployment.chain_id})")
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


def _running(state_dir: str) -> tuple[Web3, Deployment, dict[str, str]]:
    """The chain, deployment and service URLs of the stack that `enclave up` runs."""
    try:
        info = json.loads((Path(state_dir) / "stack.json").read_text())
        deployment = Deployment.load(Path(state_dir) / "deployment.json")
    except (OSError, ValueError, CoprocessorError) as err:
        raise EnclaveError(f"no running stack in {state_dir}: start one with `enclave up` ({err})") from err
    return Web3(Web3.HTTPProvider(info["rpcUrl"])), deployment, info["services"]


def _pairs(items: list[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise EnclaveError(f"expected KEY=VALUE, got {item!r}")
        pairs[name] = value
    return pairs


def cmd_secrets_encrypt(args: argparse.Namespace) -> int:
    """Prints a request input (0x hex) carrying secrets that only a worker can read."""
    w3, deployment, services = _running(args.state_dir)
    envelope = encrypt_input(
        services["gatekeeper"], w3, deployment, args.agent, _pairs(args.secrets), args.input.encode()
    )
    print("0x" + envelope.hex())
    return 0


def cmd_secrets_set(args: argparse.Namespace) -> int:
    """Sets an agent's sealed settings; the key must be the agent owner's."""
    w3, deployment, services = _running(args.state_dir)
    epoch = set_agent_secrets(
        services["gatekeeper"], w3, deployment, args.private_key, args.agent, _pairs(args.secrets)
    )
    print(f"sealed {len(args.secrets)} secret(s) to agent {args.agent} under key epoch {epoch}")
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    """Rotates the cluster's keys (TeeRegistry owner only)."""
    w3, deployment, _ = _running(args.state_dir)
    epoch = rotate(w3, deployment, args.private_key)
    record = deployment.contract(w3, "TeeRegistry").functions.getEpoch(epoch).call()
    print(f"epoch {epoch} is active: signer {record[0]}, published in block {record[1]}")
    return 0


def cmd_keys_show(args: argparse.Namespace) -> int:
    """The key epochs the chain knows."""
    w3, deployment, _ = _running(args.state_dir)
    registry = deployment.contract(w3, "TeeRegistry")
    current = int(registry.functions.currentEpoch().call())
    for epoch in range(1, current + 1):
        signer, published, valid_before, key = registry.functions.getEpoch(epoch).call()
        state = (
            "current"
            if epoch == current
            else ("revoked" if valid_before == 0 else f"valid before block {valid_before}")
        )
        print(f"epoch {epoch}: signer {signer}, X25519 0x{bytes(key).hex()}, published in block {published}, {state}")
    if registry.functions.rotationPending().call():
        print(f"rotation to epoch {current + 1} requested")
    return 0


def cmd_agent_simulate(args: argparse.Namespace) -> int:
    """Runs an agent locally, exactly as a worker would, and prints what it did."""
    secrets = json.loads(Path(args.secrets).read_text()) if args.secrets else {}
    agents = {}
    for mapping in args.agent:
        agent_id, _, path = mapping.partition("=")
        if not agent_id.isdigit() or not path:
            raise EnclaveError(f"--agent takes ID=FILE, got {mapping!r}")
        agents[int(agent_id)] = Path(path)
    simulation = simulate(Path(args.file), parse_input(args.input), secrets, tuple(args.allow_host), agents=agents)
    execution = simulation.execution
    for line in execution.logs:
        print(f"log  {line}")
    print(f"status  {execution.status.name}")
    if execution.status == Status.OK:
        print(show_bytes(execution.output))
    else:
        message = execution.error or execution.output.decode("utf-8", "replace")
        print(message.replace("<input>", Path(args.file).name), file=sys.stderr)
    limits = simulation.limits
    print(
        f"stats   {execution.elapsed_ms:.1f} ms of {limits.wall_time_ms} ms, "
        f"{execution.memory_bytes / 1024:.0f} KiB in use (limit {limits.memory_bytes // 2**20} MiB), "
        f"{execution.http_calls} of {limits.http_calls} HTTP calls, {len(execution.output)} of "
        f"{limits.output_bytes} output bytes"
    )
    return 0 if execution.status == Status.OK else 1


def cmd_agent_deploy(args: argparse.Namespace) -> int:
    w3, deployment, _ = _running(args.state_dir)
    code = prepare_code(Path(args.file), args.name, args.allow_host)
    agent_id, code_hash = deploy(w3, deployment, args.private_key, code, args.price)
    print(f"agent {agent_id} deployed (code hash 0x{code_hash.hex()})")
    return 0


def cmd_agent_list(args: argparse.Namespace) -> int:
    w3, deployment, _ = _running(args.state_dir)
    for agent in list_agents(w3, deployment):
        flags = " paused" if agent["paused"] else ""
        hosts = ", ".join(agent["allowHosts"]) or "none"
        print(
            f"{agent['id']:>4}  {agent['name'] or '(unnamed)':20} v{agent['version']}  price {agent['price']} wei"
            f"{flags}  hosts: {hosts}  {agent['codeHash'][:18]}..."
        )
    return 0


def cmd_request(args: argparse.Namespace) -> int:
    """Has EchoConsumer request an agent; with --wait, prints the result once it lands on-chain."""
    w3, deployment, services = _running(args.state_dir)
    payload = parse_input(args.input)
    if args.secret:
        payload = encrypt_input(services["gatekeeper"], w3, deployment, args.agent_id, _pairs(args.secret), payload)
    stack = Connected(w3, deployment)
    [tx_hash] = send_asks(stack, args.agent_id, [payload], fee=args.fee)
    [request_id] = request_ids(stack, [tx_hash])
    print(f"request 0x{request_id:064x} in tx 0x{tx_hash.hex()}")
    if not args.wait:
        return 0
    status, output = wait_for(stack, [request_id], timeout=args.timeout)[request_id]
    print(f"status  {status.name}")
    print(show_bytes(output))
    return 0 if status == Status.OK else 1


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
        p.add_argument("--web-port", type=int, default=8000, help="the dashboard's port (default 8000; 0: any free)")
        p.add_argument("--no-web", action="store_true", help="do not start the dashboard")

    up = sub.add_parser("up", help="start anvil, the contracts, a gatekeeper, workers and the bridge")
    stack_options(up)
    up.set_defaults(run=cmd_up)

    demo = sub.add_parser("demo", help="start the stack and answer one real request on-chain")
    stack_options(demo)
    # The demo's dashboard takes any free port, so that it runs beside an `enclave up`.
    demo.set_defaults(run=cmd_demo, state_dir=str(DEFAULT_STATE / "demo"), web_port=0)

    status = sub.add_parser("status", help="what is deployed and running")
    status.add_argument("--state-dir", default=str(DEFAULT_STATE))
    status.set_defaults(run=cmd_status)

    agent = sub.add_parser("agent", help="simulate, deploy and list agents").add_subparsers(
        dest="action", required=True
    )
    sim = agent.add_parser("simulate", help="run an agent locally in the worker's sandbox")
    sim.add_argument("file")
    sim.add_argument("--input", default="", help="0x hex, or text (JSON included)")
    sim.add_argument("--secrets", help="a JSON file of secrets, as ctx.secrets")
    sim.add_argument("--allow-host", action="append", default=[], help="add a host to the allow-list")
    sim.add_argument("--agent", action="append", default=[], metavar="ID=FILE", help="an agent ctx.callAgent may call")
    sim.set_defaults(run=cmd_agent_simulate)
    dep = agent.add_parser("deploy", help="publish an agent on-chain")
    dep.add_argument("file")
    dep.add_argument("--price", type=int, default=0, help="wei per request")
    dep.add_argument("--allow-host", action="append", default=[], help="a host ctx.fetch may reach")
    dep.add_argument("--name", help="a name, kept in the code's @enclave line")
    dep.add_argument("--private-key", default=DEV_KEYS[0], help="the owner's key (default: anvil's first)")
    dep.set_defaults(run=cmd_agent_deploy)
    lst = agent.add_parser("list", help="the agents on-chain")
    lst.set_defaults(run=cmd_agent_list)
    request = sub.add_parser("request", help="request an agent through EchoConsumer")
    request.add_argument("agent_id", type=int)
    request.add_argument("--input", default="")
    request.add_argument("--secret", action="append", default=[], metavar="KEY=VALUE", help="seal to the agent")
    request.add_argument("--fee", type=int, default=0, help="wei, at least the agent's price")
    request.add_argument("--wait", action="store_true", help="wait for the on-chain result and print it")
    request.add_argument("--timeout", type=float, default=120.0)
    request.set_defaults(run=cmd_request)
    for p in (dep, lst, request):
        p.add_argument("--state-dir", default=str(DEFAULT_STATE))

    secrets = sub.add_parser("secrets", help="seal secrets to an agent").add_subparsers(dest="action", required=True)
    encrypt = secrets.add_parser("encrypt", help="print a request input carrying sealed secrets")
    encrypt.add_argument("--agent", type=int, required=True)
    encrypt.add_argument("--input", default="", help="the plain input that travels beside the secrets")
    encrypt.add_argument("secrets", nargs="+", metavar="KEY=VALUE")
    encrypt.set_defaults(run=cmd_secrets_encrypt)
    setter = secrets.add_parser("set", help="set an agent's sealed settings (owner only)")
    setter.add_argument("--agent", type=int, required=True)
    setter.add_argument("--private-key", default=DEV_KEYS[0], help="the agent owner's key")
    setter.add_argument("secrets", nargs="+", metavar="KEY=VALUE")
    setter.set_defaults(run=cmd_secrets_set)

    keys = sub.add_parser("keys", help="key epochs and rotation").add_subparsers(dest="action", required=True)
    rotate_cmd = keys.add_parser("rotate", help="rotate the cluster's keys (admin)")
    rotate_cmd.add_argument("--private-key", default=DEV_KEYS[0], help="the TeeRegistry owner's key")
    rotate_cmd.set_defaults(run=cmd_keys_rotate)
    keys.add_parser("show", help="the key epochs on-chain").set_defaults(run=cmd_keys_show)
    for p in (encrypt, setter, rotate_cmd, keys.choices["show"]):
        p.add_argument("--state-dir", default=str(DEFAULT_STATE))

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
