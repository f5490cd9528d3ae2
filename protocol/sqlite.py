"""SQLite the way every store here uses it: WAL, one connection shared by threads, and
write transactions that take the lock first, so that no reader sees half a change."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        db = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None, timeout=30
        )
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        # WAL with synchronous=NORMAL survives any crash of the process (a SIGKILL included);
        # only a power cut may lose the last transactions.
        db.execute("PRAGMA synchronous=NORMAL")
    db.row_factory = sqlite3.Row
    return db


@contextmanager
def transaction(db: sqlite3.Connection, lock: threading.RLock) -> Iterator[sqlite3.Connection]:
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def migrate(
    db: sqlite3.Connection,
    lock: threading.RLock,
    schema: str,
    migrations: list[str],
    table: str,
    newer: Callable[[int], Exception],
) -> None:
    """Creates a new store at the latest schema, or brings an older one forward step by step:
    `PRAGMA user_version` counts the `migrations` a store has had (`migrations[v]` takes it from
    v to v + 1). A store of a newer version raises `newer(version)`. `table` tells a new store."""
    latest = len(migrations)
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > latest:
        raise newer(version)
    fresh = db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone() is None
    if not fresh and version == latest:
        return  # nothing to write: a store on a full disk still opens, and says what it holds
    with transaction(db, lock) as tx:
        for script in [schema] if fresh else migrations[version:]:
            for statement in filter(None, (s.strip() for s in script.split(";"))):
                tx.execute(statement)
        tx.execute(f"PRAGMA user_version = {latest}")
