"""Shared fixtures: a real anvil chain per test module and the system deployed on it; a
PostgreSQL server of the test run's own, with a fresh database per test that asks for one."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from web3 import Web3

from enclave.anvil import DEV_KEYS, Anvil
from enclave.deploy import deploy_system
from enclave.postgres import PostgresServer
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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Debian's PostgreSQL (which `make test` installs), initdb'd into a folder of its own under
    /tmp (the server's user must reach it), on a free port of 127.0.0.1; removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="enclave-postgres-"))
    try:
        with PostgresServer(folder) as server:
            yield server
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of an empty database, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = postgres_server.url_for("postgres")
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as db:
        db.execute(f"CREATE DATABASE {name}")
    yield postgres_server.url_for(name)
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as db:
        db.execute(f"DROP DATABASE {name} WITH (FORCE)")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Where the browser tests left their screenshots (not committed)."""
    from tests.test_dashboard_browser import SCREENSHOTS

    if SCREENSHOTS.exists() and any(SCREENSHOTS.iterdir()):
        terminalreporter.write_line(f"dashboard screenshots: {SCREENSHOTS}")
