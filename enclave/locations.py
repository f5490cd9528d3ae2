"""Where a stack keeps its state, found without flags from any folder, and what it says of the
stack running there.

`ENCLAVE_STATE_DIR` names the folder; without it, one per user: `$XDG_STATE_HOME/enclave`, that
is `~/.local/state/enclave` by default. `--state-dir` still overrides both.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from web3 import Web3

from enclave.errors import EnclaveError
from protocol.deployment import Deployment, connect
from protocol.errors import ProtocolError

STATE_DIR_VARIABLE = "ENCLAVE_STATE_DIR"


def default_state_dir() -> Path:
    explicit = os.environ.get(STATE_DIR_VARIABLE)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "enclave"


@dataclass(frozen=True)
class RunningStack:
    """What `enclave up` wrote of the stack it runs: `stack.json` and the deployment file."""

    state_dir: Path
    rpc_url: str
    deployment: Deployment
    services: dict[str, str]
    tee_backend: str

    def web3(self) -> Web3:
        """A client of the stack's chain (every call with a timeout)."""
        return connect(self.rpc_url)

    @classmethod
    def read(cls, state_dir: Path) -> RunningStack:
        try:
            info = json.loads((state_dir / "stack.json").read_text())
            deployment = Deployment.load(state_dir / "deployment.json")
        except (OSError, ValueError, ProtocolError) as err:
            raise EnclaveError(f"no running stack in {state_dir}: start one with `enclave up` ({err})") from err
        return cls(
            state_dir=state_dir,
            rpc_url=str(info["rpcUrl"]),
            deployment=deployment,
            services=dict(info["services"]),
            tee_backend=str(info.get("teeBackend", "simulated")),
        )
