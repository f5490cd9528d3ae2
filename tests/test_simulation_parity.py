"""One agent, one input, three ways to run it: `enclave agent simulate`, the Foundry helper's
`enclave ffi`, and a live worker through the chain. They agree on status and output."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_abi.abi import decode, encode
from eth_utils.crypto import keccak

from enclave.agents import simulate
from enclave.stack import Stack
from enclave.usage import ask_many, register, wait_for
from protocol.results import COMMITMENT_TYPES, RequestCommitment
from protocol.status import Status
from tests.state import fresh_state_dir

pytestmark = pytest.mark.chain

ROOT = Path(__file__).resolve().parent.parent
AGENTS = {
    "hello": (ROOT / "examples/agents/hello.js", b"parity"),
    "spin": (ROOT / "solidity/test/e2e/fixtures/spin.js", b""),
    "throws": (None, b"x"),
    "too-big": (None, b"y"),
    "wrong-shape": (None, b"z"),
}
SOURCES = {
    "throws": 'export default async () => { throw new Error("refused on purpose"); };',
    "too-big": '// @enclave {"limits": {"outputBytes": 16}}\nexport default async () => "0x" + "ab".repeat(64);',
    # Declares (uint256, string) and answers one byte: a consumer's abi.decode would revert.
    "wrong-shape": '// @enclave {"output": ["uint256", "string"]}\nexport default async () => "0x01";',
}


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack(state_dir=fresh_state_dir("parity"), workers=1, web_port=None) as running:
        yield running


def _via_ffi(path: Path, input_: bytes, state_dir: Path) -> tuple[Status, bytes]:
    commitment = RequestCommitment(1, keccak(path.read_bytes()), keccak(input_), "0x" + "11" * 20, 0, 1, 1, 2, 0)
    enclave = str(Path(sys.executable).parent / "enclave")
    completed = subprocess.run(
        [
            enclave, "ffi", "--code-file", str(path), "--input", "0x" + input_.hex(),
            "--commitment", "0x" + encode(COMMITMENT_TYPES, list(commitment.as_tuple())).hex(),
            "--chain-id", "31337", "--router", "0x" + "22" * 20, "--key", "0x" + "c1" * 32,
            "--state-dir", str(state_dir),
        ],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    status, output, _, _ = decode(["uint8", "bytes", "bytes32", "bytes32"], bytes.fromhex(completed.stdout[2:]))
    return Status(status), bytes(output)


@pytest.mark.parametrize("name", list(AGENTS))
def test_simulate_ffi_and_a_live_worker_agree(name: str, stack: Stack, tmp_path: Path) -> None:
    path, input_ = AGENTS[name]
    if path is None:
        path = tmp_path / f"{name}.js"
        path.write_text(SOURCES[name])
    simulated = simulate(path, input_, state_dir=tmp_path / "simulate").execution
    via_ffi = _via_ffi(path, input_, tmp_path / "ffi")
    [request_id] = ask_many(stack, register(stack, path), [input_])
    live = wait_for(stack, [request_id])[request_id]
    assert (simulated.status, simulated.output) == via_ffi == live, name
    if name == "wrong-shape":
        assert simulated.status == Status.AGENT_ERROR
        assert b"does not decode as (uint256, string), as the manifest declares" in simulated.output
