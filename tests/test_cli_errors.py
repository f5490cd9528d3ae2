"""Every CLI error is a line or two that says what happened and what to do, and changes nothing:
the router's custom errors by name, a stack that is not running, a missing file, a bad
manifest, code over the size limit and code that does not compile (both before any
transaction). `--fee` defaults to the most the request can cost."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from enclave import cli
from enclave.anvil import DEV_KEYS
from enclave.stack import Stack
from enclave.usage import register, wait_for
from enclave.user_commands import CALLBACK_GAS
from tests.state import fresh_state_dir

pytestmark = pytest.mark.chain

ECHO = "export default async (input) => input.bytes;"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack(state_dir=fresh_state_dir("cli-errors"), workers=1, web_port=None) as running:
        yield running


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _on_chain(stack: Stack) -> tuple[int, int, int]:
    """Agents registered and requests made so far, and requests in the bridge's store."""
    assert stack.deployment is not None
    router = stack.deployment.contract(stack.web3(), "AgentRouter")
    requests = router.events.AgentRequested().get_logs(from_block=stack.deployment.start_block)
    with sqlite3.connect(stack.state_dir / "bridge.sqlite") as db:
        (stored,) = db.execute("SELECT COUNT(*) FROM requests").fetchone()
    return int(router.functions.agentCount().call()), len(requests), int(stored)


def _refused(capsys: pytest.CaptureFixture[str], stack: Stack, expected: str, *argv: str) -> str:
    before = _on_chain(stack)
    code, _, err = _run(capsys, *argv, "--state-dir", str(stack.state_dir))
    assert code == 1
    assert expected in err, err
    assert err.startswith("error: ")
    assert len(err.strip().splitlines()) <= 2, err
    assert "Traceback" not in err
    assert _on_chain(stack) == before, "nothing changed on-chain or in the store"
    return err


def test_requests_the_router_refuses_say_why(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    assert stack.deployment is not None
    _refused(capsys, stack, "the chain refused it: AgentNotFound(agentId=999): no agent has that id", "request", "999")

    paused = register(stack, ECHO)
    code, out, _ = _run(capsys, "agent", "pause", str(paused), "--state-dir", str(stack.state_dir))
    assert (code, out.strip()) == (0, f"agent {paused} paused: it takes no requests")
    _refused(capsys, stack, f"AgentIsPaused(agentId={paused}): its owner paused it", "request", str(paused))
    _refused(
        capsys,
        stack,
        f"NotAgentOwner(agentId={paused}, caller={Account.from_key(DEV_KEYS[3]).address}): only the agent's owner",
        "agent",
        "unpause",
        str(paused),
        "--private-key",
        DEV_KEYS[3],
    )

    priced = register(stack, ECHO, price=12_345)
    _refused(
        capsys,
        stack,
        "InsufficientFee(paid=0, cost=",
        "request",
        str(priced),
        "--fee",
        "0",
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["agent", "deploy", "x.js", "--price", "-5"], "argument --price: -5 wei is out of range: 0 to 2**96 - 1"),
        (["agent", "deploy", "x.js", "--price", str(2**96)], "is out of range"),
        (["request", "1", "--fee", "-1"], "argument --fee: -1 wei is out of range"),
        (["request", "1", "--fee", "lots"], "argument --fee: 'lots' is not a whole number of wei"),
    ],
)
def test_amounts_of_wei_are_checked_before_anything_else(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    assert expected in capsys.readouterr().err


def test_the_fee_defaults_to_the_most_the_request_can_cost(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    assert stack.deployment is not None
    priced = register(stack, ECHO, price=777)
    code, out, err = _run(capsys, "request", str(priced), "--input", "paid", "--state-dir", str(stack.state_dir))
    assert code == 0, err
    request_id = int(out.split()[1], 16)
    router = stack.deployment.contract(stack.web3(), "AgentRouter")
    [event] = [
        e
        for e in router.events.AgentRequested().get_logs(from_block=stack.deployment.start_block)
        if int(e["args"]["requestId"]) == request_id
    ]
    # The price, and the callback's gas and the delivery's at the request's fee cap.
    charge = event["args"]["charge"]
    assert charge["price"] == 777
    assert charge["fee"] > 777 + (CALLBACK_GAS + 60_000)
    wait_for(stack, [request_id])
    [paid] = [
        e["args"]
        for e in router.events.RequestFulfilled().get_logs(from_block=event["blockNumber"])
        if int(e["args"]["requestId"]) == request_id
    ]
    parts = charge["price"] + charge["operatorFee"] + paid["gasReimbursed"] + paid["refunded"]
    assert parts == charge["fee"]
    assert paid["refunded"] > 0, "the callback used less than its limit: the rest came back"


def test_agents_are_checked_before_any_transaction(
    stack: Stack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.js"
    _refused(capsys, stack, f"No such file or directory: {missing}", "agent", "deploy", str(missing))

    manifest = tmp_path / "manifest.js"
    manifest.write_text('// @enclave {"limits": {"wallTimeMs": -1}}\n' + ECHO)
    _refused(capsys, stack, "limits are positive integers", "agent", "deploy", str(manifest))

    misspelt = tmp_path / "misspelt.js"
    misspelt.write_text('// @enclave {"name": "x", "limts": {"wallTimeMs": 2000}}\n' + ECHO)
    _refused(capsys, stack, "unknown manifest keys ['limts']", "agent", "deploy", str(misspelt))

    over = tmp_path / "over.js"
    over.write_text('// @enclave {"limits": {"wallTimeMs": 99999999}}\n' + ECHO)
    _refused(capsys, stack, "limit wallTimeMs of 99999999 is over its cap of 60000", "agent", "deploy", str(over))

    no_main = tmp_path / "no-main.js"
    no_main.write_text("const answer = 42;\n")
    _refused(capsys, stack, "does not compile: it has no default export", "agent", "deploy", str(no_main))

    big = tmp_path / "big.js"
    big.write_text(ECHO + "\n// " + "x" * 70_000 + "\n")
    _refused(capsys, stack, "agent code may be at most 65536 bytes", "agent", "deploy", str(big))

    broken = tmp_path / "broken.js"
    broken.write_text("// an agent\nexport default async (input) => {\n  const = 3;\n};\n")
    _refused(
        capsys, stack, "does not compile: SyntaxError: variable name expected (line 3)", "agent", "deploy", str(broken)
    )


def test_a_stack_that_is_not_running_is_said_plainly(
    stack: Stack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = _run(capsys, "agent", "list", "--state-dir", str(tmp_path / "nothing"))
    assert code == 1
    assert f"no running stack in {tmp_path / 'nothing'}: start one with `enclave up`" in err

    # A stack that was running once: its files are there, its chain is gone.
    gone = tmp_path / "gone"
    gone.mkdir()
    (gone / "deployment.json").write_text((stack.state_dir / "deployment.json").read_text())
    (gone / "stack.json").write_text(json.dumps({"rpcUrl": "http://127.0.0.1:9", "services": {}}))
    code, _, err = _run(capsys, "agent", "list", "--state-dir", str(gone))
    assert code == 1
    assert "the stack's chain does not answer" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
