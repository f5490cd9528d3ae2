"""Figures about requests, computed from the store: the one source of truth for both the
dashboard's overview and the bridge's Prometheus metrics."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bridge.store import RequestStore

# (name, from state, to state) of the pipeline's stages, first occurrence of each state.
STAGES = (
    ("dispatch", "pending", "dispatched"),
    ("execute", "dispatched", "executed"),
    ("submit", "executed", "submitted"),
    ("mine", "submitted", "fulfilled"),
    ("total", "pending", "fulfilled"),
)


# Requests that ended without an OK answer.
FAILED = "state = 'failed' OR (state = 'fulfilled' AND status != 'OK')"


@dataclass(frozen=True)
class Window:
    seconds: int
    fulfilled: int
    failed: int
    per_minute: float
    p50_ms: float | None
    p95_ms: float | None


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def first_transitions(store: RequestStore, since: float) -> dict[str, dict[str, float]]:
    """For requests that reached an end state since `since`: the first time of each state."""
    rows = store.query(
        """SELECT t.request_id, t.state, MIN(t.at) FROM transitions t
        JOIN requests r ON r.request_id = t.request_id
        WHERE r.state IN ('fulfilled', 'failed', 'cancelled') AND r.updated_at >= ?
        GROUP BY t.request_id, t.state""",
        (since,),
    )
    firsts: dict[str, dict[str, float]] = {}
    for request_id, state, at in rows:
        firsts.setdefault(request_id, {})[state] = at
    return firsts


def stage_times(states: dict[str, float]) -> dict[str, float]:
    """Seconds each stage of one request took, from the first time it reached each state."""
    return {name: states[end] - states[start] for name, start, end in STAGES if start in states and end in states}


def stage_durations(store: RequestStore, since: float) -> dict[str, list[float]]:
    """Seconds each stage took, for the requests fulfilled since `since`."""
    out: dict[str, list[float]] = {name: [] for name, _, _ in STAGES}
    for states in first_transitions(store, since).values():
        for name, seconds in stage_times(states).items():
            out[name].append(seconds)
    return out


def window(store: RequestStore, seconds: int, now: float | None = None) -> Window:
    now = now or time.time()
    since = now - seconds
    totals = stage_durations(store, since)["total"]
    # Failed: ended without an OK answer, in the bridge (failed) or on-chain (delivered with an
    # error status), as the recent failures list them.
    (failed,) = store.query(
        f"SELECT COUNT(*) FROM requests WHERE ({FAILED}) AND updated_at >= ?",  # noqa: S608 - a constant
        (since,),
    )[0]
    return Window(
        seconds=seconds,
        fulfilled=len(totals),
        failed=int(failed),
        per_minute=len(totals) / (seconds / 60),
        p50_ms=_ms(percentile(totals, 0.5)),
        p95_ms=_ms(percentile(totals, 0.95)),
    )


def per_minute(store: RequestStore, minutes: int = 60, now: float | None = None) -> list[dict[str, Any]]:
    """Fulfilled requests and their median latency in each of the last `minutes` minutes."""
    now = now or time.time()
    start = (int(now) // 60 - minutes + 1) * 60
    buckets: list[list[float]] = [[] for _ in range(minutes)]
    for states in first_transitions(store, start).values():
        if "fulfilled" in states and "pending" in states:
            index = int((states["fulfilled"] - start) // 60)
            if 0 <= index < minutes:
                buckets[index].append(states["fulfilled"] - states["pending"])
    return [
        {"minute": start + 60 * i, "fulfilled": len(b), "p50_ms": _ms(percentile(b, 0.5))}
        for i, b in enumerate(buckets)
    ]


def recent_failures(store: RequestStore, limit: int = 10) -> list[dict[str, Any]]:
    rows = store.query(
        "SELECT request_id, agent_id, status, reason, error, updated_at FROM requests "  # noqa: S608 - a constant
        f"WHERE {FAILED} ORDER BY updated_at DESC LIMIT ?",
        (limit,),
    )
    keys = ("request_id", "agent_id", "status", "reason", "error", "updated_at")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)
