"""Retention: the bulky parts of ended requests go, their rows and counts stay."""

from __future__ import annotations

import time
from pathlib import Path

from bridge.store import Delivery, NewRequest, RequestStore
from tests import samples


def _request(nonce: int) -> NewRequest:
    payload = b"input %d" % nonce
    commitment = samples.commitment(payload, nonce=nonce)
    return NewRequest(commitment.request_id, commitment, payload, "0xab", time.time())


def test_pruning_drops_the_bulk_of_ended_requests_and_keeps_their_rows_and_counts(tmp_path: Path) -> None:
    store = RequestStore(tmp_path / "bridge.sqlite")
    requests = [_request(n) for n in range(4)]
    store.record_blocks(requests, [], 1, 1, "0x" + "00" * 32)
    ended, open_one = requests[:3], requests[3]
    store.take("pending", "dispatched", len(requests))  # all claimed; the open one stays with its worker
    for request in ended:
        result = {
            "worker": "w",
            "signature": {"epoch": 1},
            "status": "OK",
            "output": "0x" + "ab" * 2048,
            "error": None,
            "logs": ["a log line"] * 50,
            "stats": {},
            "requestId": str(request.request_id),
        }
        store.mark_executed([(request.request_id, result)])
        store.mark_fulfilled([Delivery(request.request_id, "0xcd", 50_000, True, "fulfilled")])
    counts = store.counts()

    assert store.prune(time.time() - 3600) == 0, "nothing older than the retention yet"
    assert store.prune(time.time() + 1) == 3
    assert store.counts() == counts, "counts stay right"
    for request in ended:
        stored = store.get(request.request_id)
        assert stored is not None
        assert (stored.state, stored.input, stored.result, stored.row["fulfil_tx"]) == ("fulfilled", b"", None, "0xcd")
        assert store.transitions(request.request_id) == []
    kept = store.get(open_one.request_id)
    assert kept is not None
    assert kept.input == open_one.input, "open requests are never pruned"
    assert store.prune(time.time() + 1) == 0, "pruned once"
