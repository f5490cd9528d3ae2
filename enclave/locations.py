"""Where a stack keeps its state, found without flags from any folder.

`ENCLAVE_STATE_DIR` names the folder; without it, one per user: `$XDG_STATE_HOME/enclave`, that
is `~/.local/state/enclave` by default. `--state-dir` still overrides both.
"""

from __future__ import annotations

import os
from pathlib import Path

STATE_DIR_VARIABLE = "ENCLAVE_STATE_DIR"


def default_state_dir() -> Path:
    explicit = os.environ.get(STATE_DIR_VARIABLE)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "enclave"
