"""docs/agents.md's "your own project in five minutes", its blocks run by bash as they stand."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from enclave.stack import Stack
from protocol.deployment import PROJECT_ROOT
from tests.shell import run_as_written

pytestmark = pytest.mark.chain

DOC = (PROJECT_ROOT / "docs" / "agents.md").read_text()
WALKTHROUGH = DOC.split("## Your own project in five minutes")[1].split("\n## ")[0]


def blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", WALKTHROUGH, flags=re.S)


def test_walkthrough(tmp_path: Path) -> None:
    steps = blocks()
    assert len(steps) == 3
    outputs = []
    stack = None
    try:
        for number, script in enumerate(steps, start=1):
            if "enclave env" in script:
                # "In another terminal, start the local stack with `enclave up`": the test starts it.
                stack = Stack(state_dir=tmp_path / "state", web_port=None).start()
            ran = run_as_written(script, tmp_path if number == 1 else tmp_path / "word-count", tmp_path / "state")
            assert ran.returncode == 0, f"block {number} failed:\n{script}\n{ran.stdout}\n{ran.stderr}"
            outputs.append(ran.stdout)
    finally:
        if stack is not None:
            stack.stop()

    built, simulated, asked = outputs
    assert "4 tests passed, 0 failed" in built
    assert "status  OK" in simulated
    assert "log  4 words, the longest" in simulated
    assert asked.strip().splitlines()[-1] == '"contract"', "the consumer decoded the agent's answer"
