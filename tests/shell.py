"""Running a document's shell lines as they stand, in the shell a user of the stack has."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from protocol.deployment import PROJECT_ROOT


def run_as_written(script: str, cwd: Path, state_dir: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`script` under `bash -euo pipefail`, with the enclave command and Foundry on PATH, the
    stack's state folder in ENCLAVE_STATE_DIR, and npm answering from its cache (the tests make
    no network calls beyond loopback)."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{PROJECT_ROOT / 'node_modules' / '.bin'}:{os.environ['PATH']}",
        "ENCLAVE_STATE_DIR": str(state_dir),
        "npm_config_offline": "true",
    }
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],  # noqa: S607
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
