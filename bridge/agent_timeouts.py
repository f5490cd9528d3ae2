"""How long a worker may take to answer a request: the agent's wall-time limit plus a margin.

The limit is in the agent's manifest, which is part of its published code, so the bridge reads
it from the chain once per code hash. A hung worker then holds a request no longer than that
agent could legitimately run.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from web3.contract import Contract

from protocol.errors import ManifestError
from protocol.limits import Limits
from protocol.manifest import parse_manifest

log = logging.getLogger(__name__)

KEPT = 10_000


class AgentTimeouts:
    def __init__(
        self, router: Contract, start_block: int, margin_s: float = 5.0, defaults: Limits | None = None
    ) -> None:
        self.router = router
        self.start_block = start_block
        self.margin_s = margin_s
        self.defaults = defaults or Limits()
        self._by_code: OrderedDict[bytes, float] = OrderedDict()

    @property
    def default_s(self) -> float:
        return self.defaults.wall_time_ms / 1000 + self.margin_s

    def for_code(self, code_hash: bytes) -> float:
        cached = self._by_code.get(code_hash)
        if cached is not None:
            return cached
        try:
            logs = self.router.events.AgentCodePublished().get_logs(
                argument_filters={"codeHash": code_hash}, from_block=self.start_block
            )
            code = bytes(logs[0]["args"]["code"]).decode("utf-8")
            timeout = parse_manifest(code).apply(self.defaults).wall_time_ms / 1000 + self.margin_s
        except (IndexError, UnicodeDecodeError, ManifestError) as err:
            # The worker will say what is wrong with the code; the default bounds the wait.
            log.info("no manifest limits for code 0x%s (%s): waiting %.0f s", code_hash.hex()[:12], err, self.default_s)
            return self.default_s
        self._by_code[code_hash] = timeout
        while len(self._by_code) > KEPT:
            self._by_code.popitem(last=False)
        return timeout
