"""The bridge's store, the same tests on both backends: a SQLite file and a PostgreSQL server of
the test run's own. What one bridge relies on (nothing lost, every move recorded) and what
replicas sharing one server rely on (no request claimed twice, the cursor moved with the
requests it found)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from eth_utils.crypto import keccak
from web3 import Web3

from bridge.store import SCHEMA_VERSION, Delivery, NewRequest, RequestStore, StoreVersionError
from protocol.results import Currency, RequestCommitment


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | Path]:
    if request.param == "sqlite":
        yield tmp_path / "bridge.sqlite"
    else:
        yield request.getfixturevalue("postgres_database")


@pytest.fixture
def store(location: str | Path) -> Iterator[RequestStore]:
    opened = RequestStore(location)
    yield opened
    opened.close()


def new_request(n: int, currency: Currency = Currency.ETH) -> NewRequest:
    payload = b"input %d" % n
    commitment = RequestCommitment(
        agent_id=1 + n % 3,
        code_hash=bytes([n % 256]) * 32,
        input_hash=keccak(payload),
        consumer="0x" + f"{n:040x}",
        fee=2**96 - 1,  # a uint96 that no 64-bit integer column holds
        callback_gas_limit=100_000,
        created_at=10 + n,
        deadline=2**40,
        nonce=n,
        price=3 * 10**14,
        operator_fee=10**14,
        subscription_id=n % 2,
        currency=currency,
    )
    return NewRequest(
        request_id=2**255 + n,  # ids are uint256
        commitment=commitment,
        input=payload,
        request_tx="0x" + f"{n:064x}",
        requested_at=time.time(),
    )


def result_of(n: int) -> dict[str, object]:
    return {
        "worker": "w1",
        "signature": {"epoch": 1},
        "status": "OK",
        "output": "0x" + bytes([n % 256]).hex(),
        "logs": ["ran"],
        "stats": {"elapsed_ms": 1.0},
    }


def test_a_request_reads_back_as_it_was_recorded(store: RequestStore) -> None:
    request = new_request(7, Currency.TOKEN)
    recorded = store.record_blocks([request], [], last_block_seen=20, last_block_processed=20, last_block_hash="0xab")
    assert recorded.added == 1
    stored = store.get(request.request_id)
    assert stored is not None
    assert (stored.commitment, stored.input, stored.state) == (request.commitment, request.input, "pending")
    assert stored.commitment.request_id == request.commitment.request_id
    cursor = store.cursor()
    assert cursor is not None
    assert (cursor.last_block_seen, cursor.last_block_processed, cursor.last_block_hash) == (20, 20, "0xab")


def test_a_request_found_twice_is_recorded_once(store: RequestStore) -> None:
    request = new_request(1)
    assert store.record_blocks([request], [], 5, 5).added == 1
    assert store.record_blocks([request], [], 6, 6).added == 0
    assert store.counts()["pending"] == 1


def test_a_request_moves_through_its_states_and_each_move_is_recorded(store: RequestStore) -> None:
    request = new_request(2)
    store.record_blocks([request], [], 5, 5)
    [taken] = store.take("pending", "dispatched", 10)
    assert taken.request_id == request.request_id
    store.mark_executed([(request.request_id, result_of(2))])
    store.mark_submitted([request.request_id], "0xfeed")
    store.mark_fulfilled(
        [Delivery(request.request_id, "0xfeed", 50_000, True, "delivered", gas_reimbursed=2**90, refunded=0)]
    )
    stored = store.get(request.request_id)
    assert stored is not None
    assert (stored.state, stored.fulfil_tx, stored.row["gas_reimbursed"]) == ("fulfilled", "0xfeed", str(2**90))
    assert stored.result is not None
    assert stored.result["status"] == "OK"
    assert [t["state"] for t in store.transitions(request.request_id)] == [
        "pending",
        "dispatched",
        "executed",
        "submitted",
        "fulfilled",
    ]
    assert set(store.first_transitions(request.request_id)) == {
        "pending",
        "dispatched",
        "executed",
        "submitted",
        "fulfilled",
    }


def test_a_retry_waits_for_its_time(store: RequestStore) -> None:
    request = new_request(3)
    store.record_blocks([request], [], 5, 5)
    store.take("pending", "dispatched", 10)
    store.move(request.request_id, "pending", "no worker answered", count_attempt=True, retry_at=time.time() + 60)
    assert store.take("pending", "dispatched", 10) == []
    assert store.due("pending")[0] == 0
    assert [r.request_id for r in store.list_in("pending")] == [request.request_id]
    stored = store.get(request.request_id)
    assert stored is not None
    assert (stored.attempts, stored.row["reason"]) == (1, "no worker answered")


def test_expired_requests_are_found_and_cancelled_once(store: RequestStore) -> None:
    request = new_request(4)
    store.record_blocks([request], [], 5, 5)
    assert [r.request_id for r in store.expired(("pending",), chain_time=2**41)] == [request.request_id]
    assert store.expired(("pending",), chain_time=2**39) == []
    store.mark_cancelling(request.request_id, "0xcafe")
    assert store.expired(("failed", "pending"), chain_time=2**41) == []
    store.clear_cancel(request.request_id)
    assert [r.request_id for r in store.expired(("failed",), chain_time=2**41)] == [request.request_id]


def test_pruning_keeps_the_outcome_and_drops_the_bulk(store: RequestStore) -> None:
    request = new_request(5)
    store.record_blocks([request], [], 5, 5)
    store.take("pending", "dispatched", 1)
    store.mark_executed([(request.request_id, result_of(5))])
    store.mark_fulfilled([Delivery(request.request_id, "0x1", 1, True, "delivered")])
    assert store.prune(older_than=time.time() + 1) == 1
    stored = store.get(request.request_id)
    assert stored is not None
    assert (stored.state, stored.input, stored.result) == ("fulfilled", b"", None)
    assert store.transitions(request.request_id) == []
    assert store.counts()["fulfilled"] == 1
    assert store.prune(older_than=time.time() + 1) == 0


def test_pages_and_reads_for_the_dashboard(store: RequestStore) -> None:
    store.record_blocks([new_request(n) for n in range(6)], [], 5, 5)
    rows, total = store.page(state="pending", agent_id=1, consumer=None, limit=10, offset=0)
    assert total == 2
    assert {row["agent_id"] for row in rows} == {1}
    usage = store.query("SELECT agent_id, COUNT(*), MAX(requested_at) FROM requests GROUP BY agent_id")
    by_agent = {agent_id: count for agent_id, count, _ in usage}
    assert by_agent == {1: 2, 2: 2, 3: 2}


def test_a_rewind_after_a_reorganisation_forgets_the_hash(store: RequestStore) -> None:
    store.record_blocks([], [], 30, 30, "0x30")
    store.rewind(25)
    cursor = store.cursor()
    assert cursor is not None
    assert (cursor.last_block_processed, cursor.last_block_hash) == (25, None)


def test_concurrent_claims_never_take_a_request_twice(location: str | Path) -> None:
    """Four claimers, each with its own connection (as replicas have), take every request once."""
    setup = RequestStore(location)
    setup.record_blocks([new_request(n) for n in range(200)], [], 5, 5)
    claimed: list[list[int]] = [[] for _ in range(4)]

    def claim(mine: list[int]) -> None:
        own = RequestStore(location)
        try:
            while batch := own.take("pending", "dispatched", 7):
                mine.extend(r.request_id for r in batch)
        finally:
            own.close()

    threads = [threading.Thread(target=claim, args=(mine,)) for mine in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    every = [request_id for mine in claimed for request_id in mine]
    assert len(every) == 200
    assert len(set(every)) == 200, "no request claimed twice"
    assert setup.counts()["dispatched"] == 200
    setup.close()


def test_a_store_from_a_newer_bridge_is_refused(location: str | Path) -> None:
    older = RequestStore(location)
    with older.database.transaction() as db:
        if older.database.dialect == "sqlite":
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        else:
            db.execute("UPDATE store_version SET version = ?", (SCHEMA_VERSION + 1,))
    older.close()
    with pytest.raises(StoreVersionError, match="newer than this bridge"):
        RequestStore(location)


def _run_and_submit(store: RequestStore, request: NewRequest, result: dict[str, object], tx_hash: str) -> None:
    """`store`'s replica has a worker run `request` (pending), records `result`, and sends its
    fulfilment as `tx_hash`."""
    store.take("pending", "dispatched", 1)
    store.mark_executed([(request.request_id, result)])
    store.take("executed", "executed", 1)
    store.mark_submitted([request.request_id], tx_hash)


def _expire_holds(store: RequestStore) -> None:
    """As if the replicas holding requests stopped renewing their holds a lease ago."""
    with store.database.transaction() as db:
        db.execute("UPDATE requests SET lease_until = ?", (time.time() - 1,))


def test_a_replica_never_takes_what_another_holds_until_its_hold_runs_out(location: str | Path) -> None:
    first, second = RequestStore(location, owner="0xa"), RequestStore(location, owner="0xb")
    first.record_blocks([new_request(n) for n in range(3)], [], 5, 5)
    claimed = first.take("pending", "dispatched", 10)
    assert {r.row["owner"] for r in claimed} == {"0xa"}
    first.mark_executed([(claimed[0].request_id, result_of(0))])
    # What the first executed is anyone's to submit; what it still runs is its own.
    assert [r.request_id for r in second.take("executed", "executed", 10)] == [claimed[0].request_id]
    assert second.list_in("dispatched", own_only=True) == []
    assert len(first.list_in("dispatched", own_only=True)) == 2
    assert first.renew_leases(r.request_id for r in claimed[1:]) == 2
    assert second.reclaim_expired() == 0, "a live hold is not taken back"

    _expire_holds(first)  # the first replica died
    assert second.reclaim_expired() == 2
    assert {r.request_id for r in second.take("pending", "dispatched", 10)} == {r.request_id for r in claimed[1:]}
    history = second.transitions(claimed[1].request_id)
    assert history[-2]["detail"] == "its replica (0xa) stopped holding it"
    first.close()
    second.close()


def test_a_fulfilment_in_flight_of_a_dead_replica_goes_back_to_be_sent_again(location: str | Path) -> None:
    first, second = RequestStore(location, owner="0xa"), RequestStore(location, owner="0xb")
    request = new_request(9)
    first.record_blocks([request], [], 5, 5)
    _run_and_submit(first, request, result_of(9), "0xdead")
    assert second.take("executed", "executed", 10) == []
    _expire_holds(first)
    assert second.reclaim_expired() == 1
    [again] = second.take("executed", "executed", 10)
    assert (again.request_id, again.state) == (request.request_id, "executed")
    first.close()
    second.close()


def test_requests_the_dispatcher_takes_as_they_are_found_are_stored_held_by_it(store: RequestStore) -> None:
    """The new requests a block brings that the dispatcher claims are stored as dispatched,
    held by this replica, in the block's transaction; the rest are pending, and a request
    stored before (a block processed again) is not claimed twice."""
    taken, left = new_request(30), new_request(31)
    recorded = store.record_blocks([taken, left], [], 5, 5, claim={taken.request_id})
    assert recorded.added == 2
    assert [r.request_id for r in recorded.claimed] == [taken.request_id]
    assert (recorded.claimed[0].state, recorded.claimed[0].input) == ("dispatched", taken.input)
    stored = store.get(taken.request_id)
    assert stored is not None
    assert (stored.state, stored.row["owner"]) == ("dispatched", store.owner)
    assert stored.row["lease_until"] > time.time()
    assert [t["state"] for t in store.transitions(taken.request_id)] == ["pending", "dispatched"]
    assert [r.request_id for r in store.list_in("pending")] == [left.request_id]

    again = store.record_blocks([taken, left], [], 5, 5, claim={taken.request_id, left.request_id})
    assert (again.added, again.claimed) == (0, [])
    assert [r.request_id for r in store.list_in("pending")] == [left.request_id]


def test_a_result_sent_at_once_is_recorded_with_its_transaction_or_not_at_all(location: str | Path) -> None:
    """A lone result goes out as soon as its worker answers: executed and submitted, with the
    transaction's hash and this replica's hold, in one transaction; if the replica no longer
    holds every request of it, nothing is recorded (and nothing is to be sent)."""
    first, second = RequestStore(location, owner="0xa"), RequestStore(location, owner="0xb")
    held, lost = new_request(20), new_request(21)
    first.record_blocks([held, lost], [], 5, 5)
    assert len(first.take("pending", "dispatched", 10)) == 2
    assert first.mark_delivering([(held.request_id, result_of(20))], "0xsent")
    stored = first.get(held.request_id)
    assert stored is not None
    assert (stored.state, stored.fulfil_tx, stored.row["owner"], stored.result) == (
        "submitted",
        "0xsent",
        "0xa",
        result_of(20),
    )
    assert [t["state"] for t in first.transitions(held.request_id)][-2:] == ["executed", "submitted"]
    assert first.renew_leases([]) == 1, "its hold is renewed while the transaction is in flight"

    _expire_holds(first)  # the first replica paused past its lease; the second took the request back
    assert second.reclaim_expired() == 2
    assert not first.mark_delivering([(lost.request_id, result_of(21))], "0xlate")
    stored = first.get(lost.request_id)
    assert stored is not None
    assert (stored.state, stored.fulfil_tx, stored.result) == ("pending", None, None), "nothing of it was recorded"
    first.close()
    second.close()


def test_one_replica_leads_at_a_time_and_another_takes_over_when_it_dies(location: str | Path) -> None:
    from bridge.leadership import Leadership

    RequestStore(location).close()
    first, second = Leadership(location), Leadership(location)
    if not first.shared:  # SQLite: one bridge, which always leads
        assert first.held()
        assert second.held()
        return
    assert first.held()
    assert not second.held(), "the lock is the first's"
    assert first.held(), "and stays its own"
    first.close()  # its connection ends, as when its process is killed
    assert second.held()
    second.close()


def test_a_transmitter_claims_only_the_results_it_may_deliver_now(store: RequestStore) -> None:
    me, other = "0x" + "aa" * 20, "0x" + "bb" * 20
    now = int(time.time())

    def assigned(n: int, assignee: str, until: int) -> NewRequest:
        request = new_request(n)
        commitment = replace(request.commitment, assignee=Web3.to_checksum_address(assignee), assigned_until=until)
        return replace(request, commitment=commitment)

    requests = [
        new_request(0),  # assigned to nobody
        assigned(1, me, now + 60),
        assigned(2, other, now + 60),  # the other's window is open
        assigned(3, other, now - 60),  # the other's window ended: it missed it
    ]
    store.record_blocks(requests, [], 5, 5)
    store.take("pending", "dispatched", 10)
    store.mark_executed([(r.request_id, result_of(i)) for i, r in enumerate(requests)])
    claimed = store.take("executed", "executed", 10, deliverable_by=(me, 1.0))
    assert {r.request_id for r in claimed} == {requests[0].request_id, requests[1].request_id, requests[3].request_id}


def test_a_hold_nothing_runs_any_more_is_let_go(location: str | Path) -> None:
    """A replica renews the holds of what it runs now; a request whose result it lost (the store
    away when the worker answered) stops being renewed, and the leader takes it back."""
    first = RequestStore(location, owner="0xa", lease_s=1.0)
    second = RequestStore(location, owner="0xb")
    first.record_blocks([new_request(n) for n in range(2)], [], 5, 5)
    running, lost = first.take("pending", "dispatched", 2)
    time.sleep(1.2)
    assert first.renew_leases([running.request_id]) == 1
    assert second.reclaim_expired() == 1
    [back] = second.take("pending", "dispatched", 10)
    assert back.request_id == lost.request_id
    first.close()
    second.close()


def test_a_misspelt_store_url_is_refused_and_not_taken_for_a_file(tmp_path: Path) -> None:
    for url in ("postgresq://enclave:s3cret@127.0.0.1:1/x", "postgresql+psycopg://enclave:s3cret@127.0.0.1:1/x"):
        with pytest.raises(ValueError, match="begins with postgresql://") as refused:
            RequestStore(url)
        assert "s3cret" not in str(refused.value)
    assert not any(Path.cwd().glob("postgres*:")), "no file named after the URL"


def test_a_hung_leader_loses_the_lead(postgres_database: str) -> None:
    """A leader that stops asking (stopped, or cut off behind a connection that stays open) is
    ended by the server after its idle timeout, and another replica takes the lead."""
    from bridge.leadership import Leadership

    RequestStore(postgres_database).close()
    hung, other = Leadership(postgres_database, idle_timeout_ms=1000), Leadership(postgres_database)
    assert hung.held()
    assert not other.held()
    time.sleep(2.0)  # the hung one says nothing
    assert other.held(), "the lead passed on"
    assert not hung.held(), "and the hung one knows it lost it when it asks again"
    hung.close()
    other.close()


def test_a_replica_that_let_a_request_go_records_nothing_for_it(location: str | Path) -> None:
    """Paused past its lease, a replica comes back with a result for a request another replica
    took back and ran: its late result and transaction change nothing."""
    paused, other = RequestStore(location, owner="0xa"), RequestStore(location, owner="0xb")
    request = new_request(11)
    paused.record_blocks([request], [], 5, 5)
    paused.take("pending", "dispatched", 1)
    _expire_holds(paused)
    assert other.reclaim_expired() == 1
    _run_and_submit(other, request, result_of(1), "0xother")

    assert paused.mark_executed([(request.request_id, result_of(2))]) == 0
    paused.mark_submitted([request.request_id], "0xlate")
    stored = other.get(request.request_id)
    assert stored is not None
    assert (stored.state, stored.fulfil_tx) == ("submitted", "0xother")
    assert stored.result is not None
    assert stored.result["output"] == result_of(1)["output"]
    paused.close()
    other.close()


def test_a_replaced_fulfil_transaction_is_recorded(store: RequestStore) -> None:
    request = new_request(12)
    store.record_blocks([request], [], 5, 5)
    _run_and_submit(store, request, result_of(12), "0xfirst")
    store.mark_submitted([request.request_id], "0xdearer")  # sent again at a higher fee
    stored = store.get(request.request_id)
    assert stored is not None
    assert (stored.state, stored.fulfil_tx) == ("submitted", "0xdearer")
