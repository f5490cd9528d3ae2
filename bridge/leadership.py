"""Which replica watches the chain: one at a time, and another as soon as it dies.

Replicas of one operator share a PostgreSQL store; each claims requests for itself, but one of
them alone reads the chain into the store (the watcher), cancels expired requests, prunes, and
puts back the requests of replicas that stopped holding them. That one holds a PostgreSQL
advisory lock on a connection of its own: the server releases it when the connection ends, so
when its holder is killed, or hangs past `LEAD_IDLE_TIMEOUT_MS`, the next replica to ask takes
over. A bridge on SQLite is alone and
always leads.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from bridge.database import connect_postgresql, is_url

log = logging.getLogger("bridge.leadership")

# The advisory lock's key: "enclave" and 2, the watcher's.
WATCHER_LOCK = 0x656E636C61766502
# The server ends a session that has said nothing for this long, and with it the lock: a leader
# that hangs (stopped, or cut off by a network that keeps its connection open) loses the lead to
# another replica, instead of holding it for as long as the connection seems alive. The leader
# asks `held()` at every poll of its watcher, well within it.
LEAD_IDLE_TIMEOUT_MS = 15_000


class Leadership:
    def __init__(self, location: str | Path, idle_timeout_ms: int = LEAD_IDLE_TIMEOUT_MS) -> None:
        self._url = str(location) if is_url(location) else None
        self._idle_timeout_ms = idle_timeout_ms
        self._connection: Any = None
        self._held = self._url is None
        self._lock = threading.Lock()
        self.changes = 0

    @property
    def leading(self) -> bool:
        """Whether this replica led at the last `held()`: for status, without asking the server."""
        return self._held

    @property
    def shared(self) -> bool:
        """Whether replicas share the store (PostgreSQL), so that leading is something to win."""
        return self._url is not None

    def held(self) -> bool:
        """Whether this replica leads now; asks for the lead when it does not, and checks that
        its connection (and with it the lock) is still there when it does."""
        if self._url is None:
            return True
        import psycopg

        with self._lock:
            try:
                if self._connection is None or self._connection.closed or self._connection.broken:
                    self._lost()
                    options = f"-c idle_session_timeout={self._idle_timeout_ms}"
                    self._connection = connect_postgresql(self._url, options)
                if self._held:
                    self._connection.execute("SELECT 1")
                else:
                    row = self._connection.execute("SELECT pg_try_advisory_lock(%s)", (WATCHER_LOCK,)).fetchone()
                    if row and row[0]:
                        self._held = True
                        self.changes += 1
                        log.info("this replica now watches the chain")
            except psycopg.Error as err:
                log.warning("lost the store while leading or asking to lead: %s", err)
                self._lost()
            return self._held

    def _lost(self) -> None:
        if self._held:
            log.warning("this replica no longer watches the chain")
        self._held = False
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:
                log.debug("closing a lost connection failed", exc_info=True)
            self._connection = None

    def close(self) -> None:
        with self._lock:
            self._lost()
