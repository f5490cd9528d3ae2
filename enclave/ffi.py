"""`enclave ffi` (or `python -m enclave.ffi`): runs an agent and signs its result, for forge
tests (`vm.ffi`, see `EnclaveTest.sol`).

Prints `abi.encode(uint8 status, bytes output, bytes32 r, bytes32 vs)` as 0x hex, which
`vm.ffi` hands back to the test as bytes. The agent runs exactly as `enclave agent simulate`
runs it, which is as a worker does: the same sandbox process, the agent's manifest and limits,
the secrets given, and sealed storage in `--state-dir`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from eth_abi.abi import decode, encode
from eth_utils.crypto import keccak

from coprocessor.runtime import Limits
from enclave.agents import simulate
from protocol.hexes import to_hex
from protocol.results import COMMITMENT_TYPES, AgentResult, RequestCommitment, sign_result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--code-file", type=Path, required=True)
    parser.add_argument("--input", default="0x", help="0x hex")
    parser.add_argument("--commitment", required=True, help="abi.encode(RequestCommitment), 0x hex")
    parser.add_argument("--chain-id", type=int, required=True)
    parser.add_argument("--router", required=True)
    parser.add_argument("--epoch", type=int, default=1)
    parser.add_argument("--key", required=True, help="the test cluster key, 0x hex")
    parser.add_argument("--wall-time-ms", type=int, help="the default wall time (an agent's manifest wins)")
    parser.add_argument("--state-dir", type=Path, default=Path("cache/enclave-test"), help="sealed storage")
    parser.add_argument("--agent-id", type=int, help="the agent's id (default: the commitment's)")
    parser.add_argument("--secrets-file", type=Path, help="a JSON object of secrets, as ctx.secrets")
    args = parser.parse_args(argv)

    raw_input = bytes.fromhex(args.input[2:])
    fields = decode(COMMITMENT_TYPES, bytes.fromhex(args.commitment[2:]))
    commitment = RequestCommitment.from_tuple(fields)
    if keccak(raw_input) != commitment.input_hash:
        sys.exit("the input does not hash to the commitment's inputHash")
    secrets = json.loads(args.secrets_file.read_text()) if args.secrets_file else {}
    execution = simulate(
        args.code_file,
        raw_input,
        secrets,
        state_dir=args.state_dir,
        defaults=Limits(wall_time_ms=args.wall_time_ms) if args.wall_time_ms else None,
        agent_id=commitment.agent_id if args.agent_id is None else args.agent_id,
        consumer=commitment.consumer,
        chain_id=args.chain_id,
    ).execution
    result = AgentResult(commitment=commitment, status=execution.status, output=execution.output)
    signed = sign_result(
        bytes.fromhex(args.key[2:]), chain_id=args.chain_id, router=args.router, result=result, epoch=args.epoch
    )
    encoded = encode(
        ["uint8", "bytes", "bytes32", "bytes32"],
        [int(execution.status), execution.output, signed.signature.r, signed.signature.vs],
    )
    sys.stdout.write(to_hex(encoded))


if __name__ == "__main__":
    main()
