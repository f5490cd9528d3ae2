"""State written by an earlier version migrates forward; state of a newer version is refused;
no command deletes a state folder: stale state is moved aside, and an unreadable deployment
file is an error, never a reason to touch the keys."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.store import SCHEMA_VERSION, RequestStore, StoreVersionError
from coprocessor.cluster_store import ClusterStore
from enclave.anvil import Anvil
from enclave.stack import Stack
from protocol.errors import DeploymentError

FIXTURES = Path(__file__).parent / "fixtures"


def _written_by_v0(path: Path, schema: str, rows: list[str]) -> None:
    with sqlite3.connect(path) as db:
        db.executescript((FIXTURES / schema).read_text())
        for row in rows:
            db.execute(row)


def test_a_bridge_store_of_the_first_version_migrates_and_keeps_its_requests(tmp_path: Path) -> None:
    path = tmp_path / "bridge.sqlite"
    _written_by_v0(
        path,
        "bridge-schema-v0.sql",
        [
            """INSERT INTO requests (request_id, agent_id, consumer, code_hash, input, fee, callback_gas_limit,
            created_at_block, deadline, request_tx, requested_at, state, updated_at)
            VALUES ('7', 1, '0x00000000000000000000000000000000000000c0', '0x' || hex(zeroblob(32)), x'01', '0',
            100000, 5, 1800000000, '0xab', 1.0, 'fulfilled', 2.0)""",
            "INSERT INTO cursor VALUES ('router', 9, 9, NULL)",
        ],
    )
    store = RequestStore(path)
    stored = store.get(7)
    assert stored is not None
    assert stored.state == "fulfilled"
    assert stored.commitment.nonce == 0
    assert store.cursor() is not None
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_bridge_store_of_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bridge.sqlite"
    RequestStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreVersionError, match="newer than this bridge's"):
        RequestStore(path)


def test_a_cluster_store_of_the_first_version_migrates_and_keeps_owner_settings(tmp_path: Path) -> None:
    path = tmp_path / "cluster.sqlite"
    _written_by_v0(path, "cluster-schema-v0.sql", ["INSERT INTO agent_secrets VALUES (3, 1, x'00ff', 1.0)"])
    store = ClusterStore(path)
    assert store.secrets(3) == (1, b"\x00\xff")
    assert store.secrets_version(3) == 0, "an upload from before versions counts as version 0"


@pytest.fixture(scope="module")
def chain() -> Iterator[Anvil]:
    with Anvil() as running:
        yield running


def test_an_unreadable_deployment_file_is_an_error_and_the_keys_stay(chain: Anvil, tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "gatekeeper").mkdir(parents=True)
    (state / "gatekeeper" / "master-keys.sealed").write_bytes(b"sealed master keys")
    (state / "deployment.json").write_text("{ truncated")
    with pytest.raises(DeploymentError, match="cannot read deployment file"):
        Stack(state_dir=state, rpc_url=chain.rpc_url)._start_chain()
    assert (state / "gatekeeper" / "master-keys.sealed").read_bytes() == b"sealed master keys"


def test_state_of_another_chain_is_moved_aside_not_deleted(chain: Anvil, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "bridge.sqlite").write_bytes(b"the old bridge's requests")
    (state / "deployment.json").write_text(
        json.dumps(
            {"chainId": 5, "startBlock": 0, "contracts": {"AgentRouter": {"address": "0x" + "11" * 20, "abi": []}}}
        )
    )
    stack = Stack(state_dir=state, rpc_url=chain.rpc_url)
    stack._start_chain()
    assert stack.moved_aside is not None
    assert stack.moved_aside.parent == tmp_path
    assert (stack.moved_aside / "bridge.sqlite").read_bytes() == b"the old bridge's requests"
    assert any("is now in" in notice for notice in stack.notices)
    assert stack.deployment is not None
    assert (state / "deployment.json").exists()
