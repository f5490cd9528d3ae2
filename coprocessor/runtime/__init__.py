"""The agent runtime: QuickJS with limits, in killable child processes.

sandbox.Sandbox ── pipes ──▶ child process: engine.execute ── __host ──▶ host.HostApi
"""

from coprocessor.runtime.context import RunContext, StorageGrant
from coprocessor.runtime.engine import Execution, execute
from coprocessor.runtime.sandbox import Sandbox
from protocol.limits import Limits

__all__ = ["Execution", "Limits", "RunContext", "Sandbox", "StorageGrant", "execute"]
