"""A batch's runs side by side, their answers handed on in parts as they are ready.

A batch answered whole waits for its slowest run: one agent that takes its full wall time
would hold every other result of its batch, and a hung worker would show only after a whole
batch's time. In parts, answers ready within `PART_EVERY_S` of each other go together (a batch
that runs fast is one part, so the bridge's fulfilments stay as full as before under load), and
a slow run holds the others at most that long. A silence longer than a heartbeat is broken by
an empty part, so that the bridge hears from a live worker whatever its agents' time limits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Executor, Future, wait
from typing import TypeVar

T = TypeVar("T")
A = TypeVar("A")

PART_EVERY_S = 0.05


def in_parts(
    runs: Executor,
    run: Callable[[T], A],
    items: list[T],
    heartbeat_s: float,
    part_every_s: float = PART_EVERY_S,
) -> Generator[list[tuple[int, A]], None, None]:
    """`run` of each item on `runs`, yielded as (place, answer) parts: every answer once, an
    empty part after each `heartbeat_s` with none ready. Closing the generator early cancels
    the runs not begun."""
    places = {runs.submit(run, item): place for place, item in enumerate(items)}
    pending: set[Future[A]] = set(places)
    ready: list[Future[A]] = []
    last_part = time.monotonic()
    try:
        while pending:
            # Everything, or what is ready when the next part is due.
            left = max(0.0, last_part + part_every_s - time.monotonic())
            done, pending = wait(pending, timeout=left, return_when=ALL_COMPLETED)
            ready.extend(done)
            if not ready and pending:  # none yet: the first, whenever it comes
                done, pending = wait(pending, timeout=heartbeat_s, return_when=FIRST_COMPLETED)
                ready.extend(done)
            # Just after a silence the first goes at once; then those ready together.
            if ready and pending and time.monotonic() - last_part < part_every_s:
                continue
            yield [(places[future], future.result()) for future in ready]
            ready, last_part = [], time.monotonic()
    finally:
        for future in pending:
            future.cancel()
