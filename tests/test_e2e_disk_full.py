"""The bridge on a volume that fills up: it fails loudly (status, logs, metrics), loses nothing,
and carries on by itself once space returns, without a restart; a restart on the full volume
neither wedges nor loses what was stored."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from enclave.stack import Stack
from enclave.usage import ask_many, register, wait_for
from tests.state import fresh_state_dir

pytestmark = pytest.mark.chain

ECHO = "export default async function main(input) { return input.bytes; }"
VOLUME_BYTES = 4 * 1024 * 1024


@pytest.fixture
def small_volume() -> Iterator[Path]:
    """A 4 MiB tmpfs of the test's own, unmounted afterwards."""
    mount_point = Path(tempfile.mkdtemp(prefix="enclave-small-volume-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={VOLUME_BYTES}", "tmpfs", str(mount_point)],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        mount_point.rmdir()
        pytest.skip(f"this machine does not let the tests mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)  # noqa: S607
        mount_point.rmdir()


def _fill(volume: Path) -> Path:
    """Takes every free byte of the volume."""
    filler = volume / "filler"
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def _status(stack: Stack) -> dict[str, object]:
    reply: dict[str, object] = httpx.get(f"{stack.url('bridge')}/v1/status", timeout=5).json()
    return reply


def test_a_full_volume_fails_loudly_and_the_bridge_recovers_when_space_returns(small_volume: Path) -> None:
    database = small_volume / "bridge.sqlite"
    with Stack(
        state_dir=fresh_state_dir("e2e-disk-full"),
        workers=1,
        web_port=None,
        bridge_env={"ENCLAVE_BRIDGE_DATABASE": str(database), "ENCLAVE_BRIDGE_MAX_BACKOFF_S": "1"},
    ) as stack:
        agent = register(stack, ECHO)
        wait_for(stack, ask_many(stack, agent, [b"before"]))
        filler = _fill(small_volume)

        ids = ask_many(stack, agent, [b"while full %d" % i for i in range(5)])
        deadline = time.monotonic() + 30
        while not (errors := _status(stack)["errors"]):
            assert time.monotonic() < deadline, "the bridge never said that it cannot write"
            time.sleep(0.2)
        assert "full" in str(errors).lower(), errors
        metrics = httpx.get(f"{stack.url('bridge')}/metrics", timeout=5).text
        assert "enclave_bridge_loop_failing" in metrics
        assert any(line.endswith(" 1.0") for line in metrics.splitlines() if "loop_failing" in line)
        log_text = (stack.state_dir / "bridge.log").read_text()
        assert "database or disk is full" in log_text

        # A restart on the full volume: it starts, reads what it has, and says why it is stuck.
        stack.services["bridge"].stop()
        stack.start_bridge()

        os.remove(filler)
        results = wait_for(stack, ids, timeout=60)
        assert set(results) == set(ids), "every request delivered once space returned"
        deadline = time.monotonic() + 30
        while _status(stack)["errors"]:
            assert time.monotonic() < deadline, "the error outlived the full volume"
            time.sleep(0.2)
