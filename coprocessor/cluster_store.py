"""The cluster store: what every worker of the cluster reaches, all of it encrypted.

Agents' sealed state (`ctx.storage`) and the secrets their owners set live in one SQLite file
(by default; any worker with the cluster key can read them, so failover keeps the state). Rows
name the key epoch that encrypted them; a rotation re-encrypts them under the new epoch's keys.
Keys of `ctx.storage` are stored as HMACs, so even the names of an agent's entries stay private.

The file is the host's, so its rows are bound to their place: a value is encrypted with
XChaCha20-Poly1305 and its row's agent id, key id and epoch as associated data, so a row copied
to another agent or key, or another epoch, fails to open instead of answering with another value.
What associated data cannot stop is a host putting back an older value of the same row (a
rollback); docs/security.md says so.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
    crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
)
from nacl.exceptions import CryptoError
from nacl.utils import random

from coprocessor.errors import SealingError
from protocol import sqlite

SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_state (
    agent_id INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    ciphertext BLOB NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (agent_id, key_id)
);
CREATE TABLE IF NOT EXISTS agent_secrets (
    agent_id INTEGER PRIMARY KEY,
    epoch INTEGER NOT NULL,
    ciphertext BLOB NOT NULL,
    updated_at REAL NOT NULL,
    version INTEGER NOT NULL DEFAULT 0
);
"""
# PRAGMA user_version of this schema; MIGRATIONS[v] takes a store from version v to v + 1.
MIGRATIONS = [
    # 0 -> 1: owners' settings carry a version; state values are sealed with their place as
    # associated data (values sealed before cannot be opened and read as missing errors).
    "ALTER TABLE agent_secrets ADD COLUMN version INTEGER NOT NULL DEFAULT 0",
]
SCHEMA_VERSION = len(MIGRATIONS)


def _newer(version: int) -> SealingError:
    return SealingError(f"cluster.sqlite has schema version {version}, newer than this code's {SCHEMA_VERSION}")


MAX_VALUE_BYTES = 64 * 1024


def _place(agent_id: int, key_id: str, epoch: int) -> bytes:
    """The associated data of a state value: where it belongs."""
    return f"enclave-agents/v1/agent-state/{agent_id}/{key_id}/{epoch}".encode()


def seal_value(key: bytes, plaintext: bytes, place: bytes) -> bytes:
    nonce = random(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
    return nonce + crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, place, nonce, key)


def open_value(key: bytes, sealed: bytes, place: bytes) -> bytes:
    nonce, ciphertext = (
        sealed[:crypto_aead_xchacha20poly1305_ietf_NPUBBYTES],
        sealed[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES:],
    )
    try:
        return bytes(crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, place, nonce, key))
    except CryptoError as err:
        raise SealingError(
            "a stored value does not open in its place: it was moved, copied or altered outside the cluster"
        ) from err


class ClusterStore:
    def __init__(self, path: Path) -> None:
        self._db = sqlite.connect(path)
        self._lock = threading.RLock()
        sqlite.migrate(self._db, self._lock, SCHEMA, MIGRATIONS, "agent_state", _newer)

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return sqlite.transaction(self._db, self._lock)

    # -- ctx.storage ----------------------------------------------------------------------------

    @staticmethod
    def key_id(storage_key: bytes, name: str) -> str:
        return hmac.new(storage_key, name.encode(), hashlib.sha256).hexdigest()

    def get(self, agent_id: int, name: str, keys: dict[int, bytes], current_epoch: int) -> str | None:
        # The current epoch's key first; a value not yet re-encrypted after a rotation is found
        # under an older key. A row opens only with the key id and epoch it is filed under.
        row = None
        with self._lock:
            for epoch in sorted(keys, key=lambda e: e != current_epoch):
                key_id = self.key_id(keys[epoch], name)
                row = self._db.execute(
                    "SELECT epoch, ciphertext FROM agent_state WHERE agent_id = ? AND key_id = ?", (agent_id, key_id)
                ).fetchone()
                if row is not None:
                    break
        if row is None:
            return None
        epoch, ciphertext = int(row[0]), bytes(row[1])
        if epoch not in keys:
            raise SealingError(f"state of agent {agent_id} is sealed under epoch {epoch}, whose key is gone")
        stored = json.loads(open_value(keys[epoch], ciphertext, _place(agent_id, key_id, epoch)))
        if stored.get("name") != name:
            raise SealingError(f"the value stored for {name!r} names another key")
        value: str = stored["value"]
        return value

    def set(self, agent_id: int, name: str, value: str, key: bytes, epoch: int) -> None:
        if len(value.encode()) > MAX_VALUE_BYTES:
            raise ValueError(f"a stored value is at most {MAX_VALUE_BYTES} bytes")
        key_id = self.key_id(key, name)
        plaintext = json.dumps({"name": name, "value": value}).encode()
        ciphertext = seal_value(key, plaintext, _place(agent_id, key_id, epoch))
        with self._transaction() as db:
            db.execute(
                """INSERT INTO agent_state (agent_id, key_id, epoch, ciphertext, updated_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (agent_id, key_id) DO UPDATE SET epoch = excluded.epoch,
                ciphertext = excluded.ciphertext, updated_at = excluded.updated_at""",
                (agent_id, key_id, epoch, ciphertext, time.time()),
            )

    def delete(self, agent_id: int, name: str, keys: dict[int, bytes]) -> None:
        with self._transaction() as db:
            for key in keys.values():
                db.execute(
                    "DELETE FROM agent_state WHERE agent_id = ? AND key_id = ?", (agent_id, self.key_id(key, name))
                )

    # -- owners' sealed secrets -----------------------------------------------------------------

    def put_secrets(self, agent_id: int, epoch: int, ciphertext: bytes, version: int) -> None:
        with self._transaction() as db:
            db.execute(
                """INSERT INTO agent_secrets (agent_id, epoch, ciphertext, updated_at, version) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (agent_id) DO UPDATE SET epoch = excluded.epoch, ciphertext = excluded.ciphertext,
                updated_at = excluded.updated_at, version = excluded.version""",
                (agent_id, epoch, ciphertext, time.time(), version),
            )

    def secrets_version(self, agent_id: int) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT version FROM agent_secrets WHERE agent_id = ?", (agent_id,)).fetchone()
        return int(row[0]) if row else None

    def secrets(self, agent_id: int) -> tuple[int, bytes] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT epoch, ciphertext FROM agent_secrets WHERE agent_id = ?", (agent_id,)
            ).fetchone()
        return (int(row[0]), bytes(row[1])) if row else None

    # -- rotation -------------------------------------------------------------------------------

    def reencrypt(
        self,
        from_epoch: int,
        to_epoch: int,
        state_keys: Callable[[int, int], bytes],
        reseal_secrets: Callable[[int, bytes], bytes],
    ) -> tuple[int, int]:
        """Moves every row of `from_epoch` to `to_epoch`, in one transaction.

        `state_keys(agent_id, epoch)` gives an agent's storage key; `reseal_secrets(agent_id,
        ciphertext)` opens an owner's secrets with the old agent key and seals them to the new.
        Returns how many state entries and secret sets moved.
        """
        moved_state = moved_secrets = 0
        with self._transaction() as db:
            rows = db.execute(
                "SELECT agent_id, key_id, ciphertext FROM agent_state WHERE epoch = ?", (from_epoch,)
            ).fetchall()
            for agent_id, key_id, ciphertext in rows:
                old_key, new_key = state_keys(agent_id, from_epoch), state_keys(agent_id, to_epoch)
                plaintext = open_value(old_key, bytes(ciphertext), _place(agent_id, key_id, from_epoch))
                new_key_id = self.key_id(new_key, json.loads(plaintext)["name"])
                fresh = seal_value(new_key, plaintext, _place(agent_id, new_key_id, to_epoch))
                db.execute("DELETE FROM agent_state WHERE agent_id = ? AND key_id = ?", (agent_id, key_id))
                db.execute(
                    "INSERT OR REPLACE INTO agent_state (agent_id, key_id, epoch, ciphertext, updated_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (agent_id, new_key_id, to_epoch, fresh, time.time()),
                )
                moved_state += 1
            for agent_id, ciphertext in db.execute(
                "SELECT agent_id, ciphertext FROM agent_secrets WHERE epoch = ?", (from_epoch,)
            ).fetchall():
                db.execute(
                    "UPDATE agent_secrets SET epoch = ?, ciphertext = ?, updated_at = ? WHERE agent_id = ?",
                    (to_epoch, reseal_secrets(agent_id, bytes(ciphertext)), time.time(), agent_id),
                )
                moved_secrets += 1
        return moved_state, moved_secrets

    def close(self) -> None:
        with self._lock:
            self._db.close()
