"""HKDF-SHA256 against the test vectors of RFC 5869 (appendix A)."""

from __future__ import annotations

import pytest

from protocol.kdf import hkdf

IKM = bytes.fromhex("0b" * 22)


@pytest.mark.parametrize(
    ("salt", "info", "okm"),
    [
        pytest.param(
            bytes.fromhex("000102030405060708090a0b0c"),
            bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
            id="A.1 basic",
        ),
        pytest.param(
            b"",
            b"",
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
            id="A.3 zero-length salt and info",
        ),
    ],
)
def test_hkdf_matches_rfc_5869(salt: bytes, info: bytes, okm: str) -> None:
    assert hkdf(IKM, info, length=42, salt=salt).hex() == okm


def test_hkdf_long_inputs_rfc_5869_a2() -> None:
    ikm = bytes(range(0x00, 0x50))
    salt = bytes(range(0x60, 0xB0))
    info = bytes(range(0xB0, 0x100))
    expected = (
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
        "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
        "cc30c58179ec3e87c14c01d5c1f3434f1d87"
    )
    assert hkdf(ikm, info, length=82, salt=salt).hex() == expected
