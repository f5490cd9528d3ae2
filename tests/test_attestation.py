"""Attestation: the simulated authority, and real Intel quotes through the dcap backend."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from nacl.signing import SigningKey

from coprocessor.errors import AttestationError
from coprocessor.tee.base import Quote, identity_report_data
from coprocessor.tee.dcap import DcapPolicy, DcapTee, DcapVerifier, DstackQuoteSource, verify_quote
from coprocessor.tee.simulated import SimulatedTee, SimulatedVerifier, code_measurement
from protocol.deployment import PROJECT_ROOT

SAMPLES = Path(os.environ.get("ENCLAVE_ATTESTATION_SAMPLES", PROJECT_ROOT.parent / "shared" / "attestation-samples"))
TDX_TIME, SGX_TIME, OUTDATED_TIME = 1750331763, 1750334171, 1771415931
TDX_MR_TD_PREFIX = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407"
SGX_MR_ENCLAVE = "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"
SGX_MR_SIGNER = "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6"


@pytest.fixture(scope="module")
def samples() -> Path:
    if not SAMPLES.is_dir():
        message = f"the attestation samples are not at {SAMPLES} (set ENCLAVE_ATTESTATION_SAMPLES)"
        if os.environ.get("ENCLAVE_REQUIRE_SAMPLES"):
            pytest.fail(message)
        pytest.skip(message)
    return SAMPLES


def load(samples: Path, name: str) -> tuple[bytes, str]:
    return (samples / name).read_bytes(), (samples / f"{name}_collateral.json").read_text()


# -- simulated ------------------------------------------------------------------------------------


def test_simulated_quote_verifies_and_binds_its_report_data(tmp_path: Path) -> None:
    authority = SigningKey.generate()
    tee = SimulatedTee(authority, tmp_path, code_measurement())
    report_data = identity_report_data(b"\x01" * 32)
    quote = tee.quote(report_data)
    verifier = SimulatedVerifier(bytes(authority.verify_key))
    assert verifier.verify(quote) == code_measurement()
    with pytest.raises(AttestationError, match="not the attestation authority's"):
        verifier.verify(Quote(quote.backend, quote.measurement, identity_report_data(b"\x02" * 32), quote.signature))
    with pytest.raises(AttestationError, match="not the attestation authority's"):
        SimulatedVerifier(bytes(SigningKey.generate().verify_key)).verify(quote)


def test_measurement_covers_the_trusted_packages_and_nothing_else(tmp_path: Path) -> None:
    """A copy of the tree: an edit inside coprocessor/ or protocol/ changes the measurement, an
    edit of the host side (the dashboard, the bridge, the command line) does not."""
    for package in ("coprocessor", "protocol", "webui", "bridge", "enclave"):
        shutil.copytree(PROJECT_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    original = code_measurement(root=tmp_path)
    assert original == code_measurement(), "the copy measures as the tree does"

    for host_side in ("webui/display.py", "bridge/dispatcher.py", "enclave/cli.py"):
        with (tmp_path / host_side).open("a") as source:
            source.write("\n# an edit outside the trusted packages\n")
        assert code_measurement(root=tmp_path) == original, host_side

    for trusted in ("coprocessor/worker/service.py", "protocol/results.py", "coprocessor/runtime/prelude.js"):
        path = tmp_path / trusted
        before = path.read_bytes()
        path.write_bytes(before + b"\n// an edit inside\n")
        assert code_measurement(root=tmp_path) != original, trusted
        path.write_bytes(before)
    assert code_measurement(root=tmp_path) == original


# -- dcap, real quotes ------------------------------------------------------------------------------


def test_tdx_quote_passes_at_its_time(samples: Path) -> None:
    raw, collateral = load(samples, "tdx_quote")
    report = verify_quote(raw, collateral, TDX_TIME, DcapPolicy())
    assert report.tee == "tdx"
    assert report.tcb_status == "UpToDate"
    assert report.fields["mr_td"].startswith(TDX_MR_TD_PREFIX)
    assert report.measurement == hashlib.sha256(bytes.fromhex(report.fields["mr_td"])).digest()
    assert report.report_data.hex().startswith("9a9d48e7f6799642")


def test_tdx_policy_pins_mr_td(samples: Path) -> None:
    raw, collateral = load(samples, "tdx_quote")
    mr_td = verify_quote(raw, collateral, TDX_TIME, DcapPolicy()).fields["mr_td"]
    assert verify_quote(raw, collateral, TDX_TIME, DcapPolicy(allowed_mr_td=frozenset({mr_td})))
    with pytest.raises(AttestationError, match=r"mr_td .* is not allowed"):
        verify_quote(raw, collateral, TDX_TIME, DcapPolicy(allowed_mr_td=frozenset({"00" * 48})))


def test_sgx_quote_needs_a_policy_that_accepts_its_tcb_status(samples: Path) -> None:
    raw, collateral = load(samples, "sgx_quote")
    with pytest.raises(AttestationError, match="TCB status ConfigurationAndSWHardeningNeeded is not accepted"):
        verify_quote(raw, collateral, SGX_TIME, DcapPolicy())
    lenient = DcapPolicy(
        allowed_mr_enclave=frozenset({SGX_MR_ENCLAVE}),
        allowed_mr_signer=frozenset({SGX_MR_SIGNER}),
        accepted_tcb_statuses=frozenset({"UpToDate", "ConfigurationAndSWHardeningNeeded"}),
    )
    report = verify_quote(raw, collateral, SGX_TIME, lenient)
    assert report.tee == "sgx"
    assert report.measurement.hex() == SGX_MR_ENCLAVE
    assert report.report_data.startswith(b"Hello, world!")
    assert report.advisory_ids, "the advisories behind the status are reported"


def test_outdated_tcb_fails_clearly(samples: Path) -> None:
    raw, collateral = load(samples, "tdx_quote_outdated")
    with pytest.raises(AttestationError, match="No matching TCB level found"):
        verify_quote(raw, collateral, OUTDATED_TIME, DcapPolicy())


@pytest.mark.parametrize("name", ["tdx_quote", "sgx_quote", "tdx_quote_outdated"])
def test_expired_collateral_fails_today(samples: Path, name: str) -> None:
    raw, collateral = load(samples, name)
    with pytest.raises(AttestationError, match="CrlExpired"):
        verify_quote(raw, collateral, 1_795_000_000, DcapPolicy())  # 2026-11: the collateral is old


def test_corrupt_quote_is_rejected(samples: Path) -> None:
    raw, collateral = load(samples, "tdx_quote")
    corrupt = raw[:100] + bytes([raw[100] ^ 0xFF]) + raw[101:]
    with pytest.raises(AttestationError, match="DCAP quote rejected"):
        verify_quote(corrupt, collateral, TDX_TIME, DcapPolicy())


def test_dstack_source_feeds_the_dcap_verifier(samples: Path) -> None:
    """The dstack guest agent and Intel's PCS need a real CVM and the network: stand-ins at
    the seam return the sample quote and collateral, the rest is the production path."""
    raw, collateral = load(samples, "tdx_quote")
    guest_agent = SimpleNamespace(
        get_quote=lambda report_data: SimpleNamespace(quote=raw.hex()),
        get_key=lambda path=None, purpose=None, algorithm="secp256k1": SimpleNamespace(key="11" * 32),
    )
    source = DstackQuoteSource(client=guest_agent, fetch_collateral=lambda _raw: collateral)
    tee = DcapTee(source, source.sealing_secret())
    report_data = verify_quote(raw, collateral, TDX_TIME, DcapPolicy()).report_data
    quote = Quote.from_dict(tee.quote(report_data).to_dict())  # as it travels over HTTP
    verifier = DcapVerifier(DcapPolicy(), clock=lambda: TDX_TIME)
    assert verifier.verify(quote) == tee.measurement
    with pytest.raises(AttestationError, match="claimed measurement or report data"):
        verifier.verify(Quote(quote.backend, quote.measurement, bytes(64), quote.signature, quote.collateral))
    with pytest.raises(AttestationError, match="CrlExpired"):
        DcapVerifier(DcapPolicy()).verify(quote)  # the real clock: the sample collateral expired
