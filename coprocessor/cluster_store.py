"""The cluster store: what every worker of the cluster reaches, all of it encrypted.

Agents' sealed state (`ctx.storage`) and the secrets their owners set live in one SQLite file
(by default; any worker with the cluster key can read them, so failover keeps the state). Rows
name the key epoch that encrypted them; a rotation re-encrypts them under the new epoch's keys.
Keys of `ctx.storage` are stored as HMACs, so even the names of an agent's entries stay private.
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

from nacl.secret import SecretBox

from coprocessor import sqlite
from coprocessor.errors import SealingError
from coprocessor.sealing import unseal

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
    updated_at REAL NOT NULL
);
"""

MAX_VALUE_BYTES = 64 * 1024


class ClusterStore:
    def __init__(self, path: Path) -> None:
        self._db = sqlite.connect(path)
        self._lock = threading.RLock()
        self._db.executescript(SCHEMA)

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return sqlite.transaction(self._db, self._lock)

    # -- ctx.storage ----------------------------------------------------------------------------

    @staticmethod
    def key_id(storage_key: bytes, name: str) -> str:
        return hmac.new(storage_key, name.encode(), hashlib.sha256).hexdigest()

    def get(self, agent_id: int, name: str, keys: dict[int, bytes], current_epoch: int) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT epoch, ciphertext FROM agent_state WHERE agent_id = ? AND key_id = ?",
                (agent_id, self.key_id(keys[current_epoch], name)),
            ).fetchone()
            if row is None:
                # Not yet re-encrypted after a rotation: look it up under the older keys.
                for epoch, key in keys.items():
                    if epoch == current_epoch:
                        continue
                    row = self._db.execute(
                        "SELECT epoch, ciphertext FROM agent_state WHERE agent_id = ? AND key_id = ?",
                        (agent_id, self.key_id(key, name)),
                    ).fetchone()
                    if row is not None:
                        break
        if row is None:
            return None
        epoch, ciphertext = row
        if epoch not in keys:
            raise SealingError(f"state of agent {agent_id} is sealed under epoch {epoch}, whose key is gone")
        stored = json.loads(unseal(keys[epoch], ciphertext))
        value: str = stored["value"]
        return value

    def set(self, agent_id: int, name: str, value: str, key: bytes, epoch: int) -> None:
        if len(value.encode()) > MAX_VALUE_BYTES:
            raise ValueError(f"a stored value is at most {MAX_VALUE_BYTES} bytes")
        ciphertext = bytes(SecretBox(key).encrypt(json.dumps({"name": name, "value": value}).encode()))
        with self._transaction() as db:
            db.execute(
                """INSERT INTO agent_state (agent_id, key_id, epoch, ciphertext, updated_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (agent_id, key_id) DO UPDATE SET epoch = excluded.epoch,
                ciphertext = excluded.ciphertext, updated_at = excluded.updated_at""",
                (agent_id, self.key_id(key, name), epoch, ciphertext, time.time()),
            )

    def delete(self, agent_id: int, name: str, keys: dict[int, bytes]) -> None:
        with self._transaction() as db:
            for key in keys.values():
                db.execute(
                    "DELETE FROM agent_state WHERE agent_id = ? AND key_id = ?", (agent_id, self.key_id(key, name))
                )

    # -- owners' sealed secrets -----------------------------------------------------------------

    def put_secrets(self, agent_id: int, epoch: int, ciphertext: bytes) -> None:
        with self._transaction() as db:
            db.execute(
                """INSERT INTO agent_secrets (agent_id, epoch, ciphertext, updated_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (agent_id) DO UPDATE SET epoch = excluded.epoch, ciphertext = excluded.ciphertext,
                updated_at = excluded.updated_at""",
                (agent_id, epoch, ciphertext, time.time()),
            )

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
                stored = json.loads(unseal(old_key, ciphertext))
                fresh = bytes(SecretBox(new_key).encrypt(json.dumps(stored).encode()))
                db.execute("DELETE FROM agent_state WHERE agent_id = ? AND key_id = ?", (agent_id, key_id))
                db.execute(
                    "INSERT OR REPLACE INTO agent_state VALUES (?, ?, ?, ?, ?)",
                    (agent_id, self.key_id(new_key, stored["name"]), to_epoch, fresh, time.time()),
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
