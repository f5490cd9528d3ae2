"""docs/from-chainlink-functions.md's "moving a client over", run by bash as it stands."""

from __future__ import annotations

import re

import pytest

from enclave.stack import Stack
from protocol.deployment import PROJECT_ROOT
from tests.shell import run_as_written
from tests.state import fresh_state_dir

pytestmark = pytest.mark.chain

DOC = (PROJECT_ROOT / "docs" / "from-chainlink-functions.md").read_text()


def test_moving_a_client_over_as_the_guide_says() -> None:
    [script] = re.findall(r"```sh\n(.*?)```", DOC.split("## Moving a client over")[1], flags=re.S)
    state = fresh_state_dir("functions-migration")
    with Stack(state_dir=state, workers=1, web_port=None):
        ran = run_as_written(script, PROJECT_ROOT, state)
    assert ran.returncode == 0, f"{ran.stdout}\n{ran.stderr}"
    assert ran.stdout.strip().splitlines()[-1] == "0x" + (42).to_bytes(32, "big").hex()
