"""Processes the stack starts end with the process that started them, however it ends.

A service started by `enclave up` (or by a test) runs in a session of its own, so that Ctrl-C
reaches `enclave up`, which stops them in order; but a SIGKILL of `enclave up` would leave them
running. So each is started under `setpriv --pdeathsig KILL` (util-linux): the kernel kills it
when its parent dies. Linux ties that signal to the thread that started the child, so services
are started from the thread that owns the stack (the main one), never a passing thread.
"""

from __future__ import annotations

import shutil
import signal
import subprocess


def tied_to_this_process(argv: list[str]) -> list[str]:
    """`argv`, to be killed when this process dies (as it is where setpriv is missing)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", *argv] if setpriv else argv


def stop_process(process: subprocess.Popen[bytes], timeout: float, sig: int = signal.SIGTERM) -> None:
    """Sends `sig` to a running `process` and waits up to `timeout` seconds for it to end; kills
    it if it has not."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
