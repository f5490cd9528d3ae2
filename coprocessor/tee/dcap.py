"""The `dcap` backend: real Intel SGX and TDX quotes, verified offline with `dcap-qvl`.

A quote travels with its collateral (the TCB info, QE identity and CRLs that Intel's PCS signs),
which the prover fetches; `dcap-qvl` checks the whole chain up to Intel's root. The verification
time is an input, never the clock read inside the check, so that a policy is testable with old
samples and a verifier can be asked "was this valid then?".

The measurement a policy (and TeeRegistry's allow-list) speaks of: `mr_enclave` for SGX, and
SHA-256 of the 48-byte `mr_td` for TDX (so both fit the registry's bytes32).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import dcap_qvl

from coprocessor.errors import AttestationError
from coprocessor.tee.base import Quote

BACKEND = "dcap"


@dataclass(frozen=True)
class DcapPolicy:
    """What a verifier accepts. Empty allow-lists accept any value of that field."""

    allowed_mr_td: frozenset[str] = frozenset()
    allowed_mr_enclave: frozenset[str] = frozenset()
    allowed_mr_signer: frozenset[str] = frozenset()
    # dcap-qvl reports the status; treating anything but UpToDate as valid is the caller's call.
    accepted_tcb_statuses: frozenset[str] = frozenset({"UpToDate"})


@dataclass(frozen=True)
class DcapReport:
    tee: str  # "tdx" or "sgx"
    measurement: bytes
    report_data: bytes
    tcb_status: str
    advisory_ids: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)


def verify_quote(raw_quote: bytes, collateral_json: str, at_time: int, policy: DcapPolicy) -> DcapReport:
    """Verifies a quote and its collateral at `at_time` (unix seconds) against `policy`."""
    try:
        collateral = dcap_qvl.QuoteCollateralV3.from_json(collateral_json)
        verified = dcap_qvl.verify(raw_quote, collateral, at_time)
    except ValueError as err:
        raise AttestationError(f"DCAP quote rejected: {err}") from err
    data: dict[str, Any] = json.loads(verified.to_json())
    status = str(data["status"])
    report = data["report"]
    if "SgxEnclave" in report:
        body = report["SgxEnclave"]
        tee, measurement = "sgx", bytes.fromhex(body["mr_enclave"])
        _require(policy.allowed_mr_enclave, body["mr_enclave"], "mr_enclave")
        _require(policy.allowed_mr_signer, body["mr_signer"], "mr_signer")
    else:
        body = next(iter(report.values()))  # TD10 or TD15
        tee, measurement = "tdx", hashlib.sha256(bytes.fromhex(body["mr_td"])).digest()
        _require(policy.allowed_mr_td, body["mr_td"], "mr_td")
    if status not in policy.accepted_tcb_statuses:
        raise AttestationError(
            f"TCB status {status} is not accepted (policy accepts {sorted(policy.accepted_tcb_statuses)}); "
            f"advisories: {', '.join(data.get('advisory_ids') or []) or 'none'}"
        )
    return DcapReport(
        tee=tee,
        measurement=measurement,
        report_data=bytes.fromhex(body["report_data"]),
        tcb_status=status,
        advisory_ids=list(data.get("advisory_ids") or []),
        fields={k: v for k, v in body.items() if isinstance(v, str)},
    )


def _require(allowed: frozenset[str], value: str, name: str) -> None:
    if allowed and value.lower() not in {a.lower() for a in allowed}:
        raise AttestationError(f"{name} {value} is not allowed by the policy")


class DcapVerifier:
    """The `QuoteVerifier` of the dcap backend: a quote's `signature` holds the raw Intel quote,
    and its collateral comes with it."""

    def __init__(self, policy: DcapPolicy, clock: Callable[[], float] = time.time) -> None:
        self.policy = policy
        self.clock = clock

    def verify(self, quote: Quote) -> bytes:
        if quote.backend != BACKEND or not quote.collateral:
            raise AttestationError("expected a dcap quote with its collateral")
        report = verify_quote(quote.signature, quote.collateral, int(self.clock()), self.policy)
        if report.report_data != quote.report_data or report.measurement != quote.measurement:
            raise AttestationError("the quote's claimed measurement or report data differ from the signed ones")
        return report.measurement


class QuoteSource(Protocol):
    """Where raw quotes come from: the dstack guest agent in a TDX CVM (or a stand-in in tests)."""

    def get_quote(self, report_data: bytes) -> tuple[bytes, str]:
        """Returns the raw quote over `report_data` and its collateral as JSON."""
        ...


def measurement_of(raw_quote: bytes) -> bytes:
    """The policy measurement of a quote, read without verifying it (for a TEE's own quotes)."""
    parsed = dcap_qvl.parse_quote(raw_quote)
    if parsed.is_sgx():
        return bytes(parsed.report.mr_enclave)
    return hashlib.sha256(bytes(parsed.report.mr_td)).digest()


class DstackClientLike(Protocol):
    def get_quote(self, report_data: str | bytes) -> Any: ...

    def get_key(self, path: str | None = None, purpose: str | None = None, algorithm: str = ...) -> Any: ...


class DstackQuoteSource:
    """Quotes from the dstack guest agent (`dstack-sdk`) in a TDX CVM; collateral from Intel's
    PCS through dcap-qvl. Both need the guest's socket and the network, so tests hand in
    stand-ins for the two at this seam."""

    def __init__(
        self,
        client: DstackClientLike | None = None,
        fetch_collateral: Callable[[bytes], str] | None = None,
    ) -> None:
        if client is None:
            from dstack_sdk import DstackClient

            client = DstackClient()
        self._client = client
        self._fetch = fetch_collateral or _collateral_from_pcs

    def get_quote(self, report_data: bytes) -> tuple[bytes, str]:
        raw = bytes.fromhex(str(self._client.get_quote(report_data).quote).removeprefix("0x"))
        return raw, self._fetch(raw)

    def sealing_secret(self) -> bytes:
        """dstack's KMS derives app keys bound to the CVM's measurement: our sealing secret."""
        return bytes.fromhex(str(self._client.get_key("enclave-agents/sealing").key).removeprefix("0x"))


def _collateral_from_pcs(raw_quote: bytes) -> str:
    collateral = asyncio.run(dcap_qvl.get_collateral_from_pcs(raw_quote))
    return str(collateral.to_json())


class DcapTee:
    """A TEE identity whose quotes come from real hardware through a `QuoteSource`."""

    name = BACKEND

    def __init__(self, source: QuoteSource, sealing_secret: bytes) -> None:
        self._source = source
        self._sealing_secret = sealing_secret
        raw, _ = source.get_quote(bytes(64))
        self.measurement = measurement_of(raw)

    def quote(self, report_data: bytes) -> Quote:
        raw, collateral = self._source.get_quote(report_data)
        return Quote(
            backend=BACKEND, measurement=self.measurement, report_data=report_data, signature=raw, collateral=collateral
        )

    def sealing_key(self) -> bytes:
        return self._sealing_secret
