"""Where the bridge keeps its state: a SQLite file (the default, one bridge) or a PostgreSQL
server (several replicas of one operator sharing the work). The store writes its SQL once, with
`?` placeholders and what both dialects share; this module hides the rest: connecting, the
placeholder style, rows that read by name and by position, and transactions.

A location is a path (SQLite) or a `postgresql://` URL.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from protocol import sqlite

if TYPE_CHECKING:
    import psycopg

# Every wait on the server has a bound: connecting, a statement, a lock.
CONNECT_TIMEOUT_S = 10
STATEMENT_TIMEOUT_MS = 30_000
LOCK_TIMEOUT_MS = 10_000


class Result(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Result: ...


def is_url(location: str | Path) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def open_database(location: str | Path, readonly: bool = False) -> SqliteDatabase | PostgresDatabase:
    """A connection shared by the bridge's threads: writes in `transaction()`, reads in `read()`,
    each a context that yields something with `execute(sql, params)`."""
    if is_url(location):
        return PostgresDatabase(str(location), readonly)
    if isinstance(location, str) and "://" in location:
        # Never a file of that name: a misspelt URL would run on a store of its own, unseen.
        # (The message leaves the URL out: it may carry a password.)
        raise ValueError("a store URL begins with postgresql:// (or postgres://)")
    return SqliteDatabase(Path(location), readonly)


class SqliteDatabase:
    """One connection, WAL, a lock that makes each transaction whole (`protocol.sqlite`)."""

    dialect = "sqlite"

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.location = str(path)
        self.lock = threading.RLock()
        self.db = sqlite.connect(path, readonly)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with sqlite.transaction(self.db, self.lock) as db:
            yield db

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            yield self.db

    def close(self) -> None:
        with self.lock:
            self.db.close()


class Row(tuple[Any, ...]):
    """A row that reads by position and by column name, as `sqlite3.Row` does."""

    _names: dict[str, int]

    def __new__(cls, names: dict[str, int], values: Sequence[Any]) -> Row:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return super().__getitem__(self._names[key])
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        return list(self._names)


def connect_postgresql(url: str, options: str, **kwargs: Any) -> Any:
    """A psycopg connection in autocommit, with the bounds every wait on the server has: `options`
    are server settings (`-c name=value ...`)."""
    import psycopg

    return psycopg.connect(
        url,
        autocommit=True,
        connect_timeout=CONNECT_TIMEOUT_S,
        options=options,
        # A server that vanished without a word is noticed within a minute, not never.
        keepalives=1,
        keepalives_idle=10,
        keepalives_interval=5,
        keepalives_count=3,
        **kwargs,
    )


class _PostgresConnection:
    """Runs the store's `?`-placeholder SQL on psycopg (whose placeholder is `%s`)."""

    def __init__(self, connection: psycopg.Connection[Row]) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._connection.execute(sql.replace("%", "%%").replace("?", "%s"), tuple(params))


class PostgresDatabase:
    """One connection per process, in autocommit: each read sees the latest commits of every
    replica, each write is an explicit transaction. A connection the server dropped is made
    again on next use, so a restarted server costs one failed call, not the process."""

    dialect = "postgresql"

    def __init__(self, url: str, readonly: bool = False) -> None:
        self.location = _without_password(url)
        self._url = url
        self._readonly = readonly
        self.lock = threading.RLock()
        self._connection: psycopg.Connection[Row] | None = None
        self._connect()

    def _connect(self) -> psycopg.Connection[Row]:
        if self._connection is not None and not self._connection.closed and not self._connection.broken:
            return self._connection
        options = f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c lock_timeout={LOCK_TIMEOUT_MS}"
        if self._readonly:
            options += " -c default_transaction_read_only=on"
        self._connection = connect_postgresql(self._url, options, row_factory=_row_factory)
        return self._connection

    @contextmanager
    def transaction(self) -> Iterator[_PostgresConnection]:
        with self.lock:
            connection = self._connect()
            with connection.transaction():
                yield _PostgresConnection(connection)

    @contextmanager
    def read(self) -> Iterator[_PostgresConnection]:
        with self.lock:
            yield _PostgresConnection(self._connect())

    def close(self) -> None:
        with self.lock:
            if self._connection is not None:
                self._connection.close()


def _row_factory(cursor: Any) -> Any:
    names = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: Row(names, values)


def _without_password(url: str) -> str:
    """The URL to show in status and logs: the password never leaves the process."""
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"
