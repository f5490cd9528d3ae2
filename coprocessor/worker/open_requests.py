"""Which requests the chain holds open, as the node pushes the router's logs.

A worker runs a request only once the chain says it is open, so that the bridge cannot make one
up or change one's fields (its id is the hash of them all). Asking the node (`isOpen`, a round
trip) was a tenth of an idle request's way to its callback, while the node pushes each request
as it is made, and its closing as it is fulfilled or cancelled, before the bridge has even read
the block. This follows those pushes: a request pushed as made and not closed since is open, as
`isOpen` would say on the same node (the router opens a request only with `AgentRequested` and
closes it only with `RequestFulfilled` or `RequestCancelled`). Nothing else is taken from them.

What it has not seen (made before it subscribed, or while it was down, or let go for room) is
not known here, and the worker asks the node as before. A dropped subscription forgets all it
knew, since a closing pushed meanwhile is never pushed again; a log a reorg removed forgets its
request.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from protocol.events import EventDecoder
from protocol.subscription import Subscription

log = logging.getLogger(__name__)

# Requests remembered as open; past this the oldest are let go (and asked of the node instead).
KEPT = 100_000


class OpenRequests:
    """The requests the node pushed as made and not closed, from the time it subscribed."""

    def __init__(self, websocket_url: str, router: str, abi: Iterable[Any], timeout_s: float = 10.0) -> None:
        self._open: OrderedDict[int, None] = OrderedDict()
        self._lock = threading.Lock()
        abi = list(abi)
        self._made = _topic(abi, "AgentRequested")
        self._closed = {_topic(abi, "RequestFulfilled"), _topic(abi, "RequestCancelled")}
        topics = [[self._made, *sorted(self._closed)]]
        self.subscription = Subscription(
            websocket_url,
            ["logs", {"address": router, "topics": topics}],
            self._pushed,
            timeout_s,
            on_down=self._forget,
        )

    def start(self) -> OpenRequests:
        self.subscription.start()
        return self

    def stop(self) -> None:
        self.subscription.stop()

    def __enter__(self) -> OpenRequests:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def known_open(self, request_id: int) -> bool:
        """Whether the node pushed this request as made and not as closed since. False says
        nothing either way: ask the node."""
        with self._lock:
            return request_id in self._open

    def _pushed(self, entry: dict[str, Any]) -> None:
        topics = [str(topic).lower() for topic in entry["topics"]]
        if len(topics) < 2:
            return
        request_id = int(topics[1], 16)
        with self._lock:
            if entry.get("removed") or topics[0] in self._closed:
                self._open.pop(request_id, None)
            elif topics[0] == self._made:
                self._open[request_id] = None
                while len(self._open) > KEPT:
                    self._open.popitem(last=False)

    def _forget(self) -> None:
        with self._lock:
            forgotten = len(self._open)
            self._open.clear()
        if forgotten:
            log.info("the router's log subscription dropped: %d open requests will be asked of the node", forgotten)


def _topic(abi: list[Any], event: str) -> str:
    return "0x" + EventDecoder.of(abi, event).topic.hex()
