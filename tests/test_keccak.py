"""The lean keccak256 and checksums against eth_utils' own."""

from __future__ import annotations

import os
import signal
import threading

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from protocol.keccak import checksum_address, keccak256


def test_keccak256_is_eth_utils_keccak_for_every_length_around_the_rate() -> None:
    # 136 bytes is keccak256's rate: lengths around its multiples cross the padding's cases
    for length in [*range(0, 300), 1000, 4096, 65536]:
        data = os.urandom(length)
        assert keccak256(data) == keccak(data), length
    assert keccak256(b"") == bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")


def test_keccak256_takes_bytes_like_values_and_threads_do_not_share_a_state() -> None:
    assert keccak256(bytearray(b"abc")) == keccak(b"abc")
    assert keccak256(memoryview(b"abcdef")[1:4]) == keccak(b"bcd")
    failures: list[int] = []

    def hash_many(seed: int) -> None:
        for i in range(2000):
            data = f"{seed}:{i}".encode() * (i % 7 + 1)
            if keccak256(data) != keccak(data):
                failures.append(seed)

    threads = [threading.Thread(target=hash_many, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_checksum_address_is_eip55_from_bytes_or_hex() -> None:
    raw = os.urandom(20)
    expected = to_checksum_address(raw)
    assert checksum_address(raw) == expected
    assert checksum_address("0x" + raw.hex()) == expected
    assert checksum_address(expected.lower()) == expected


def test_a_hash_interrupted_by_a_signal_handler_that_hashes_is_still_right() -> None:
    """A handler runs between the C calls of the hash it interrupts: it must not share its state."""
    inner: list[bool] = []

    def hashing_handler(_signum: int, _frame: object) -> None:
        inner.append(keccak256(b"in the handler") == keccak(b"in the handler"))

    previous = signal.signal(signal.SIGALRM, hashing_handler)
    signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)
    try:
        data = [os.urandom(100) for _ in range(64)]
        expected = [keccak(d) for d in data]
        wrong = sum(keccak256(d) != e for _ in range(1500) for d, e in zip(data, expected, strict=True))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, previous)
    assert inner, "the handler ran"
    assert all(inner)
    assert wrong == 0
