"""The toolchain: the solc shim serves py-solc-x, and the README's example contract compiles."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import solcx
import solcx.wrapper

from protocol.deployment import PROJECT_ROOT

SOLC_SHIM = PROJECT_ROOT / "scripts" / "solc"
REMAPPINGS = [
    "enclave-agents/=solidity/src/",
    "@openzeppelin/contracts/=node_modules/@openzeppelin/contracts/",
]


def readme_consumer_example() -> str:
    readme = (PROJECT_ROOT / "README.md").read_text()
    blocks: list[str] = re.findall(r"```solidity\n(.*?)```", readme, flags=re.S)
    assert blocks, "the README shows a consumer contract"
    return "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\n" + blocks[0]


def test_shim_reports_the_pinned_compiler() -> None:
    version = solcx.wrapper.get_solc_version(SOLC_SHIM)
    assert str(version) == "0.8.30"


def test_readme_consumer_compiles_with_py_solc_x(tmp_path: Path) -> None:
    source = {"Greeter.sol": {"content": readme_consumer_example()}}
    output = solcx.compile_standard(
        {
            "language": "Solidity",
            "sources": source,
            "settings": {
                "remappings": REMAPPINGS,
                "evmVersion": "cancun",
                "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
            },
        },
        base_path=str(PROJECT_ROOT),
        solc_binary=SOLC_SHIM,
    )
    errors = [e for e in output.get("errors", []) if e["severity"] == "error"]
    assert not errors, errors
    greeter = output["contracts"]["Greeter.sol"]["Greeter"]
    assert len(greeter["evm"]["bytecode"]["object"]) > 100
    assert {f["name"] for f in greeter["abi"] if f["type"] == "function"} >= {"greet", "onAgentResult", "greeting"}


def test_the_scripts_forge_fails_when_its_check_fails(tmp_path: Path) -> None:
    """`make test` and the setup run Foundry through scripts/foundry-env.sh: the native binary,
    whose exit code says a check failed (npm's launcher always exits 0)."""
    badly_formatted = tmp_path / "Bad.sol"
    badly_formatted.write_text("contract   Bad {}\n")
    done = subprocess.run(
        ["/bin/bash", "-c", f'. scripts/foundry-env.sh && forge fmt --check "{badly_formatted}"'],
        cwd=PROJECT_ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0, done.stdout
