"""The chain watcher: finds AgentRequested (and closures by anyone) behind a confirmation depth."""

from __future__ import annotations

import logging
from typing import Any

from web3 import Web3
from web3.contract import Contract

from bridge.heads import Header
from bridge.store import Cursor, NewRequest, RequestStore
from protocol.events import EventDecoder
from protocol.hexes import to_hex
from protocol.results import RequestCommitment

log = logging.getLogger(__name__)

EVENTS = ("AgentRequested", "RequestFulfilled", "RequestCancelled")


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
    ) -> None:
        self.w3 = w3
        self.router = router
        # Decoders from the contract's ABI, so that a changed event cannot be silently missed.
        self._decoders = {d.topic: d for d in (EventDecoder.of(router.abi, name) for name in EVENTS)}
        self.store = store
        self.start_block = start_block
        self.confirmations = confirmations
        self.max_range = max_range
        self.reorg_rewind = reorg_rewind
        self.reorgs = 0
        # The newest head the subscription told of (bridge/heads.py), if any.
        self.header: Header | None = None
        self._timestamps: dict[int, float] = {}

    def poll(self) -> int:
        """Processes the next confirmed range of blocks; returns how many requests were new."""
        cursor = self.store.cursor()
        header = self.header
        if (
            header is not None
            and self.confirmations == 0
            and cursor is not None
            and header.number == cursor.last_block_processed + 1
            and header.parent_hash == (cursor.last_block_hash or "").lower()
        ):
            # The common case: one new block on top of the last one processed. Its header, from
            # the subscription, says that no reorg happened below it (its parent is the block
            # processed last) and when it was made; its logs are asked for by its hash.
            logs = self.w3.eth.get_logs(
                {"address": self.router.address, "topics": [list(self._decoders)], "blockHash": header.hash}  # type: ignore[arg-type, typeddict-item]
            )
            self._timestamps[header.number] = float(header.timestamp)
            return self._record(logs, header.number, header.number, header.number, header.hash)
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
        added = self.store.record_blocks(requests, closed, head, last, last_hash)
        # Timestamps are only asked of blocks not yet processed: older ones are let go.
        self._timestamps = {block: t for block, t in self._timestamps.items() if block > last}
        if added:
            log.info("blocks %d-%d: %d new request(s)", first, last, added)
        return added

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
