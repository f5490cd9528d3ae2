"""New blocks by subscription: `eth_subscribe("newHeads")` over the node's WebSocket.

A new head wakes the loops that read the chain (the watcher finds its logs, the submitter its
receipts) at once instead of at their next poll. It only wakes them: what they read, they still
read by block range and receipt, so a missed or duplicated notification changes nothing, and
when the subscription is down (a node without WebSocket, a dropped connection) the loops poll
as before while it reconnects with growing delays.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from protocol.subscription import Subscription

# How long a pushed head stands for the chain's: a subscription may stall without closing, and
# then the loops ask the node themselves.
TRUST_PUSHED_HEAD_S = 2.0

T = TypeVar("T")


class Recent(Generic[T]):
    """The newest of what the subscription pushed (a head, or its number), while it is recent
    enough to stand for the chain's; None after that, or before anything came."""

    def __init__(self) -> None:
        self._value: T | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def set(self, value: T) -> None:
        with self._lock:
            self._value, self._at = value, time.monotonic()

    def get(self) -> T | None:
        with self._lock:
            value, at = self._value, self._at
        return value if time.monotonic() - at < TRUST_PUSHED_HEAD_S else None


@dataclass(frozen=True)
class Header:
    number: int
    hash: str
    parent_hash: str
    timestamp: int

    @classmethod
    def from_rpc(cls, raw: dict[str, Any]) -> Header:
        return cls(
            number=int(raw["number"], 16),
            hash=str(raw["hash"]).lower(),
            parent_hash=str(raw["parentHash"]).lower(),
            timestamp=int(raw["timestamp"], 16),
        )


class HeadSubscription(Subscription):
    """`eth_subscribe("newHeads")`, each head handed over as a `Header`."""

    def __init__(self, url: str, on_head: Callable[[Header], None], timeout_s: float = 10.0) -> None:
        super().__init__(url, ["newHeads"], lambda raw: on_head(Header.from_rpc(raw)), timeout_s)
