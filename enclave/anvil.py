"""A local anvil chain, started on a free loopback port and stopped afterwards."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from enclave.errors import AnvilError
from enclave.lifetime import stop_process, tied_to_this_process
from protocol.deployment import PROJECT_ROOT

# anvil's default mnemonic ("test test ... junk"): well-known dev keys, never for real funds.
DEV_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)


def port_is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:`port` now (as uvicorn and anvil do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tool_path(name: str) -> str:
    """The Foundry binary `name` that the npm packages installed, or one on PATH.

    The native binary itself, not npm's Node.js launcher in node_modules/.bin: signals sent to
    the process (a stop, a pause in a test) must reach the tool, and no child may outlive it.
    """
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), platform.machine())
    native = PROJECT_ROOT / "node_modules" / "@foundry-rs" / f"{name}-linux-{arch}" / "bin" / name
    if native.exists():
        return str(native)
    local = PROJECT_ROOT / "node_modules" / ".bin" / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise AnvilError(f"{name} not found: run `make setup` to install Foundry from npm")
    return found


@dataclass
class Anvil:
    """An anvil process; use it as a context manager or call `start` and `stop`."""

    port: int = field(default_factory=free_port)
    # Where it listens: loopback, or an address that other hosts (or namespaces) reach.
    host: str = "127.0.0.1"
    # With a block time, anvil still mines each transaction at once (mixed mining) and also
    # makes a block every `block_time` seconds, so that "N confirmations later" comes to pass.
    block_time: float | None = None
    # Without automine, transactions wait for the next block (a chain with real block times).
    automine: bool = True
    log_path: Path | None = None
    chain_id: int = 31337
    _process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise AnvilError("anvil is not running")
        return self._process.pid

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> Anvil:
        args = tied_to_this_process(
            [
                tool_path("anvil"),
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--chain-id",
                str(self.chain_id),
                "--silent",
            ]
        )
        if self.block_time is not None:
            args += ["--block-time", str(self.block_time)] + (["--mixed-mining"] if self.automine else [])
        if self.log_path:
            with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
                # S603: the argument list is the pinned anvil binary and our own flags, no shell.
                self._process = subprocess.Popen(  # noqa: S603
                    args, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy()
                )
        else:
            self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)  # noqa: S603
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise AnvilError(f"anvil exited with code {self._process.returncode}")
            try:
                body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
                if httpx.post(self.rpc_url, json=body, timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise AnvilError(f"anvil did not answer on {self.rpc_url} within {timeout} s")

    def stop(self) -> None:
        if self._process is None:
            return
        stop_process(self._process, timeout=5)
        self._process = None

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
