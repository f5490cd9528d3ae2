"""docs/agents.md's "first agent in five minutes", followed command by command."""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from enclave import cli
from enclave.stack import Stack
from protocol.deployment import PROJECT_ROOT

pytestmark = pytest.mark.chain

DOC = (PROJECT_ROOT / "docs" / "agents.md").read_text()
WALKTHROUGH = DOC.split("## Your first agent in five minutes")[1].split("\n## ")[0]


def files() -> dict[str, str]:
    return dict(re.findall(r"```js file=(\S+)\n(.*?)```", WALKTHROUGH, flags=re.S))


def commands() -> list[list[str]]:
    blocks = re.findall(r"```sh\n(.*?)```", WALKTHROUGH, flags=re.S)
    return [shlex.split(line[2:]) for block in blocks for line in block.splitlines() if line.startswith("$ ")]


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    previous = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(previous)


def test_walkthrough(workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # The user's own state folder (~/.local/state/enclave), here one of the test's.
    monkeypatch.setenv("ENCLAVE_STATE_DIR", str(workdir / "state"))
    for name, content in files().items():
        (workdir / name).write_text(content)
    steps = commands()
    assert [s[:3] for s in steps][:2] == [["enclave", "agent", "simulate"], ["enclave", "agent", "deploy"]]

    outputs = []
    stack = None
    try:
        for step in steps:
            assert step[0] == "enclave"
            if step[1:2] != ["agent"] or step[2] != "simulate":
                # "In another terminal, start the local stack with `enclave up`": the test starts it.
                stack = stack or Stack(state_dir=workdir / "state").start()
            code = cli.main(step[1:])
            out = capsys.readouterr().out
            assert code == 0, f"{' '.join(step)} failed:\n{out}"
            outputs.append(out)
    finally:
        if stack is not None:
            stack.stop()

    simulated, deployed, first, sealed, listed = outputs
    assert json.loads(simulated.split("status  OK\n")[1].split("stats")[0]) == {"greeting": "Hello, Ada!", "visits": 1}
    assert "log  greeting Ada" in simulated
    assert deployed.startswith("agent 1 deployed")
    assert '"greeting": "Hello, Ada!"' in first
    assert '"visits": 1' in first
    assert '"greeting": "Bonjour, Ada!"' in sealed
    assert '"visits": 2' in sealed, "state kept across requests"
    assert "greeter" in listed
