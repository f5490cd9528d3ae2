"""`python -m coprocessor.ffi`: runs an agent and signs its result, for forge tests (`vm.ffi`).

Prints `abi.encode(uint8 status, bytes output, bytes32 r, bytes32 vs)` as 0x hex, which
`vm.ffi` hands back to the test as bytes. The agent runs in the same sandbox as on a worker.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eth_abi.abi import encode

from coprocessor.protocol import AgentResult, RequestCommitment, sign_result
from coprocessor.runtime import Limits, Sandbox


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--code-file", type=Path, required=True)
    parser.add_argument("--input", default="0x", help="0x hex")
    parser.add_argument("--request-id", type=lambda v: int(v, 0), required=True)
    parser.add_argument("--agent-id", type=lambda v: int(v, 0), required=True)
    parser.add_argument("--code-hash", required=True, help="0x hex")
    parser.add_argument("--chain-id", type=int, required=True)
    parser.add_argument("--router", required=True)
    parser.add_argument("--epoch", type=int, default=1)
    parser.add_argument("--key", required=True, help="the test cluster key, 0x hex")
    parser.add_argument("--wall-time-ms", type=int, default=Limits.wall_time_ms)
    args = parser.parse_args(argv)

    with Sandbox(size=1) as sandbox:
        execution = sandbox.execute(
            args.code_file.read_text(), bytes.fromhex(args.input[2:]), Limits(wall_time_ms=args.wall_time_ms)
        )
    # Only the fields the signature covers matter here; the router checks the rest itself.
    commitment = RequestCommitment(
        agent_id=args.agent_id,
        code_hash=bytes.fromhex(args.code_hash[2:]),
        consumer="0x" + "00" * 20,
        fee=0,
        callback_gas_limit=0,
        created_at=0,
        deadline=0,
    )
    result = AgentResult(
        request_id=args.request_id, commitment=commitment, status=execution.status, output=execution.output
    )
    signed = sign_result(
        bytes.fromhex(args.key[2:]), chain_id=args.chain_id, router=args.router, result=result, epoch=args.epoch
    )
    encoded = encode(
        ["uint8", "bytes", "bytes32", "bytes32"],
        [int(execution.status), execution.output, signed.signature.r, signed.signature.vs],
    )
    sys.stdout.write("0x" + encoded.hex())


if __name__ == "__main__":
    main()
