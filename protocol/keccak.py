"""keccak256 and checksummed addresses at the cost of the hash itself.

`eth_utils.keccak` makes a new pycryptodome hash object for every call: a C state allocated
through cffi, wrapped, and freed, behind a layer of argument checks. Under load that was 15% of
a worker's and 7% of the bridge's interpreter time, for hashes of a few hundred bytes. This
keeps one state per thread in pycryptodome's own C library and resets it for each hash: the
same function, at a fifth of the cost. `tests/test_keccak.py` compares the two byte for byte.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak as _eth_utils_keccak

_KECCAK256_CAPACITY_BYTES = 64
_KECCAK_ROUNDS = 24
_KECCAK_PADDING = 0x01  # the original Keccak's, which Ethereum uses (SHA-3's is 0x06)

try:
    from Crypto.Hash.keccak import _raw_keccak_lib  # type: ignore[attr-defined]
    from Crypto.Util._raw_api import ffi
except ImportError:  # another pycryptodome layout: the slower path gives the same hashes
    _raw_keccak_lib = None
    ffi = None


class _States(threading.local):
    """Each thread's idle keccak states, each with its output buffer. A hash takes one out for
    its time, so one that interrupts it (a signal handler's) makes a state of its own."""

    def __init__(self) -> None:
        self.idle: list[tuple[Any, Any]] = []


_states = _States()


def _new_state() -> tuple[Any, Any]:
    pointer = ffi.new("void **")
    if _raw_keccak_lib.keccak_init(pointer, _KECCAK256_CAPACITY_BYTES, _KECCAK_ROUNDS):
        raise RuntimeError("keccak state not made")
    # keccak_destroy frees it when its thread's list goes, with the thread.
    return ffi.gc(pointer[0], _raw_keccak_lib.keccak_destroy), ffi.new("uint8_t[32]")


def keccak256(data: bytes | bytearray | memoryview) -> bytes:
    """keccak256 of `data`, as the EVM computes it."""
    if _raw_keccak_lib is None:
        return bytes(_eth_utils_keccak(bytes(data)))
    if type(data) is not bytes:  # cffi passes bytes as they are, and nothing else
        data = bytes(data)
    idle = _states.idle
    state, out = idle.pop() if idle else _new_state()
    _raw_keccak_lib.keccak_reset(state)
    if _raw_keccak_lib.keccak_absorb(state, data, len(data)) or _raw_keccak_lib.keccak_digest(
        state, out, 32, _KECCAK_PADDING
    ):
        raise RuntimeError("keccak failed")
    digest = bytes(ffi.buffer(out))
    idle.append((state, out))
    return digest


@lru_cache(maxsize=4096)  # a stack sees few accounts: consumers, transmitters, its signers
def checksum_address(address: bytes | str) -> str:
    """The EIP-55 form of an address (20 bytes or hex); each checksum costs a keccak."""
    return str(to_checksum_address(address))
