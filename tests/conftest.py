"""Shared fixtures: a real anvil chain per test module and the system deployed on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from web3 import Web3

from enclave.anvil import DEV_KEYS, Anvil
from enclave.deploy import deploy_system
from protocol.deployment import Deployment


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    with Anvil() as chain:
        yield chain


@pytest.fixture(scope="module")
def w3(anvil: Anvil) -> Web3:
    return Web3(Web3.HTTPProvider(anvil.rpc_url))


@pytest.fixture(scope="module")
def deployment(w3: Web3) -> Deployment:
    return deploy_system(w3, DEV_KEYS[0])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Where the browser tests left their screenshots (not committed)."""
    from tests.test_dashboard_browser import SCREENSHOTS

    if SCREENSHOTS.exists() and any(SCREENSHOTS.iterdir()):
        terminalreporter.write_line(f"dashboard screenshots: {SCREENSHOTS}")
