"""Sealed agent state lives in a file of the host's: a row moved, copied or relabelled by the
host fails to open, and the agent gets an error, never another value."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from coprocessor.cluster_store import ClusterStore
from coprocessor.errors import SealingError
from coprocessor.runtime import Limits, RunContext, Sandbox, StorageGrant
from protocol.status import Status

KEY_1 = bytes(range(32))
KEY_2 = bytes(range(1, 33))


def _store(tmp_path: Path) -> tuple[ClusterStore, Path]:
    path = tmp_path / "cluster.sqlite"
    store = ClusterStore(path)
    store.set(1, "balance", "100", KEY_1, 1)
    store.set(1, "owner", "alice", KEY_1, 1)
    return store, path


def _swap_values(path: Path, agent_id: int, first: str, second: str) -> None:
    with sqlite3.connect(path) as db:
        a = db.execute("SELECT ciphertext FROM agent_state WHERE key_id = ?", (first,)).fetchone()[0]
        b = db.execute("SELECT ciphertext FROM agent_state WHERE key_id = ?", (second,)).fetchone()[0]
        db.execute("UPDATE agent_state SET ciphertext = ? WHERE agent_id = ? AND key_id = ?", (b, agent_id, first))
        db.execute("UPDATE agent_state SET ciphertext = ? WHERE agent_id = ? AND key_id = ?", (a, agent_id, second))


def test_values_open_in_their_place(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    assert store.get(1, "balance", {1: KEY_1}, 1) == "100"
    assert store.get(1, "owner", {1: KEY_1}, 1) == "alice"


def test_two_swapped_rows_fail_to_open(tmp_path: Path) -> None:
    store, path = _store(tmp_path)
    _swap_values(path, 1, ClusterStore.key_id(KEY_1, "balance"), ClusterStore.key_id(KEY_1, "owner"))
    with pytest.raises(SealingError, match="does not open in its place"):
        store.get(1, "balance", {1: KEY_1}, 1)
    with pytest.raises(SealingError):
        store.get(1, "owner", {1: KEY_1}, 1)


def test_a_row_copied_to_another_agent_fails_to_open(tmp_path: Path) -> None:
    store, path = _store(tmp_path)
    store.set(2, "balance", "5", KEY_1, 1)  # the same key bytes: only the place tells them apart
    with sqlite3.connect(path) as db:
        stolen = db.execute("SELECT ciphertext FROM agent_state WHERE agent_id = 1").fetchone()[0]
        db.execute("UPDATE agent_state SET ciphertext = ? WHERE agent_id = 2", (stolen,))
    with pytest.raises(SealingError):
        store.get(2, "balance", {1: KEY_1}, 1)


def test_a_row_relabelled_to_another_epoch_fails_to_open(tmp_path: Path) -> None:
    store, path = _store(tmp_path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE agent_state SET epoch = 2 WHERE agent_id = 1")
    with pytest.raises(SealingError):
        store.get(1, "balance", {1: KEY_1, 2: KEY_1}, 2)


def test_the_agent_gets_an_error_never_the_swapped_value(tmp_path: Path) -> None:
    _, path = _store(tmp_path)
    _swap_values(path, 1, ClusterStore.key_id(KEY_1, "balance"), ClusterStore.key_id(KEY_1, "owner"))
    code = """export default async (input, ctx) => {
      try { return "read " + ctx.storage.get("balance"); } catch (e) { return "refused: " + e.message; }
    };"""
    grant = StorageGrant(path=str(path), agent_id=1, epoch=1, keys={1: KEY_1})
    with Sandbox(size=1) as sandbox:
        execution = sandbox.execute(code, b"", Limits(), RunContext(agent_id=1, storage=grant))
    assert execution.status == Status.OK
    assert json.loads(execution.output).startswith("refused: a stored value does not open in its place")
    assert b"alice" not in execution.output


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cluster.sqlite"
    ClusterStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(SealingError, match="newer than this code"):
        ClusterStore(path)
