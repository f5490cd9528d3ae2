"""`enclave init DIR` makes a project that installs with npm and passes its own forge tests as
made, the end-to-end one running the agent through `enclave ffi`; its agent simulates."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from enclave import cli
from enclave.anvil import tool_path

BIN = Path(sys.executable).parent


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_a_new_project_builds_and_passes_its_own_tests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a folder named relative to where the user stands
    assert cli.main(["init", "my-consumer"]) == 0
    project = tmp_path / "my-consumer"
    assert "npm ci && forge test" in capsys.readouterr().out
    assert [p.name for p in (project / "vendor").iterdir()] == ["enclave-agents-contracts-0.1.0.tgz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-consumer"], "nothing written beside it"
    for made in ("foundry.toml", "package.json", "package-lock.json", "README.md", "agents/word-count.js"):
        assert (project / made).is_file(), made

    # Offline: the lock pins what this checkout installed, so npm's cache has it all.
    installed = _run(["npm", "ci", "--offline", "--no-audit", "--no-fund"], project)
    assert installed.returncode == 0, installed.stderr
    tested = _run([tool_path("forge"), "test"], project)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "4 tests passed, 0 failed" in tested.stdout
    assert "test_EndToEnd_TheAgentCountsTheWords" in tested.stdout

    simulated = _run(["enclave", "agent", "simulate", "agents/word-count.js", "--input", "to be or not"], project)
    assert simulated.returncode == 0, simulated.stderr
    assert "status  OK" in simulated.stdout


def test_init_refuses_a_folder_that_holds_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert cli.main(["init", str(tmp_path)]) == 1
    assert f"error: {tmp_path} is not empty" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
