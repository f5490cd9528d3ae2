"""The bridge's memory: every request and each of its state transitions, in a SQLite file or
on a PostgreSQL server that several bridge replicas share (`bridge.database`).

Every change is one transaction, and the chain cursor moves in the same transaction as the
requests it found, so a SIGKILL at any moment loses nothing: on restart the bridge reads where
it was and carries on. On PostgreSQL, a replica claims requests with `FOR UPDATE SKIP LOCKED`,
so replicas never take the same request, and never wait for each other's claims.

    pending ──▶ dispatched ──▶ executed ──▶ submitted ──▶ fulfilled
       ▲            │              ▲            │
       └────────────┴──────────────┴────────────┴──▶ failed | cancelled
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bridge.database import Connection, PostgresDatabase, SqliteDatabase, open_database
from bridge.errors import BridgeError
from protocol import sqlite
from protocol.hexes import to_hex
from protocol.keccak import checksum_address, keccak256
from protocol.results import ZERO_ADDRESS, Currency, RequestCommitment

STATES = ("pending", "dispatched", "executed", "submitted", "fulfilled", "failed", "cancelled")
OPEN_STATES = ("pending", "dispatched", "executed", "submitted")

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    agent_id INTEGER NOT NULL,
    consumer TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    input BLOB NOT NULL,
    fee TEXT NOT NULL,
    callback_gas_limit INTEGER NOT NULL,
    created_at_block INTEGER NOT NULL,
    deadline INTEGER NOT NULL,
    nonce INTEGER NOT NULL DEFAULT 0,
    price TEXT NOT NULL DEFAULT '0',
    operator_fee TEXT NOT NULL DEFAULT '0',
    subscription_id INTEGER NOT NULL DEFAULT 0,
    assignee TEXT NOT NULL DEFAULT '0x0000000000000000000000000000000000000000',
    assigned_until INTEGER NOT NULL DEFAULT 0,
    currency INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    cancel_tx TEXT,
    request_tx TEXT NOT NULL,
    requested_at REAL NOT NULL,
    state TEXT NOT NULL,
    worker TEXT,
    epoch INTEGER,
    status TEXT,
    output BLOB,
    error TEXT,
    logs TEXT,
    stats TEXT,
    result TEXT,
    fulfil_tx TEXT,
    gas_used INTEGER,
    callback_succeeded INTEGER,
    gas_reimbursed TEXT,
    refunded TEXT,
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL,
    owner TEXT,
    lease_until DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS requests_by_state ON requests (state, updated_at);
CREATE TABLE IF NOT EXISTS transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    state TEXT NOT NULL,
    at REAL NOT NULL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS transitions_by_request ON transitions (request_id, id);
CREATE TABLE IF NOT EXISTS cursor (
    name TEXT PRIMARY KEY,
    last_block_seen INTEGER NOT NULL,
    last_block_processed INTEGER NOT NULL,
    last_block_hash TEXT
);
"""

# The same tables on PostgreSQL, at the latest version: integers that outgrow 32 bits are BIGINT,
# bytes BYTEA, times DOUBLE PRECISION; uint96 and uint256 amounts stay decimal TEXT, as in SQLite.
SCHEMA_POSTGRESQL = """
CREATE TABLE requests (
    request_id TEXT PRIMARY KEY,
    agent_id BIGINT NOT NULL,
    consumer TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    input BYTEA NOT NULL,
    fee TEXT NOT NULL,
    callback_gas_limit BIGINT NOT NULL,
    created_at_block BIGINT NOT NULL,
    deadline BIGINT NOT NULL,
    nonce BIGINT NOT NULL DEFAULT 0,
    price TEXT NOT NULL DEFAULT '0',
    operator_fee TEXT NOT NULL DEFAULT '0',
    subscription_id BIGINT NOT NULL DEFAULT 0,
    assignee TEXT NOT NULL DEFAULT '0x0000000000000000000000000000000000000000',
    assigned_until BIGINT NOT NULL DEFAULT 0,
    currency INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL DEFAULT 0,
    cancel_tx TEXT,
    request_tx TEXT NOT NULL,
    requested_at DOUBLE PRECISION NOT NULL,
    state TEXT NOT NULL,
    worker TEXT,
    epoch BIGINT,
    status TEXT,
    output BYTEA,
    error TEXT,
    logs TEXT,
    stats TEXT,
    result TEXT,
    fulfil_tx TEXT,
    gas_used BIGINT,
    callback_succeeded BOOLEAN,
    gas_reimbursed TEXT,
    refunded TEXT,
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    updated_at DOUBLE PRECISION NOT NULL,
    owner TEXT,
    lease_until DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE INDEX requests_by_state ON requests (state, updated_at);
CREATE TABLE transitions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id TEXT NOT NULL,
    state TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    detail TEXT
);
CREATE INDEX transitions_by_request ON transitions (request_id, id);
CREATE TABLE cursor (
    name TEXT PRIMARY KEY,
    last_block_seen BIGINT NOT NULL,
    last_block_processed BIGINT NOT NULL,
    last_block_hash TEXT
);
CREATE TABLE store_version (version INTEGER NOT NULL);
"""
# Replicas that start together create the tables once: the first takes this lock.
_SCHEMA_LOCK = 0x656E636C61766501

# The schema's version (PRAGMA user_version in SQLite, the store_version table in PostgreSQL)
# and the steps that bring each older one forward: MIGRATIONS[v] takes a store from version v
# to v + 1. PostgreSQL stores begin at version 6: a step from there on must suit both dialects.
MIGRATIONS = [
    # 0 -> 1: requests carry the nonce that their id hashes.
    "ALTER TABLE requests ADD COLUMN nonce INTEGER NOT NULL DEFAULT 0;",
    # 1 -> 2: retries wait for their time (and survive restarts); expired requests are cancelled.
    "ALTER TABLE requests ADD COLUMN next_attempt_at REAL NOT NULL DEFAULT 0;"
    "ALTER TABLE requests ADD COLUMN cancel_tx TEXT;",
    # 2 -> 3: a request's charge: its parts when made, who pays, and what its delivery paid.
    "ALTER TABLE requests ADD COLUMN price TEXT NOT NULL DEFAULT '0';"
    "ALTER TABLE requests ADD COLUMN operator_fee TEXT NOT NULL DEFAULT '0';"
    "ALTER TABLE requests ADD COLUMN subscription_id INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE requests ADD COLUMN gas_reimbursed TEXT;"
    "ALTER TABLE requests ADD COLUMN refunded TEXT;",
    # 3 -> 4: the staked operator a request is assigned to, and until when.
    "ALTER TABLE requests ADD COLUMN assignee TEXT NOT NULL DEFAULT '0x0000000000000000000000000000000000000000';"
    "ALTER TABLE requests ADD COLUMN assigned_until INTEGER NOT NULL DEFAULT 0;",
    # 4 -> 5: what a request pays in: wei (0) or the router's fee token (1).
    "ALTER TABLE requests ADD COLUMN currency INTEGER NOT NULL DEFAULT 0;",
    # 5 -> 6: which bridge replica holds a request it is working on, and until when.
    "ALTER TABLE requests ADD COLUMN owner TEXT;"
    "ALTER TABLE requests ADD COLUMN lease_until DOUBLE PRECISION NOT NULL DEFAULT 0;",
]
SCHEMA_VERSION = len(MIGRATIONS)


# A claimable request: in the state, due, and held by no live replica but (maybe) this one.
_CLAIM = """SELECT * FROM requests WHERE state = ? AND next_attempt_at <= ?
    AND (owner IS NULL OR owner = ? OR lease_until < ?)"""


def _deliverable(deliverable_by: tuple[str, float] | None, now: float) -> tuple[str, list[object]]:
    """The condition (and its parameters) of the requests `transmitter` may deliver: assigned
    to it or to nobody, or to another whose window ended `margin` seconds ago (a negative
    margin: whose window ends within that long)."""
    if deliverable_by is None:
        return "", []
    transmitter, margin = deliverable_by
    return " AND (assignee = ? OR assignee = ? OR assigned_until < ?)", [
        checksum_address(transmitter),
        ZERO_ADDRESS,
        now - margin,
    ]


def deliverable_now(commitment: RequestCommitment, deliverable_by: tuple[str, float] | None, now: float) -> bool:
    """What `_deliverable` asks of a stored request, asked of one in hand."""
    if deliverable_by is None:
        return True
    transmitter, margin = deliverable_by
    if commitment.assignee.lower() in (transmitter.lower(), ZERO_ADDRESS):
        return True
    return commitment.assigned_until < now - margin


def _marks(count: int) -> str:
    """An IN list of `count` placeholders: statements built with it carry no values."""
    return ", ".join("?" * count)


# A request whose replica stopped renewing its hold.
_EXPIRED_HOLD = "SELECT request_id, state, owner FROM requests WHERE state IN (?, ?) AND lease_until < ? LIMIT ?"
# States in which a request is with one replica: a worker runs it, or its fulfilment is in flight.
HELD_STATES = ("dispatched", "submitted")
# How long a replica's hold on a request lasts unless it renews it (`renew_leases`), by default.
LEASE_S = 30.0


class StoreVersionError(BridgeError):
    """The store was written by a newer version of the bridge."""

    def __init__(self, version: int) -> None:
        super().__init__(
            f"the store has schema version {version}, newer than this bridge's {SCHEMA_VERSION}: "
            "run the newer bridge, or start this one with a store of its own"
        )
        self.version = version


@dataclass(frozen=True)
class Cursor:
    """How far the watcher got: the head it last saw, the last block it processed and that
    block's hash (to notice a reorganisation below it)."""

    last_block_seen: int
    last_block_processed: int
    last_block_hash: str | None


@dataclass(frozen=True)
class Delivery:
    """A request's result delivered on-chain: where, its share of the gas, whether its
    callback succeeded (None when another transmitter delivered it and that is not known)."""

    request_id: int
    tx_hash: str
    gas_used: int | None
    callback_succeeded: bool | None
    detail: str
    # What the delivery paid the transmitter for gas, and returned to the payer (wei).
    gas_reimbursed: int | None = None
    refunded: int | None = None

    @classmethod
    def of_event(
        cls, args: Mapping[str, Any], tx_hash: str, gas_used: int | None, detail: str, known_callback: bool = True
    ) -> Delivery:
        """A delivery as its `RequestFulfilled` log tells it."""
        return cls(
            request_id=int(args["requestId"]),
            tx_hash=tx_hash,
            gas_used=gas_used,
            callback_succeeded=bool(args["callbackSucceeded"]) if known_callback else None,
            detail=detail,
            gas_reimbursed=int(args["gasReimbursed"]),
            refunded=int(args["refunded"]),
        )


@dataclass(frozen=True)
class NewRequest:
    """An `AgentRequested` log, as the watcher found it."""

    request_id: int
    commitment: RequestCommitment
    input: bytes
    request_tx: str
    requested_at: float


@dataclass(frozen=True)
class Recorded:
    """What `record_blocks` stored: how many requests were new, and those of them it claimed."""

    added: int
    claimed: list[StoredRequest]


class _NotHeld(Exception):
    """A request this replica no longer holds: the transaction recording it is rolled back."""


@dataclass(frozen=True)
class StoredRequest:
    request_id: int
    commitment: RequestCommitment
    input: bytes
    state: str
    attempts: int
    result: dict[str, Any] | None
    fulfil_tx: str | None
    row: dict[str, Any]


class RequestStore:
    def __init__(
        self, location: Path | str, readonly: bool = False, owner: str = "bridge", lease_s: float = LEASE_S
    ) -> None:
        """A SQLite file's path or a `postgresql://` URL. The bridge opens it to write (and
        makes or migrates its tables); the dashboard opens the same store read-only. `owner`
        names this replica in the requests it holds (its transmitter's address), for `lease_s`
        at a time."""
        self.owner = owner
        self.lease_s = lease_s
        self.database = open_database(location, readonly)
        if readonly:
            return
        try:
            if isinstance(self.database, SqliteDatabase):
                sqlite.migrate(self.database.db, self.database.lock, SCHEMA, MIGRATIONS, "requests", StoreVersionError)
            else:
                _migrate_postgresql(self.database)
        except BaseException:
            self.database.close()
            raise

    def _transaction(self) -> Any:
        return self.database.transaction()

    def _read(self) -> Any:
        return self.database.read()

    def _transition(self, db: Connection, request_id: int, state: str, detail: str | None = None) -> None:
        now = time.time()
        db.execute("UPDATE requests SET state = ?, updated_at = ? WHERE request_id = ?", (state, now, str(request_id)))
        db.execute(
            "INSERT INTO transitions (request_id, state, at, detail) VALUES (?, ?, ?, ?)",
            (str(request_id), state, now, detail),
        )

    # -- the chain cursor ---------------------------------------------------------------------

    def cursor(self, name: str = "router") -> Cursor | None:
        with self._read() as db:
            row = db.execute("SELECT * FROM cursor WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        return Cursor(row["last_block_seen"], row["last_block_processed"], row["last_block_hash"])

    def rewind(self, block: int, name: str = "router") -> None:
        """After a reorganisation: process again from the block after `block`."""
        with self._transaction() as db:
            db.execute(
                "UPDATE cursor SET last_block_processed = ?, last_block_hash = NULL WHERE name = ?", (block, name)
            )

    def record_blocks(
        self,
        requests: list[NewRequest],
        closed: list[tuple[int, str, str]],
        last_block_seen: int,
        last_block_processed: int,
        last_block_hash: str | None = None,
        name: str = "router",
        claim: Collection[int] = (),
    ) -> Recorded:
        """Stores new requests and on-chain closures, and moves the cursor, atomically.

        `closed` holds (request id, "fulfilled" | "cancelled", tx hash). The new requests whose
        ids are in `claim` are stored as dispatched, held by this replica (the dispatcher took
        them as they were found); the others are pending.
        """
        added = 0
        now = time.time()
        claimed: list[StoredRequest] = []
        with self._transaction() as db:
            for req in requests:
                c = req.commitment
                cur = db.execute(
                    """INSERT INTO requests (request_id, agent_id, consumer, code_hash, input, fee,
                    callback_gas_limit, created_at_block, deadline, nonce, price, operator_fee, subscription_id,
                    assignee, assigned_until, currency, request_tx, requested_at, state, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)
                    ON CONFLICT DO NOTHING""",
                    (
                        str(req.request_id),
                        c.agent_id,
                        c.consumer,
                        to_hex(c.code_hash),
                        req.input,
                        str(c.fee),
                        c.callback_gas_limit,
                        c.created_at,
                        c.deadline,
                        c.nonce,
                        str(c.price),
                        str(c.operator_fee),
                        c.subscription_id,
                        c.assignee,
                        c.assigned_until,
                        int(c.currency),
                        req.request_tx,
                        req.requested_at,
                        time.time(),
                    ),
                )
                if not cur.rowcount:
                    continue
                added += 1
                self._transition(db, req.request_id, "pending", f"seen in tx {req.request_tx}")
                if req.request_id in claim:
                    db.execute(
                        "UPDATE requests SET owner = ?, lease_until = ? WHERE request_id = ?",
                        (self.owner, now + self.lease_s, str(req.request_id)),
                    )
                    self._transition(db, req.request_id, "dispatched")
                    claimed.append(self._claimed(req, now + self.lease_s))
            for request_id, state, tx_hash in closed:
                row = db.execute("SELECT state FROM requests WHERE request_id = ?", (str(request_id),)).fetchone()
                if row is None or row["state"] in ("fulfilled", "cancelled"):
                    continue
                db.execute("UPDATE requests SET fulfil_tx = ? WHERE request_id = ?", (tx_hash, str(request_id)))
                self._transition(db, request_id, state, f"{state} on-chain in tx {tx_hash}")
            db.execute(
                """INSERT INTO cursor (name, last_block_seen, last_block_processed, last_block_hash)
                VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET last_block_seen = excluded.last_block_seen,
                last_block_processed = excluded.last_block_processed, last_block_hash = excluded.last_block_hash""",
                (name, last_block_seen, last_block_processed, last_block_hash),
            )
        return Recorded(added, claimed)

    def _claimed(self, request: NewRequest, lease_until: float) -> StoredRequest:
        """A request just stored as dispatched, as `take` would give it."""
        row = {"state": "dispatched", "owner": self.owner, "lease_until": lease_until, "attempts": 0}
        return StoredRequest(request.request_id, request.commitment, request.input, "dispatched", 0, None, None, row)

    # -- moving requests along ------------------------------------------------------------------

    def take(
        self, state: str, next_state: str, limit: int, deliverable_by: tuple[str, float] | None = None
    ) -> list[StoredRequest]:
        """Claims up to `limit` requests in `state` whose retry time has come and that no other
        replica holds, oldest first, moving them to `next_state`. With `deliverable_by`
        (a transmitter's address, a margin in seconds), only the requests it may deliver now:
        assigned to it or to nobody, or another's whose window ended `margin` ago."""
        now = time.time()
        where, extra = _deliverable(deliverable_by, now)
        sql, params = _CLAIM + where, [state, now, self.owner, now, *extra]
        # Rows another replica is claiming are skipped, not waited for (PostgreSQL); SQLite has
        # one writer at a time, so its claims never overlap.
        sql += " ORDER BY updated_at LIMIT ?" + self._skip_claimed()
        with self._transaction() as db:
            rows = db.execute(sql, (*params, limit)).fetchall()
            if rows:  # one statement for the whole claim: on PostgreSQL each is a round trip
                db.execute(
                    f"UPDATE requests SET owner = ?, lease_until = ? WHERE request_id IN ({_marks(len(rows))})",  # noqa: S608
                    (self.owner, now + self.lease_s, *(row["request_id"] for row in rows)),
                )
            if next_state != state:
                for row in rows:
                    self._transition(db, int(row["request_id"]), next_state)
        claimed = {"state": next_state, "owner": self.owner, "lease_until": now + self.lease_s}
        return [replace(stored, state=next_state, row=stored.row | claimed) for stored in map(self._stored, rows)]

    def _skip_claimed(self) -> str:
        """What makes a claim skip the rows another replica is claiming, rather than wait for
        them (PostgreSQL); SQLite has one writer at a time, so its claims never overlap."""
        return " FOR UPDATE SKIP LOCKED" if self.database.dialect == "postgresql" else ""

    def renew_leases(self, running: Iterable[int]) -> int:
        """Extends this replica's hold on what it is working on: the requests of `running` (with
        a worker now) and its fulfilments in flight. A request it holds but no longer runs (its
        result was lost with the store) is let go, for the leading replica to take back."""
        ids = [str(request_id) for request_id in running]
        until = time.time() + self.lease_s
        renewed = 0
        with self._transaction() as db:
            cur = db.execute(
                "UPDATE requests SET lease_until = ? WHERE owner = ? AND state = 'submitted'", (until, self.owner)
            )
            renewed += int(cur.rowcount)
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                cur = db.execute(
                    "UPDATE requests SET lease_until = ? WHERE owner = ? AND state = 'dispatched'"  # noqa: S608
                    f" AND request_id IN ({_marks(len(chunk))})",
                    (until, self.owner, *chunk),
                )
                renewed += int(cur.rowcount)
        return renewed

    def reclaim_expired(self, limit: int = 1000) -> int:
        """Puts back the requests whose replica stopped holding them (it died, or lost its
        store): a run with a worker goes back to pending, a fulfilment in flight back to
        executed (delivered once on-chain whoever sends it). Returns how many."""
        claim = _EXPIRED_HOLD + self._skip_claimed()
        back = {"dispatched": "pending", "submitted": "executed"}
        with self._transaction() as db:
            rows = db.execute(claim, (*HELD_STATES, time.time(), limit)).fetchall()
            for row in rows:
                db.execute("UPDATE requests SET owner = NULL WHERE request_id = ?", (row["request_id"],))
                detail = f"its replica ({row['owner']}) stopped holding it"
                self._transition(db, int(row["request_id"]), back[row["state"]], detail)
        return len(rows)

    def list_in(
        self, state: str, limit: int = 1000, due_only: bool = False, own_only: bool = False
    ) -> list[StoredRequest]:
        """Requests in `state`, oldest first; with `due_only`, those whose retry time has come;
        with `own_only`, those this replica holds."""
        due = time.time() if due_only else float("inf")
        owner_clause = " AND owner = ?" if own_only else ""
        params: tuple[Any, ...] = (state, due, self.owner, limit) if own_only else (state, due, limit)
        with self._read() as db:
            rows = db.execute(
                "SELECT * FROM requests WHERE state = ? AND next_attempt_at <= ?"  # noqa: S608 - constants
                + owner_clause
                + " ORDER BY updated_at LIMIT ?",
                params,
            ).fetchall()
        return [self._stored(row) for row in rows]

    def due(self, state: str, deliverable_by: tuple[str, float] | None = None) -> tuple[int, float | None]:
        """How many requests in `state` may be taken now (with `deliverable_by` as in `take`),
        and when the oldest of them got there (a cheap look before `take` or `list_in` read
        whole rows)."""
        now = time.time()
        where, extra = _deliverable(deliverable_by, now)
        with self._read() as db:
            count, oldest = db.execute(
                "SELECT COUNT(*), MIN(updated_at) FROM requests WHERE state = ? AND next_attempt_at <= ?" + where,  # noqa: S608 - a fixed condition, its values placeholders
                (state, now, *extra),
            ).fetchone()
        return int(count), oldest

    def expired(self, states: tuple[str, ...], chain_time: int, limit: int = 100) -> list[StoredRequest]:
        """Requests in `states` whose deadline is behind the chain's time and not yet cancelled."""
        marks = _marks(len(states))
        with self._read() as db:
            rows = db.execute(
                f"SELECT * FROM requests WHERE state IN ({marks}) AND deadline < ? AND cancel_tx IS NULL "  # noqa: S608
                "ORDER BY deadline LIMIT ?",  # the IN list is placeholders only
                (*states, chain_time, limit),
            ).fetchall()
        return [self._stored(row) for row in rows]

    def clear_cancel(self, request_id: int) -> None:
        with self._transaction() as db:
            db.execute("UPDATE requests SET cancel_tx = NULL WHERE request_id = ?", (str(request_id),))

    def mark_cancelling(self, request_id: int, tx_hash: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE requests SET cancel_tx = ? WHERE request_id = ?", (tx_hash, str(request_id)))
            if tx_hash:
                self._transition(db, request_id, "failed", f"cancel sent in tx {tx_hash}, to refund the fee")

    def mark_executed(self, results: list[tuple[int, dict[str, Any]]]) -> int:
        """Records signed results (request id, the worker's answer), in one transaction, for the
        requests this replica still holds: one it let go (paused past its lease, say) may be
        another's by now, or delivered. Returns how many it recorded."""
        with self._transaction() as db:
            return sum(self._record_result(db, request_id, result) for request_id, result in results)

    def _record_result(self, db: Connection, request_id: int, result: dict[str, Any]) -> int:
        cur = db.execute(
            """UPDATE requests SET worker = ?, epoch = ?, status = ?, output = ?, error = ?, logs = ?,
            stats = ?, result = ?, owner = NULL WHERE request_id = ? AND state = 'dispatched' AND owner = ?""",
            (
                result["worker"],
                result["signature"]["epoch"],
                result["status"],
                bytes.fromhex(result["output"][2:]),
                result.get("error"),
                json.dumps(result["logs"]),
                json.dumps(result["stats"]),
                json.dumps(result),
                str(request_id),
                self.owner,
            ),
        )
        if cur.rowcount == 0:
            return 0
        self._transition(db, request_id, "executed", f"{result['status']} by {result['worker']}")
        return 1

    def mark_delivering(self, results: list[tuple[int, dict[str, Any]]], tx_hash: str) -> bool:
        """Records signed results together with the fulfil transaction that carries them, in one
        transaction, if this replica still holds every one of them (dispatched); else records
        nothing and returns False. (For results sent as soon as a worker answered.)"""
        until = time.time() + self.lease_s
        try:
            with self._transaction() as db:
                for request_id, result in results:
                    if not self._record_result(db, request_id, result):
                        raise _NotHeld
                    db.execute(
                        "UPDATE requests SET fulfil_tx = ?, owner = ?, lease_until = ? WHERE request_id = ?",
                        (tx_hash, self.owner, until, str(request_id)),
                    )
                    self._transition(db, request_id, "submitted", f"tx {tx_hash}")
        except _NotHeld:
            return False
        return True

    def mark_submitted(self, request_ids: list[int], tx_hash: str) -> None:
        """Records the fulfil transaction of results this replica claimed and still holds (or
        its replacement at a higher fee)."""
        with self._transaction() as db:
            for request_id in request_ids:
                cur = db.execute(
                    """UPDATE requests SET fulfil_tx = ? WHERE request_id = ? AND state IN ('executed', 'submitted')
                    AND (owner = ? OR owner IS NULL)""",
                    (tx_hash, str(request_id), self.owner),
                )
                if cur.rowcount:
                    self._transition(db, request_id, "submitted", f"tx {tx_hash}")

    def mark_fulfilled(self, deliveries: list[Delivery]) -> None:
        """Records deliveries read from the chain, in one transaction."""
        with self._transaction() as db:
            for d in deliveries:
                db.execute(
                    """UPDATE requests SET fulfil_tx = ?, gas_used = ?, callback_succeeded = ?, gas_reimbursed = ?,
                    refunded = ? WHERE request_id = ?""",
                    (
                        d.tx_hash,
                        d.gas_used,
                        d.callback_succeeded,
                        None if d.gas_reimbursed is None else str(d.gas_reimbursed),
                        None if d.refunded is None else str(d.refunded),
                        str(d.request_id),
                    ),
                )
                self._transition(db, d.request_id, "fulfilled", d.detail)

    def move(
        self,
        request_id: int,
        state: str,
        reason: str,
        count_attempt: bool = False,
        retry_at: float = 0.0,
        only_if_held: bool = False,
    ) -> None:
        """Moves a request back (to retry, not before `retry_at`) or to an end state, recording why;
        with `only_if_held`, only while this replica holds it."""
        held = " AND owner = ?" if only_if_held else ""
        with self._transaction() as db:
            # A moved request is no longer held: any replica may take it when it is due.
            cur = db.execute(
                "UPDATE requests SET reason = ?, attempts = attempts + ?, next_attempt_at = ?, owner = NULL"  # noqa: S608
                " WHERE request_id = ?" + held,  # `held` is one of two constants
                (reason, 1 if count_attempt else 0, retry_at, str(request_id), *((self.owner,) if held else ())),
            )
            if cur.rowcount:
                self._transition(db, request_id, state, reason)

    # -- reading --------------------------------------------------------------------------------

    def get(self, request_id: int) -> StoredRequest | None:
        with self._read() as db:
            row = db.execute("SELECT * FROM requests WHERE request_id = ?", (str(request_id),)).fetchone()
        return self._stored(row) if row else None

    def first_transitions(self, request_id: int) -> dict[str, float]:
        """When a request first reached each state."""
        with self._read() as db:
            rows = db.execute(
                "SELECT state, MIN(at) FROM transitions WHERE request_id = ? GROUP BY state", (str(request_id),)
            ).fetchall()
        return {state: float(at) for state, at in rows}

    def transitions(self, request_id: int) -> list[dict[str, Any]]:
        with self._read() as db:
            rows = db.execute(
                "SELECT state, at, detail FROM transitions WHERE request_id = ? ORDER BY id", (str(request_id),)
            ).fetchall()
        return [dict(row) for row in rows]

    def prune(self, older_than: float, limit: int = 1000) -> int:
        """Drops the bulky parts of requests that ended before `older_than` (unix time): their
        input, output, logs, stats, signed result and state transitions. The row itself stays
        (id, agent, state, times, transactions), so counts and the request's outcome remain.
        Returns how many requests it pruned; call it again while it returns `limit`."""
        with self._transaction() as db:
            ids = [
                row[0]
                for row in db.execute(
                    """SELECT request_id FROM requests WHERE state IN ('fulfilled', 'failed', 'cancelled')
                    AND updated_at < ? AND (result IS NOT NULL OR length(input) > 0) LIMIT ?""",
                    (older_than, limit),
                )
            ]
            for request_id in ids:
                db.execute(
                    """UPDATE requests SET input = ?, output = NULL, logs = NULL, stats = NULL, result = NULL,
                    error = NULL WHERE request_id = ?""",
                    (b"", request_id),
                )
                db.execute("DELETE FROM transitions WHERE request_id = ?", (request_id,))
        return len(ids)

    def counts(self) -> dict[str, int]:
        with self._read() as db:
            rows = db.execute("SELECT state, COUNT(*) AS n FROM requests GROUP BY state").fetchall()
        counts = dict.fromkeys(STATES, 0)
        counts.update({row["state"]: row["n"] for row in rows})
        return counts

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """A read for the figures in `bridge.stats` and the dashboard."""
        with self._read() as db:
            return [tuple(row) for row in db.execute(sql, params).fetchall()]

    def page(
        self, state: str | None, agent_id: int | None, consumer: str | None, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        """Requests, newest first, filtered; and how many match in all."""
        where, params = [], []
        for column, value in (("state", state), ("agent_id", agent_id), ("consumer", consumer)):
            if value not in (None, ""):
                where.append(f"{column} = ?")
                params.append(value)
        # The clause is built from the fixed column names above; every value is a parameter.
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._read() as db:
            total = db.execute(f"SELECT COUNT(*) FROM requests {clause}", params).fetchone()[0]  # noqa: S608
            rows = db.execute(
                f"""SELECT request_id, agent_id, consumer, state, status, worker, epoch, requested_at, updated_at
                FROM requests {clause} ORDER BY requested_at DESC, request_id LIMIT ? OFFSET ?""",  # noqa: S608
                [*params, limit, offset],
            ).fetchall()
        return [dict(row) for row in rows], int(total)

    def close(self) -> None:
        self.database.close()

    @staticmethod
    def _stored(row: Any) -> StoredRequest:
        commitment = RequestCommitment(
            agent_id=row["agent_id"],
            code_hash=bytes.fromhex(row["code_hash"][2:]),
            input_hash=keccak256(bytes(row["input"])),
            consumer=row["consumer"],
            fee=int(row["fee"]),
            callback_gas_limit=row["callback_gas_limit"],
            created_at=row["created_at_block"],
            deadline=row["deadline"],
            nonce=row["nonce"],
            price=int(row["price"]),
            operator_fee=int(row["operator_fee"]),
            subscription_id=row["subscription_id"],
            assignee=row["assignee"],
            assigned_until=row["assigned_until"],
            currency=Currency(row["currency"]),
        )
        return StoredRequest(
            request_id=int(row["request_id"]),
            commitment=commitment,
            input=bytes(row["input"]),
            state=row["state"],
            attempts=row["attempts"],
            result=json.loads(row["result"]) if row["result"] else None,
            fulfil_tx=row["fulfil_tx"],
            row=dict(row),
        )


def _migrate_postgresql(database: PostgresDatabase) -> None:
    """Makes the tables at the latest version, or brings older ones forward (`MIGRATIONS`);
    refuses tables of a newer bridge. Replicas starting together take turns."""
    with database.transaction() as db:
        db.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))
        if db.execute("SELECT to_regclass('store_version')").fetchone()[0] is None:
            for statement in _statements(SCHEMA_POSTGRESQL):
                db.execute(statement)
            db.execute("INSERT INTO store_version (version) VALUES (?)", (SCHEMA_VERSION,))
            return
        version = int(db.execute("SELECT version FROM store_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreVersionError(version)
        for script in MIGRATIONS[version:]:
            for statement in _statements(script):
                db.execute(statement)
        db.execute("UPDATE store_version SET version = ?", (SCHEMA_VERSION,))


def _statements(script: str) -> list[str]:
    return [s for s in (part.strip() for part in script.split(";")) if s]
