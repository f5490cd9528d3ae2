"""An agent's manifest: one comment line at the top of its code, published with it on-chain.

    // @enclave {"name": "price-oracle", "allowHosts": ["api.coingecko.com"], "limits": {"httpCalls": 3}}

Because the manifest is part of the code, the code hash commits to it: a request runs with the
hosts and limits of the version it named, and nobody can widen them without a new version.
Limits may lower or raise the defaults within the worker's caps.

`"logs": "public"` (the default) leaves an agent's `ctx.log` lines and full error text readable
by the bridge and the dashboard; `"logs": "private"` with `"logsKey": "0x<X25519 public key>"`
(the owner's, see `enclave agent deploy --private-logs`) has the worker seal them to that key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from eth_abi.abi import decode, is_encodable_type

from protocol.errors import ManifestError
from protocol.hexes import to_hex
from protocol.limits import KIB, MIB, Limits

_LINE = re.compile(r"^\s*//\s*@enclave\s+(\{.*\})\s*$")

# Manifest names of the limits an agent may set, and the Limits field each sets.
LIMIT_FIELDS = {
    "wallTimeMs": "wall_time_ms",
    "memoryMb": "memory_bytes",
    "httpCalls": "http_calls",
    "httpResponseBytes": "http_response_bytes",
    "callDepth": "call_depth",
    "inputBytes": "input_bytes",
    "outputBytes": "output_bytes",
}

# What a worker grants at most. Input and output stay within what the router accepts on-chain.
CAPS = Limits(
    wall_time_ms=60_000,
    memory_bytes=512 * MIB,
    input_bytes=32 * KIB,
    output_bytes=4 * KIB,
    http_calls=64,
    http_response_bytes=8 * MIB,
    call_depth=8,
)


# The keys an @enclave line may have.
MANIFEST_KEYS = frozenset({"name", "allowHosts", "limits", "logs", "logsKey", "output"})


@dataclass(frozen=True)
class Manifest:
    name: str | None = None
    allow_hosts: tuple[str, ...] = ()
    limits: dict[str, int] = field(default_factory=dict)
    # The owner's X25519 public key when the logs are private; None: public logs.
    logs_key: bytes | None = None
    # The Solidity ABI types of the output (`abi.decode(output, (...))`), for tools to show it.
    output: tuple[str, ...] = ()

    @property
    def private_logs(self) -> bool:
        return self.logs_key is not None

    def to_line(self) -> str:
        data: dict[str, Any] = {}
        if self.name:
            data["name"] = self.name
        if self.allow_hosts:
            data["allowHosts"] = list(self.allow_hosts)
        if self.limits:
            data["limits"] = self.limits
        if self.logs_key is not None:
            data["logs"] = "private"
            data["logsKey"] = to_hex(self.logs_key)
        if self.output:
            data["output"] = list(self.output)
        return "// @enclave " + json.dumps(data, separators=(", ", ": "))

    def apply(self, defaults: Limits) -> Limits:
        """The limits of a run: the defaults, changed by the manifest, within the caps."""
        changes: dict[str, int] = {}
        for name, value in self.limits.items():
            attr = LIMIT_FIELDS[name]
            amount = value * MIB if name == "memoryMb" else value
            changes[attr] = min(amount, getattr(CAPS, attr))
        return replace(defaults, **changes)


def parse_manifest(code: str) -> Manifest:
    for line in code.splitlines()[:5]:
        match = _LINE.match(line)
        if match is None:
            continue
        try:
            data = json.loads(match.group(1))
        except json.JSONDecodeError as err:
            raise ManifestError(f"the @enclave line is not JSON: {err}") from err
        if not isinstance(data, dict):
            raise ManifestError("the @enclave line is a JSON object")
        unknown = set(data) - MANIFEST_KEYS
        if unknown:
            raise ManifestError(f"unknown manifest keys {sorted(unknown)}; known: {sorted(MANIFEST_KEYS)}")
        unknown_limits = set(data.get("limits", {})) - set(LIMIT_FIELDS)
        if unknown_limits:
            raise ManifestError(f"unknown limits {sorted(unknown_limits)}; known: {sorted(LIMIT_FIELDS)}")
        if not all(isinstance(v, int) and v > 0 for v in data.get("limits", {}).values()):
            raise ManifestError("limits are positive integers")
        for name, value in data.get("limits", {}).items():
            cap = getattr(CAPS, LIMIT_FIELDS[name])
            cap = cap // MIB if name == "memoryMb" else cap
            if value > cap:
                raise ManifestError(f"limit {name} of {value} is over its cap of {cap}")
        hosts = data.get("allowHosts", [])
        if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
            raise ManifestError("allowHosts is a list of host names (host or host:port)")
        return Manifest(
            name=data.get("name"),
            allow_hosts=tuple(hosts),
            limits=dict(data.get("limits", {})),
            logs_key=_logs_key(data),
            output=_output_types(data),
        )
    return Manifest()


def _logs_key(data: dict[str, Any]) -> bytes | None:
    logs = data.get("logs", "public")
    if logs == "public":
        return None
    if logs != "private":
        raise ManifestError('logs is "public" or "private"')
    key = data.get("logsKey")
    if not isinstance(key, str) or not re.fullmatch(r"0x[0-9a-fA-F]{64}", key):
        raise ManifestError('private logs need "logsKey": the owner\'s X25519 public key, 0x and 64 hex digits')
    return bytes.fromhex(key[2:])


def _output_types(data: dict[str, Any]) -> tuple[str, ...]:
    types = data.get("output", [])
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise ManifestError('output is a list of Solidity ABI types, as in "output": ["uint256", "string"]')
    for kind in types:
        if not is_encodable_type(kind):
            raise ManifestError(f"output type {kind!r} is not a Solidity ABI type")
    return tuple(types)


def decode_output(manifest: Manifest, output: bytes) -> list[Any] | None:
    """The output decoded by the manifest's `output` types; None without types or when it does
    not decode (an error message, say)."""
    if not manifest.output:
        return None
    try:
        return list(decode(list(manifest.output), output))
    except Exception:  # noqa: BLE001 - whatever eth_abi raises, the output is not that shape
        return None


def with_manifest(code: str, manifest: Manifest) -> str:
    """The code with its manifest line replaced (or added at the top)."""
    lines = code.splitlines()
    for index, line in enumerate(lines[:5]):
        if _LINE.match(line):
            lines[index] = manifest.to_line()
            return "\n".join(lines) + "\n"
    return manifest.to_line() + "\n" + code
