"""The chain watcher: finds AgentRequested (and closures by anyone) behind a confirmation depth."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from web3 import Web3
from web3.contract import Contract

from bridge.heads import Header, Recent
from bridge.store import Cursor, NewRequest, RequestStore, StoredRequest
from protocol.events import EventDecoder
from protocol.hexes import from_hex, to_hex
from protocol.jsonrpc import JsonRpc
from protocol.results import RequestCommitment

log = logging.getLogger(__name__)

EVENTS = ("AgentRequested", "RequestFulfilled", "RequestCancelled")
# Pushed blocks read in one poll at most, so that the loop looks at its stop flag in between.
MAX_PUSHED_PER_POLL = 100


class ChainWatcher:
    def __init__(
        self,
        w3: Web3,
        router: Contract,
        store: RequestStore,
        start_block: int,
        confirmations: int = 0,
        max_range: int = 2_000,
        reorg_rewind: int = 64,
        rpc_timeout_s: float = 10.0,
    ) -> None:
        self.w3 = w3
        # The next block's logs, on the path of every request, without web3's formatting.
        self._rpc = JsonRpc.of(w3, rpc_timeout_s)
        self.router = router
        # Decoders from the contract's ABI, so that a changed event cannot be silently missed.
        self._decoders = {d.topic: d for d in (EventDecoder.of(router.abi, name) for name in EVENTS)}
        self._topics = [[to_hex(topic) for topic in self._decoders]]
        self.store = store
        self.start_block = start_block
        self.confirmations = confirmations
        self.max_range = max_range
        self.reorg_rewind = reorg_rewind
        self.reorgs = 0
        # The heads the subscription told of (bridge/heads.py) and not yet processed, by number
        # (a block pushed while the one before it was being read waits its turn here), and the
        # newest of them.
        self._heads: dict[int, Header] = {}
        self._newest: Recent[Header] = Recent()
        self._heads_lock = threading.Lock()
        self._timestamps: dict[int, float] = {}
        # The dispatcher's: which new requests it takes as they are stored, and what it is given
        # of them once stored (`Dispatcher.claim_new`, `Dispatcher.dispatch_claimed`).
        self.claim_new: Callable[[list[NewRequest]], list[NewRequest]] = lambda requests: []
        self.dispatch_claimed: Callable[[list[StoredRequest]], None] = lambda batch: None

    def new_head(self, header: Header) -> None:
        with self._heads_lock:
            self._heads[header.number] = header  # a reorg's block replaces the one it orphaned
        self._newest.set(header)

    def poll(self) -> int:
        """Processes the next confirmed range of blocks; returns how many requests were new."""
        cursor = self.store.cursor()
        header = self._next_head(cursor)
        if header is not None:
            # The common case: the blocks after the last one processed, each pushed. A header
            # from the subscription says that no reorg happened below it (its parent is the
            # block processed before) and when it was made; its logs are asked for by its hash.
            # Every pushed block is read now, one after the other: one left for the next wake
            # waited for the block after it, or for the poll interval.
            added = 0
            for _ in range(MAX_PUSHED_PER_POLL):
                added += self._read_pushed(header)
                header = self._next_head(Cursor(header.number, header.number, header.hash))
                if header is None:
                    break
            return added
        if self._up_to_date(cursor):
            # The head just pushed is the block processed last: nothing new to read, and asking
            # the node (for a reorg, the head, the logs) would only slow the next block's turn.
            return 0
        if cursor is not None and cursor.last_block_hash is not None and self._reorganised(cursor):
            return 0
        head = self.w3.eth.block_number
        safe = head - self.confirmations
        first = cursor.last_block_processed + 1 if cursor else self.start_block
        if safe < first:
            return 0
        last = min(safe, first + self.max_range - 1)
        logs = self.w3.eth.get_logs(
            {
                "address": self.router.address,
                "topics": [list(self._decoders)],  # type: ignore[arg-type]
                "fromBlock": first,
                "toBlock": last,
            }
        )
        last_hash = to_hex(bytes(self.w3.eth.get_block(last)["hash"]))
        return self._record(logs, head, first, last, last_hash)

    def _read_pushed(self, header: Header) -> int:
        found = self._rpc.call(
            "eth_getLogs", [{"address": self.router.address, "topics": self._topics, "blockHash": header.hash}]
        )
        self._timestamps[header.number] = float(header.timestamp)
        return self._record(
            [_log_of(entry) for entry in found or []], header.number, header.number, header.number, header.hash
        )

    def _next_head(self, cursor: Cursor | None) -> Header | None:
        """The pushed head of the block after the cursor's, if it sits on the block processed
        last (with confirmations, blocks are read by range behind the head instead)."""
        if self.confirmations != 0 or cursor is None or cursor.last_block_hash is None:
            return None
        with self._heads_lock:
            for number in [n for n in self._heads if n <= cursor.last_block_processed]:
                del self._heads[number]
            header = self._heads.get(cursor.last_block_processed + 1)
        return header if header is not None and header.parent_hash == cursor.last_block_hash.lower() else None

    def _up_to_date(self, cursor: Cursor | None) -> bool:
        """Whether the newest pushed head, recent enough to stand for the chain's, is the block
        processed last."""
        header = self._newest.get()
        return header is not None and cursor is not None and header.hash == (cursor.last_block_hash or "").lower()

    def _record(self, logs: Any, head: int, first: int, last: int, last_hash: str) -> int:
        """Stores the requests and closures that `logs` (blocks `first` to `last`) tell of."""
        requests: list[NewRequest] = []
        closed: list[tuple[int, str, str]] = []
        for entry in logs:
            decoder = self._decoders[bytes(entry["topics"][0])]
            name, args = decoder.name, decoder.decode(entry["topics"], entry["data"])
            tx_hash = to_hex(bytes(entry["transactionHash"]))
            if name == "AgentRequested":
                block = int(entry["blockNumber"])
                requests.append(
                    NewRequest(
                        request_id=int(args["requestId"]),
                        commitment=RequestCommitment.from_event(args, block),
                        input=bytes(args["input"]),
                        request_tx=tx_hash,
                        requested_at=self._timestamp(block),
                    )
                )
            else:
                state = "fulfilled" if name == "RequestFulfilled" else "cancelled"
                closed.append((int(args["requestId"]), state, tx_hash))
        chosen = self.claim_new(requests)
        recorded = None
        try:
            recorded = self.store.record_blocks(
                requests, closed, head, last, last_hash, claim={r.request_id for r in chosen}
            )
        finally:
            if chosen:  # with whatever the store claimed of them, nothing if it failed
                self.dispatch_claimed(recorded.claimed if recorded is not None else [])
        # Timestamps are only asked of blocks not yet processed: older ones are let go.
        self._timestamps = {block: t for block, t in self._timestamps.items() if block > last}
        if recorded.added:
            log.info("blocks %d-%d: %d new request(s)", first, last, recorded.added)
        return recorded.added

    def close(self) -> None:
        self._rpc.close()

    def _reorganised(self, cursor: Cursor) -> bool:
        """Whether the last processed block was replaced; if so, rewinds to process again.

        Rescanning is safe: a request already stored is not stored twice. A request whose block
        was orphaned stays in the store; its fulfilment is refused on-chain (UNKNOWN_REQUEST) and
        recorded as failed, while the request transaction, if mined again, opens a new request.
        """
        block = self.w3.eth.get_block(cursor.last_block_processed)
        if to_hex(bytes(block["hash"])) == cursor.last_block_hash:
            return False
        rewind_to = max(self.start_block - 1, cursor.last_block_processed - self.reorg_rewind)
        log.warning(
            "block %d was replaced (a reorg): processing again from block %d",
            cursor.last_block_processed,
            rewind_to + 1,
        )
        self.store.rewind(rewind_to)
        self.reorgs += 1
        return True

    def _timestamp(self, block: int) -> float:
        if block not in self._timestamps:
            self._timestamps[block] = float(self.w3.eth.get_block(block)["timestamp"])
        return self._timestamps[block]


def _log_of(entry: dict[str, Any]) -> dict[str, Any]:
    """A log as the node sends it (hex strings), with the fields `_record` reads as web3 gives them."""
    return {
        "topics": [from_hex(topic) for topic in entry["topics"]],
        "data": from_hex(entry["data"]),
        "blockNumber": int(entry["blockNumber"], 16),
        "transactionHash": from_hex(entry["transactionHash"]),
    }
