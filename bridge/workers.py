"""The workers the bridge dispatches to, each costing only its own share when it is slow.

Every worker has its own in-flight limit, so a hung one holds at most that many requests (for
as long as their execute timeout) while the others take the rest. A worker that fails cools down
for a time that doubles with each failure in a row (up to a cap); it is then probed with its
health check, a short request of its own, and takes work again only once it answers. Calls that
fail while it already rests (made before it was found failing) do not lengthen its rest, and
while no worker at all is up, every resting one is probed each `cooldown_s`: a worker that comes
back then takes work within a second, not at the end of a rest grown long during the outage.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass

from bridge.worker_client import WorkerClient


@dataclass
class _State:
    client: WorkerClient
    in_flight: int = 0
    failures: int = 0  # in a row
    down_until: float = 0.0  # monotonic; 0: healthy
    probing: bool = False
    probed_at: float = 0.0  # monotonic


class WorkerPool:
    def __init__(
        self,
        urls: list[str],
        timeout_s: float = 30.0,
        token: str = "",
        max_in_flight: int = 2,
        cooldown_s: float = 1.0,
        max_cooldown_s: float = 60.0,
        probe_timeout_s: float = 1.0,
        chain_id: int | None = None,
    ) -> None:
        self.clients = [WorkerClient(url, timeout=timeout_s, token=token, chain_id=chain_id) for url in urls]
        self.max_in_flight = max_in_flight
        self.cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self.probe_timeout_s = probe_timeout_s
        self._states = {c.url: _State(c) for c in self.clients}
        self._order = itertools.cycle(range(len(self.clients)))
        self._lock = threading.Lock()

    # -- dispatching ----------------------------------------------------------------------------

    def room(self) -> int:
        """How many more requests the healthy workers can take now."""
        with self._lock:
            return sum(self.max_in_flight - s.in_flight for s in self._states.values() if self._up(s))

    def acquire(self, exclude: set[str] | None = None) -> WorkerClient | None:
        """The next healthy worker with room (round robin), counted as busy until `release`."""
        with self._lock:
            start = next(self._order)
            rotated = self.clients[start:] + self.clients[:start]
            for client in rotated:
                state = self._states[client.url]
                if client.url in (exclude or set()) or not self._up(state):
                    continue
                if state.in_flight < self.max_in_flight:
                    state.in_flight += 1
                    return client
        return None

    def release(self, client: WorkerClient, ok: bool) -> None:
        with self._lock:
            state = self._states[client.url]
            state.in_flight -= 1
            if ok:
                state.failures, state.down_until = 0, 0.0
            else:
                self._failed(state)

    def candidates(self) -> list[WorkerClient]:
        """Every worker, the healthy ones first (for a batch co-signature)."""
        with self._lock:
            up = [c for c in self.clients if self._up(self._states[c.url])]
        return up + [c for c in self.clients if c not in up]

    def mark_failed(self, client: WorkerClient) -> None:
        with self._lock:
            self._failed(self._states[client.url])

    def mark_ok(self, client: WorkerClient) -> None:
        with self._lock:
            state = self._states[client.url]
            state.failures, state.down_until = 0, 0.0

    # -- health ---------------------------------------------------------------------------------

    def probe(self) -> int:
        """Probes each worker whose cool-down is over; returns how many came back."""
        now = time.monotonic()
        with self._lock:
            none_up = not any(self._up(s) for s in self._states.values())
            due = [
                s
                for s in self._states.values()
                if s.down_until
                and not s.probing
                and (now >= s.down_until or (none_up and now - s.probed_at >= self.cooldown_s))
            ]
            for state in due:
                state.probing, state.probed_at = True, now
        back = 0
        for state in due:
            healthy = state.client.healthy(self.probe_timeout_s)
            with self._lock:
                state.probing = False
                if healthy:
                    state.failures, state.down_until = 0, 0.0
                    back += 1
                else:
                    self._cool_down(state)
        return back

    def health(self) -> dict[str, dict[str, float | int | bool]]:
        """For status and metrics: each worker's in-flight count, failures in a row and state."""
        now = time.monotonic()
        with self._lock:
            return {
                url: {
                    "up": self._up(s),
                    "inFlight": s.in_flight,
                    "failuresInARow": s.failures,
                    "downForS": round(max(0.0, s.down_until - now), 3) if s.down_until else 0.0,
                }
                for url, s in self._states.items()
            }

    @staticmethod
    def _up(state: _State) -> bool:
        return state.down_until == 0.0

    def _failed(self, state: _State) -> None:
        """A call failed: a worker up rests; one resting already (the call began before it was
        found failing) rests no longer for it. Only failed probes lengthen a rest."""
        if self._up(state):
            self._cool_down(state)

    def _cool_down(self, state: _State) -> None:
        state.failures += 1
        pause = min(self.max_cooldown_s, self.cooldown_s * 2.0 ** (state.failures - 1))
        state.down_until = time.monotonic() + pause
