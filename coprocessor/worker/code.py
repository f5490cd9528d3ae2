"""Agent code by hash: from the chain's AgentCodePublished logs, checked, then cached."""

from __future__ import annotations

import threading

from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract

from coprocessor.errors import CodeInvalid, CodeNotFound


class CodeStore:
    def __init__(self, w3: Web3, router: Contract, from_block: int) -> None:
        self._w3 = w3
        self._router = router
        self._from_block = from_block
        self._cache: dict[bytes, str] = {}
        self._lock = threading.Lock()

    def get(self, code_hash: bytes) -> str:
        with self._lock:
            cached = self._cache.get(code_hash)
        if cached is not None:
            return cached
        logs = self._w3.eth.get_logs(
            {
                "address": self._router.address,
                "topics": [HexBytes(self._router.events.AgentCodePublished().topic), code_hash],  # type: ignore[list-item]
                "fromBlock": self._from_block,
                "toBlock": "latest",
            }
        )
        for entry in logs:
            code = bytes(self._router.events.AgentCodePublished().process_log(entry)["args"]["code"])
            if keccak(code) != code_hash:
                continue  # a node lying about logs cannot make us run other code
            try:
                text = code.decode("utf-8")
            except UnicodeDecodeError as err:
                raise CodeInvalid(code_hash, "the published code is not UTF-8") from err
            with self._lock:
                self._cache[code_hash] = text
            return text
        raise CodeNotFound(code_hash)

    def __len__(self) -> int:
        return len(self._cache)
