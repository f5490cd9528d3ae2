"""The worker pool: a slow or failing worker costs only its own share (unit tests, no network)."""

from __future__ import annotations

import time

import pytest

from bridge.workers import WorkerPool

URLS = ["http://127.0.0.1:1", "http://127.0.0.1:2"]


def test_each_worker_takes_at_most_its_in_flight_limit() -> None:
    pool = WorkerPool(URLS, max_in_flight=2)
    taken = [pool.acquire() for _ in range(4)]
    assert all(c is not None for c in taken)
    assert sorted(c.url for c in taken if c) == sorted(URLS * 2), "two each"
    assert pool.acquire() is None, "no room left anywhere"
    assert pool.room() == 0


def test_a_hung_worker_holds_only_its_share_and_the_other_takes_the_rest() -> None:
    pool = WorkerPool(URLS, max_in_flight=2)
    hung = [c for c in (pool.acquire(), pool.acquire(), pool.acquire(), pool.acquire()) if c and c.url == URLS[0]]
    assert len(hung) == 2
    healthy = [c for c in (pool.acquire(), pool.acquire()) if c]
    assert healthy == [], "the healthy worker is full with its own two"
    for client in pool.clients:
        if client.url == URLS[1]:
            pool.release(client, ok=True)
            pool.release(client, ok=True)
    again = pool.acquire()
    assert again is not None
    assert again.url == URLS[1], "work moves to the healthy worker at once"


def test_failures_cool_a_worker_down_for_doubling_times_until_a_probe_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = WorkerPool(URLS[:1], max_in_flight=1, cooldown_s=0.05, max_cooldown_s=0.4)
    client = pool.acquire()
    assert client is not None
    pool.release(client, ok=False)
    assert pool.acquire() is None, "cooling down"
    pauses = []
    answers = iter([False, False, True])
    monkeypatch.setattr(client, "healthy", lambda timeout_s: next(answers))
    for _ in range(3):
        state = pool.health()[URLS[0]]
        pauses.append(state["downForS"])
        time.sleep(float(state["downForS"]) + 0.05)
        pool.probe()
    assert pauses[0] < pauses[1] < pauses[2], f"each failure doubles the pause: {pauses}"
    assert pool.health()[URLS[0]]["up"] is True, "back after a probe answered"
    assert pool.acquire() is not None
    assert pool.health()[URLS[0]]["failuresInARow"] == 0


def test_calls_failing_while_a_worker_rests_do_not_lengthen_its_rest() -> None:
    """A hung worker's calls (and co-signings) time out one after another, all begun before it
    was found failing: one failure, not one per call, or it would rest for the cap."""
    pool = WorkerPool(URLS[:1], max_in_flight=4, cooldown_s=1.0, max_cooldown_s=60.0)
    calls = [pool.acquire() for _ in range(4)]
    for client in calls:
        assert client is not None
        pool.release(client, ok=False)
        pool.mark_failed(client)
    health = pool.health()[URLS[0]]
    assert health["failuresInARow"] == 1
    assert float(health["downForS"]) <= 1.0


def test_with_every_worker_down_a_resting_one_is_probed_each_cool_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a long outage a worker's rest has grown long; while no other worker can take the
    work, it is probed every `cooldown_s` anyway, and takes work as soon as it answers."""
    pool = WorkerPool(URLS, max_in_flight=1, cooldown_s=0.05, max_cooldown_s=60.0)
    for client in pool.clients:
        monkeypatch.setattr(client, "healthy", lambda timeout_s: False)
        for _ in range(12):  # twelve failed probes in a row: a rest of the cap
            with pool._lock:
                pool._cool_down(pool._states[client.url])
    assert all(float(h["downForS"]) > 30 for h in pool.health().values())
    back = pool.clients[0]
    monkeypatch.setattr(back, "healthy", lambda timeout_s: True)
    time.sleep(0.06)
    assert pool.probe() == 1
    assert pool.acquire() is back
    assert pool.probe() == 0, "one worker up: the other rests out its time"
