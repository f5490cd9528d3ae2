"""State folders of the test suite's own stacks: under .state/tests/, made and cleared by the
tests themselves (a stack never deletes a state folder; it moves stale state aside)."""

from __future__ import annotations

import shutil
from pathlib import Path

from protocol.deployment import PROJECT_ROOT

TESTS_STATE = PROJECT_ROOT / ".state" / "tests"


def fresh_state_dir(name: str) -> Path:
    """An empty `.state/tests/<name>`, kept after the run for its logs; earlier runs' folders of
    that name (moved-aside ones included) are the suite's own and are cleared."""
    for earlier in TESTS_STATE.glob(f"{name}*"):
        if earlier.name == name or earlier.name.startswith(f"{name}.old-"):
            shutil.rmtree(earlier)
    return TESTS_STATE / name
