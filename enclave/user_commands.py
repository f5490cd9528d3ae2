"""The commands of agent developers and operators: `enclave agent`, `request`, `secrets`, `keys`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import httpx
from eth_account import Account
from web3 import Web3
from web3.types import TxParams, Wei

from coprocessor.runtime.engine import syntax_error
from coprocessor.worker.code import CodeStore
from enclave.agents import deploy, list_agents, parse_input, prepare_code, simulate
from enclave.display import show_bytes
from enclave.errors import EnclaveError
from enclave.init import init_project
from enclave.keys import encrypt_input, rotate, seal_functions_secrets, set_agent_secrets
from enclave.locations import RunningStack
from enclave.stack import DEPLOYER_KEY
from enclave.usage import Connected, request_ids, send_asks, wait_for
from protocol.deployment import Deployment, send
from protocol.fees import current_gas_price, request_value
from protocol.hexes import to_hex
from protocol.manifest import decode_output, parse_manifest
from protocol.private_logs import open_logs
from protocol.status import Status
from protocol.wire import from_hex

CALLBACK_GAS = 300_000


def _running(state_dir: str) -> tuple[Web3, Deployment, dict[str, str]]:
    """The chain, deployment and service URLs of the stack that `enclave up` runs."""
    stack = RunningStack.read(Path(state_dir))
    return stack.web3(), stack.deployment, stack.services


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
    print(to_hex(envelope))
    return 0


def cmd_secrets_functions(args: argparse.Namespace) -> int:
    """Prints a Chainlink Functions secrets reference (0x hex) bound to a subscription owner."""
    w3, deployment, services = _running(args.state_dir)
    sealed = seal_functions_secrets(
        services["gatekeeper"], w3, deployment, args.agent, args.adapter, args.owner, _pairs(args.secrets)
    )
    print(to_hex(sealed))
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
    simulation = simulate(
        Path(args.file),
        parse_input(args.input),
        secrets,
        tuple(args.allow_host),
        agents=agents,
        allow_private_networks=args.allow_private_networks,
    )
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
    """Publishes an agent, once its manifest, size and syntax pass (before any transaction)."""
    w3, deployment, _ = _running(args.state_dir)
    code = prepare_code(Path(args.file), args.name, args.allow_host, args.private_key if args.private_logs else None)
    size, most = len(code.encode()), int(deployment.contract(w3, "AgentRouter").functions.MAX_CODE_SIZE().call())
    if size > most:
        raise EnclaveError(f"{args.file} is {size} bytes; agent code may be at most {most} bytes")
    if (problem := syntax_error(code)) is not None:
        raise EnclaveError(f"{args.file} does not compile: {problem}")
    agent_id, code_hash = deploy(w3, deployment, args.private_key, code, args.price)
    print(f"agent {agent_id} deployed (code hash 0x{code_hash.hex()})")
    return 0


def cmd_agent_pause(args: argparse.Namespace) -> int:
    return _set_paused(args, True)


def cmd_agent_unpause(args: argparse.Namespace) -> int:
    return _set_paused(args, False)


def _set_paused(args: argparse.Namespace, paused: bool) -> int:
    """Pauses or resumes an agent; the chain refuses anyone but its owner, by name."""
    w3, deployment, _ = _running(args.state_dir)
    router = deployment.contract(w3, "AgentRouter")
    call = router.functions.pauseAgent if paused else router.functions.unpauseAgent
    send(w3, Account.from_key(args.private_key), call(args.agent_id))
    print(f"agent {args.agent_id} {'paused: it takes no requests' if paused else 'takes requests again'}")
    return 0


def cmd_agent_logs(args: argparse.Namespace) -> int:
    """Prints a request's logs and full error; private ones are opened with ENCLAVE_OWNER_KEY."""
    _, _, services = _running(args.state_dir)
    reply = httpx.get(f"{services['bridge']}/v1/requests/0x{int(args.request_id, 0):064x}", timeout=10)
    if reply.status_code != 200:
        print(f"the bridge knows no request {args.request_id}")
        return 1
    detail = reply.json()
    sealed = detail.get("sealedLogs")
    if sealed is None:
        logs, error = json.loads(detail.get("logs") or "[]"), detail.get("error")
        print("logs are public for this agent")
    else:
        owner_key = os.environ.get("ENCLAVE_OWNER_KEY")
        if not owner_key:
            print("these logs are private: set ENCLAVE_OWNER_KEY to the agent owner's key to open them")
            return 1
        try:
            opened = open_logs(Account.from_key(owner_key).key, from_hex(sealed), int(args.request_id, 0))
        except ValueError as err:
            print(err)
            return 1
        logs, error = opened["logs"], opened["error"]
    for line in logs:
        print(line)
    if error:
        print(f"error: {error}")
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


def cmd_agent_cost(args: argparse.Namespace) -> int:
    """Prints the most a request of the agent sent now can cost: the value to send with it (or,
    with --token, the fee-token units it takes). What the request does not cost comes back to
    the payer at the router."""
    w3, deployment, _ = _running(args.state_dir)
    router = deployment.contract(w3, "AgentRouter")
    gas_price = current_gas_price(w3)
    cost = request_value(router, args.agent_id, args.callback_gas, gas_price)
    price = int(router.functions.getAgent(args.agent_id).call()[1])
    operator_fee = int(router.functions.getConfig().call()[4])
    units = "wei"
    if args.token:
        # Prices and fees are set in wei; a token request pays each at the router's rate.
        rate = int(router.functions.tokensPerEth().call())
        cost = int(router.functions.estimateTokenCost(args.agent_id, args.callback_gas, gas_price.max_fee).call())
        # Each part rounded up, as the router charges it.
        price, operator_fee, units = -(-price * rate // 10**18), -(-operator_fee * rate // 10**18), "token units"
    print(cost)
    if args.parts:
        print(f"  agent's price    {price} {units} (to its owner)", file=sys.stderr)
        print(f"  operator's fee   {operator_fee} {units} (to the transmitter)", file=sys.stderr)
        gas_part = cost - price - operator_fee
        at = f"at {gas_price.max_fee} wei/gas; unused: refunded"
        print(f"  gas, at most     {gas_part} {units} ({at})", file=sys.stderr)
    return 0


def cmd_request(args: argparse.Namespace) -> int:
    """Has EchoConsumer request an agent; with --wait, prints the result once it lands on-chain."""
    w3, deployment, services = _running(args.state_dir)
    payload = parse_input(args.input)
    if args.secret:
        payload = encrypt_input(services["gatekeeper"], w3, deployment, args.agent_id, _pairs(args.secret), payload)
    stack = Connected(w3, deployment)
    router, echo = deployment.contract(w3, "AgentRouter"), deployment.contract(w3, "EchoConsumer")
    # The least the router takes unless told otherwise (estimateCost refuses an unknown agent by
    # name); what the request does not cost comes back to the consumer.
    gas_price = current_gas_price(w3)
    fee = args.fee if args.fee is not None else request_value(router, args.agent_id, CALLBACK_GAS, gas_price)
    # Asked of the chain first: a refusal comes back as the router's error, and costs nothing.
    asker: TxParams = {
        "from": Account.from_key(DEPLOYER_KEY).address,
        "value": Wei(fee),
        "gasPrice": Wei(gas_price.max_fee),
    }
    echo.functions.ask(args.agent_id, payload, CALLBACK_GAS).call(asker)
    [tx_hash] = send_asks(stack, args.agent_id, [payload], gas=CALLBACK_GAS, fee=fee, gas_price=gas_price)
    [request_id] = request_ids(stack, [tx_hash])
    print(f"request 0x{request_id:064x} in tx 0x{tx_hash.hex()}")
    if not args.wait:
        return 0
    status, output = wait_for(stack, [request_id], timeout=args.timeout)[request_id]
    print(f"status  {status.name}")
    print(show_bytes(output))
    code_hash = bytes(router.functions.getAgent(args.agent_id).call()[0])
    manifest = parse_manifest(CodeStore(w3, router, deployment.start_block).get(code_hash))
    values = decode_output(manifest, output) if status == Status.OK else None
    if values is not None:
        print(f"decoded ({', '.join(manifest.output)}): {', '.join(map(str, values))}")
    return 0 if status == Status.OK else 1


def cmd_init(args: argparse.Namespace) -> int:
    target = Path(args.dir)
    tarball = init_project(target, Path(args.package) if args.package else None)
    print(f"a project in {target}, using {tarball.name}; next:")
    print(f"  cd {target} && npm ci && forge test")
    print("  (the end-to-end test runs `enclave ffi`: keep this `enclave` on PATH)")
    return 0
