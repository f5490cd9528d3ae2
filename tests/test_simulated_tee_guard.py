"""The simulated TEE is never chosen by accident, and its authority's key stays with the
processes that make quotes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from coprocessor.errors import InsecureBackendRefused
from coprocessor.settings import DEVELOPMENT_CHAIN_IDS, WorkerSettings
from enclave.anvil import Anvil

pytestmark = pytest.mark.chain


def test_simulated_backend_runs_on_a_development_chain_only_unless_told() -> None:
    for chain_id in DEVELOPMENT_CHAIN_IDS:
        WorkerSettings(tee_backend="simulated").check_backend(chain_id)
    with pytest.raises(InsecureBackendRefused, match="refusing the SIMULATED TEE on chain 1"):
        WorkerSettings(tee_backend="simulated").check_backend(1)
    WorkerSettings(tee_backend="simulated", insecure_simulated_tee=True).check_backend(1)
    WorkerSettings(tee_backend="dcap").check_backend(1)


@pytest.mark.parametrize("service", ["coprocessor.worker", "coprocessor.gatekeeper"])
def test_services_refuse_to_start_simulated_on_another_chain(service: str, tmp_path: Path) -> None:
    prefix = "ENCLAVE_WORKER_" if service.endswith("worker") else "ENCLAVE_GATEKEEPER_"
    with Anvil(chain_id=11155111) as chain:
        env = {
            **os.environ,
            f"{prefix}RPC_URL": chain.rpc_url,
            f"{prefix}STATE_DIR": str(tmp_path / "state"),
            f"{prefix}ATTESTATION_AUTHORITY_KEY": str(tmp_path / "authority.key"),
        }
        done = subprocess.run(
            [sys.executable, "-m", service], env=env, capture_output=True, text=True, timeout=60, check=False
        )
    assert done.returncode != 0
    assert "refusing the SIMULATED TEE on chain 11155111" in done.stderr
    assert not (tmp_path / "authority.key").exists(), "nothing was created before the refusal"
