"""The `enclave` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from web3 import Web3

from coprocessor.chain import deploy_system
from enclave.anvil import DEV_KEYS, Anvil
from enclave.errors import EnclaveError


def cmd_deploy(args: argparse.Namespace) -> int:
    """Deploys the contracts to --rpc-url (or a fresh anvil) and writes the deployment file."""
    anvil = None if args.rpc_url else Anvil().start()
    try:
        rpc_url = args.rpc_url or anvil.rpc_url  # type: ignore[union-attr]
        w3 = Web3(Web3.HTTPProvider(rpc_url))
        deployment = deploy_system(w3, args.private_key)
        deployment.save(Path(args.out))
        print(f"chain {deployment.chain_id} at {rpc_url}")
        for name, address in deployment.addresses.items():
            print(f"  {name:14} {address}")
        print(f"deployment written to {args.out}")
    finally:
        if anvil is not None:
            anvil.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="enclave", description="Enclave Agents: a confidential coprocessor for EVM contracts."
    )
    sub = parser.add_subparsers(dest="command", required=True)

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
    except EnclaveError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
