"""The one sender of the bridge account's transactions: several in flight, none waited on.

Transactions go out at consecutive nonces that the sender counts itself (the node is asked again
only after a send failed), up to `max_in_flight` at once. Nothing blocks on a receipt: `poll`
reads the receipts of what is in flight once per new block and hands each to its owner. A
transaction still unmined after `replace_after_s` is sent again at the same nonce with fees a
quarter higher (nodes ask for at least a tenth more to replace one), up to `max_bumps` times; a
nonce that the chain used for none of this sender's versions is reported lost, so that its owner
sends the work again.

Every version's hash is handed to its owner before it is sent (`before_send`, `on_replaced`), so
a bridge killed mid-send finds the transaction on restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import coincurve
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import TransactionNotFound, Web3Exception, Web3RPCError

from bridge.heads import Recent
from protocol.hexes import from_hex, to_hex
from protocol.jsonrpc import JsonRpc, JsonRpcError
from protocol.transactions import is_plain_dynamic_fee, sign_dynamic_fee

log = logging.getLogger(__name__)

FEE_BUMP_NUMERATOR, FEE_BUMP_DENOMINATOR = 5, 4
FEE_FIELDS = ("maxFeePerGas", "maxPriorityFeePerGas", "gasPrice")
FEE_QUOTE_S = 1.0


def _ignore(_: str) -> None:
    pass


@dataclass(frozen=True)
class Log:
    address: str
    topics: list[bytes]
    data: bytes


@dataclass(frozen=True)
class Receipt:
    """What the bridge reads of a receipt, parsed from the node's JSON without web3's
    formatters (on the submitter's hot path they cost more than the request itself)."""

    tx_hash: str
    status: int
    block_number: int
    gas_used: int
    logs: list[Log]

    @classmethod
    def from_rpc(cls, raw: dict[str, Any]) -> Receipt:
        return cls(
            tx_hash=str(raw["transactionHash"]),
            status=int(raw["status"], 16),
            block_number=int(raw["blockNumber"], 16),
            gas_used=int(raw["gasUsed"], 16),
            logs=[
                Log(str(entry["address"]), [from_hex(t) for t in entry["topics"]], from_hex(entry["data"]))
                for entry in raw["logs"]
            ],
        )


def fetch_receipt(rpc: JsonRpc, tx_hash: str) -> Receipt | None:
    """The receipt of a mined transaction, or None while it is not mined (or unknown)."""
    try:
        raw = rpc.call("eth_getTransactionReceipt", [tx_hash])
    except JsonRpcError as err:
        raise Web3RPCError(str(err)) from err
    return Receipt.from_rpc(raw) if raw else None


@dataclass
class Sent:
    """A transaction in flight: the newest version's fields, and every hash it was sent under."""

    nonce: int
    tx: dict[str, Any]
    hashes: list[str]
    on_mined: Callable[[Receipt], None]
    on_lost: Callable[[str], None]
    on_replaced: Callable[[str], None]
    sent_at: float = field(default_factory=time.monotonic)
    bumps: int = 0


# What sending a transaction raises when the node refused it or was not reached.
SEND_ERRORS = (Web3Exception, ValueError, OSError)


class Sender:
    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        max_in_flight: int = 4,
        replace_after_s: float = 20.0,
        max_bumps: int = 8,
        rpc_timeout_s: float = 10.0,
    ) -> None:
        self.w3 = w3
        # The calls of every fulfilment (send, receipt, nonce), without web3's middleware.
        self.rpc = JsonRpc.of(w3, rpc_timeout_s)
        self.account = account
        self._key = coincurve.PrivateKey(bytes(account.key))
        self._known_chain_id: int | None = None
        self._pushed: Recent[int] = Recent()
        self.max_in_flight = max_in_flight
        self.replace_after_s = replace_after_s
        self.max_bumps = max_bumps
        self.replacements = 0
        self._in_flight: dict[int, Sent] = {}
        self._next_nonce: int | None = None
        self._checked_head = -1
        self._quote: dict[str, int] = {}
        self._fees_until = 0.0
        # The submitter's thread and a dispatcher's (`Submitter.deliver_now`) both send.
        self._lock = threading.RLock()

    def room(self) -> int:
        return self.max_in_flight - len(self._in_flight)

    def in_flight(self) -> int:
        return len(self._in_flight)

    def send(
        self,
        to: str,
        data: bytes,
        gas: int,
        before_send: Callable[[str], None],
        on_mined: Callable[[Receipt], None],
        on_lost: Callable[[str], None] = _ignore,
        on_replaced: Callable[[str], None] = _ignore,
    ) -> str:
        """Signs a call of `to` with `data` at the next nonce, tells `before_send` its hash, and
        sends it; raises if the node refused it (nothing is then in flight, and the nonce is
        asked of the node again next time)."""
        with self._lock:
            nonce = self._nonce()
            tx: dict[str, Any] = {
                "chainId": self._chain_id(),
                "nonce": nonce,
                "to": to,
                "value": 0,
                "data": to_hex(data),
                "gas": gas,
                **self._fees(),
            }
            raw, tx_hash = self._sign(tx)
            before_send(tx_hash)
            # In flight before it is sent: the block that mines it may be pushed while it is being
            # sent, and that push wakes the receipts' reader only for what is in flight.
            self._in_flight[nonce] = Sent(nonce, tx, [tx_hash], on_mined, on_lost, on_replaced)
            try:
                self._send_raw(raw)
            except Exception:
                del self._in_flight[nonce]
                self._next_nonce = None
                raise
            self._next_nonce = nonce + 1
            return tx_hash

    def close(self) -> None:
        self.rpc.close()

    def adopt(
        self,
        tx_hash: str,
        on_mined: Callable[[Receipt], None],
        on_lost: Callable[[str], None],
        on_replaced: Callable[[str], None] = _ignore,
    ) -> bool:
        """Takes over a transaction a previous run sent and that is still waiting to be mined
        (False if the node does not know it)."""
        with self._lock:
            try:
                found = self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                return False
            keys = ("type", "chainId", "nonce", "to", "value", "gas", "accessList", *FEE_FIELDS)
            fields: dict[str, Any] = dict(found)
            tx = {key: fields[key] for key in keys if fields.get(key) is not None}
            tx["data"] = to_hex(bytes(found["input"]))
            if "maxFeePerGas" in tx:  # a node tells a dynamic-fee transaction's effective price too
                tx.pop("gasPrice", None)
            nonce = int(tx["nonce"])
            self._in_flight[nonce] = Sent(nonce, tx, [tx_hash], on_mined, on_lost, on_replaced)
            self._next_nonce = None
            return True

    def poll(self) -> int:
        """Hands out the receipts of a new block and replaces what is stuck; returns how many
        transactions ended."""
        with self._lock:
            if not self._in_flight:
                return 0
            ended = 0
            head = self._pushed.get()
            if head is None:
                head = int(self.w3.eth.block_number)
            if head != self._checked_head:
                ended += self._read_receipts()
                self._checked_head = head
            now = time.monotonic()
            for sent in list(self._in_flight.values()):
                if now - sent.sent_at >= self.replace_after_s:
                    self._replace(sent)
            return ended

    def _read_receipts(self) -> int:
        """Hands out the receipts there are; a transaction without one whose nonce the chain
        has used was replaced by a transaction that is none of this sender's."""
        ended = self._hand_out_receipts()
        if not self._in_flight:
            return ended
        confirmed = self._transaction_count("latest")
        if min(self._in_flight) < confirmed:
            # The receipts are read again after the nonce: one mined in between is not lost.
            ended += self._hand_out_receipts()
            for nonce in [n for n in sorted(self._in_flight) if n < confirmed]:
                sent = self._in_flight.pop(nonce)
                sent.on_lost(f"nonce {nonce} was used by another transaction than {', '.join(sent.hashes)}")
                ended += 1
        return ended

    def _hand_out_receipts(self) -> int:
        ended = 0
        for nonce in sorted(self._in_flight):
            receipt = self._receipt(self._in_flight[nonce])
            if receipt is not None:
                self._in_flight.pop(nonce).on_mined(receipt)
                ended += 1
        return ended

    def _receipt(self, sent: Sent) -> Receipt | None:
        for tx_hash in reversed(sent.hashes):
            if (receipt := fetch_receipt(self.rpc, tx_hash)) is not None:
                return receipt
        return None

    def _replace(self, sent: Sent) -> None:
        """Sends the transaction again at its nonce, with higher fees while bumps are left (with
        the same ones after: a node that dropped it gets it back)."""
        tx = dict(sent.tx)
        if sent.bumps < self.max_bumps:
            for key in FEE_FIELDS:
                if key in tx:
                    tx[key] = int(tx[key]) * FEE_BUMP_NUMERATOR // FEE_BUMP_DENOMINATOR + 1
            sent.bumps += 1
        raw, tx_hash = self._sign(tx)
        sent.tx, sent.sent_at = tx, time.monotonic()
        if tx_hash not in sent.hashes:
            sent.on_replaced(tx_hash)
            sent.hashes.append(tx_hash)
        try:
            self._send_raw(raw)
        except Exception as err:  # noqa: BLE001 - mined meanwhile, or the node away: the next poll sees
            log.info("replacing the transaction at nonce %d failed: %s", sent.nonce, err)
            return
        self.replacements += 1
        log.warning(
            "transaction at nonce %d unmined for %.0f s: sent again as %s (fee bump %d)",
            sent.nonce,
            self.replace_after_s,
            tx_hash,
            sent.bumps,
        )

    def new_head(self, number: int) -> None:
        """A block the node pushed (bridge/heads.py): the head, without asking, for a while."""
        self._pushed.set(number)

    def _fees(self) -> dict[str, int]:
        """EIP-1559 fees as web3 would set them (twice the base fee plus the tip), asked of the
        node at most once a `FEE_QUOTE_S`: two round trips per transaction were a fifth of
        the submitter's time."""
        if time.monotonic() >= self._fees_until:
            tip = int(self.w3.eth.max_priority_fee)
            base = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
            self._quote = {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}
            self._fees_until = time.monotonic() + FEE_QUOTE_S
        return dict(self._quote)

    def _send_raw(self, raw: bytes) -> None:
        """eth_sendRawTransaction by the lean client: web3's middleware cost a millisecond of
        every request's way to its callback, and its HTTP library another third of one."""
        try:
            self.rpc.call("eth_sendRawTransaction", [to_hex(raw)])
        except JsonRpcError as err:
            raise Web3RPCError(str(err)) from err

    def _sign(self, tx: dict[str, Any]) -> tuple[bytes, str]:
        if is_plain_dynamic_fee(tx):  # what this sender builds; an adopted one may be otherwise
            raw, tx_hash = sign_dynamic_fee(self._key, tx)
            return raw, to_hex(tx_hash)
        signed = self.account.sign_transaction(tx)
        return bytes(signed.raw_transaction), to_hex(bytes(signed.hash))

    def _chain_id(self) -> int:
        """The node's chain id, asked once (it cannot change under a running bridge)."""
        if self._known_chain_id is None:
            self._known_chain_id = int(self.w3.eth.chain_id)
        return self._known_chain_id

    def _transaction_count(self, block: str) -> int:
        try:
            return int(str(self.rpc.call("eth_getTransactionCount", [self.account.address, block])), 16)
        except JsonRpcError as err:
            raise Web3RPCError(str(err)) from err

    def _nonce(self) -> int:
        if self._next_nonce is None:
            pending = self._transaction_count("pending")
            self._next_nonce = max([pending, *(n + 1 for n in self._in_flight)])
        return self._next_nonce
