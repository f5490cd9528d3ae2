"""The host side of `ctx`: the functions an agent reaches through `__host(name, argsJson)`.

`HostApi` is the seam: the worker, `enclave agent simulate` and tests build one per run and add
capabilities to it (fetch, secrets, storage and agent calls arrive as more entries). A handler
takes the decoded JSON arguments and returns a JSON-able value; raising `HostError` becomes a
JS exception with the same message in the agent.

Two records of a run are kept here, where the host decides, because the status a worker signs
must not be read back out of an error message the agent could have written itself:

- `limit_reached`: the host refused a call because a limit of the run was reached (the name
  of the `Limits` field). The engine makes a failed run with it RESOURCE_LIMIT.
- `host_error`: the host itself failed (the resolver could not ask the chain for another
  agent). The run is aborted: every later host call fails too, it reaches the root run of a
  call tree, and the engine marks the run's `Execution.host_error` even if the agent caught
  the exception and returned normally.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from eth_abi.abi import decode, encode
from eth_abi.exceptions import DecodingError, EncodingError

from coprocessor.cluster_store import ClusterStore
from coprocessor.errors import FetchError, HostError, SealingError
from coprocessor.runtime import http
from coprocessor.runtime.context import RunContext, StorageGrant
from protocol.envelope import EnvelopeError, open_for
from protocol.hexes import to_hex
from protocol.keccak import keccak256
from protocol.limits import Limits

BIGINT = "$bigint"

Handler = Callable[..., Any]
# Finds another agent for ctx.callAgent: {"codeHash", "code", "limits", "context"}; {"error"}
# for an answer about the agent (unknown, paused: the caller's failure); {"hostError"} when the
# host could not find out (the chain is unreachable: nobody's failure but the host's).
Resolver = Callable[[int], dict[str, Any]]

# `limit_reached` values: the `Limits` field of the limit.
HTTP_CALLS = "http_calls"
CALL_DEPTH = "call_depth"


def hex_to_bytes(value: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise HostError("expected a 0x hex string")
    try:
        return bytes.fromhex(value[2:])
    except ValueError as err:
        raise HostError(f"invalid hex: {err}") from err


def to_json_value(value: Any) -> Any:
    """ABI values as JSON: ints beyond 2^53 become BigInts in JS, bytes become hex."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else {BIGINT: str(value)}
    if isinstance(value, bytes):
        return to_hex(value)
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    return value


def _all_ints_big(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return {BIGINT: str(value)}
    if isinstance(value, list | tuple):
        return [_all_ints_big(v) for v in value]
    return value


def from_json_value(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {BIGINT}:
        return int(value[BIGINT])
    if isinstance(value, list):
        return [from_json_value(v) for v in value]
    return value


def _abi_value(abi_type: str, value: Any) -> Any:
    """eth-abi wants bytes for bytesN/bytes and ints for numbers; JS sends hex and strings."""
    if abi_type.endswith("]"):
        inner = abi_type[: abi_type.rindex("[")]
        return [_abi_value(inner, v) for v in value]
    if abi_type.startswith("bytes") and isinstance(value, str):
        return hex_to_bytes(value)
    if abi_type.startswith(("uint", "int")) and isinstance(value, str):
        return int(value, 0)
    return value


@dataclass
class HostApi:
    """The capabilities of one agent run, and what the run left behind (its logs)."""

    limits: Limits = field(default_factory=Limits)
    context: RunContext = field(default_factory=RunContext)
    logs: list[str] = field(default_factory=list)
    handlers: dict[str, Handler] = field(default_factory=dict)
    # Agent composition: who is calling whom, and every agent that ran (the result's provenance).
    call_stack: tuple[int, ...] = ()
    calls: list[dict[str, Any]] = field(default_factory=list)
    resolver: Resolver | None = None
    # The engine's sources for a failed run's status (module docstring): set where the host
    # raises, never derived from a message.
    limit_reached: str | None = field(default=None, init=False)
    host_error: str | None = field(default=None, init=False)
    _log_bytes: int = 0
    _store: ClusterStore | None = None
    _http_calls: int = 0
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.handlers.update(
            {
                "log": self.log,
                "hash.keccak256": lambda data: to_hex(keccak256(hex_to_bytes(data))),
                "hash.sha256": lambda data: to_hex(hashlib.sha256(hex_to_bytes(data)).digest()),
                "abi.encode": self.abi_encode,
                "abi.decode": self.abi_decode,
                "utf8.encode": lambda text: to_hex(str(text).encode("utf-8")),
                "utf8.decode": self.utf8_decode,
                "secrets": lambda: self.context.secrets,
                "request": lambda: {"consumer": self.context.consumer, "chainId": self.context.chain_id},
                "unseal": self.unseal,
                "storage.get": self.storage_get,
                "storage.set": self.storage_set,
                "storage.delete": self.storage_delete,
                "fetch": self.fetch,
                "fetchAll": self.fetch_all,
                "callAgent": self.call_agent,
            }
        )

    def register(self, name: str, handler: Handler) -> None:
        self.handlers[name] = handler

    def dispatch(self, name: str, args_json: str) -> str:
        """Called from JS; never raises, so the agent always gets an answer it can throw."""
        if self.host_error is not None:
            # The run's result is void already: refuse the rest, so that an agent which caught
            # the error ends soon instead of working on towards an answer nobody will sign.
            return json.dumps({"error": f"the run was aborted by a host error: {self.host_error}"})
        handler = self.handlers.get(name)
        if handler is None:
            return json.dumps({"error": f"unknown host function {name}"})
        try:
            args = from_json_value(json.loads(args_json))
            return json.dumps({"ok": to_json_value(handler(*args))})
        except HostError as err:
            return json.dumps({"error": str(err)})
        except (TypeError, ValueError) as err:
            return json.dumps({"error": f"{name}: {err}"})

    def log(self, line: str) -> None:
        line = str(line)
        if len(self.logs) >= self.limits.log_lines or self._log_bytes + len(line) > self.limits.log_bytes:
            return  # logs are a debugging aid: past the cap they are dropped, the run goes on
        self.logs.append(line)
        self._log_bytes += len(line)

    def abi_encode(self, types: list[str], values: list[Any]) -> str:
        if len(types) != len(values):
            raise HostError(f"abi.encode: {len(types)} types but {len(values)} values")
        try:
            return to_hex(encode(types, [_abi_value(t, v) for t, v in zip(types, values, strict=True)]))
        except (EncodingError, ValueError, TypeError) as err:
            raise HostError(f"abi.encode: {err}") from err

    def abi_decode(self, types: list[str], data: str) -> list[Any]:
        """Integers come back as BigInts, whatever their size: no mixing of Number and BigInt."""
        try:
            return [_all_ints_big(v) for v in decode(types, hex_to_bytes(data))]
        except (DecodingError, ValueError, TypeError) as err:
            raise HostError(f"abi.decode: {err}") from err

    # -- HTTP -------------------------------------------------------------------------------------

    def unseal(self, data: str) -> dict[str, str]:
        """Secrets sealed to this agent for a purpose (`protocol.envelope.seal_for`), with the
        purpose under `__for`: the agent checks that it is the request at hand's."""
        try:
            return open_for(hex_to_bytes(data), self.context.unseal_keys)
        except EnvelopeError as err:
            raise HostError(f"unseal: {err}") from err

    def _take_http_calls(self, count: int) -> None:
        if self._http_calls + count > self.limits.http_calls:
            self.limit_reached = HTTP_CALLS
            raise HostError(f"HTTP call limit of {self.limits.http_calls} reached")
        self._http_calls += count

    def _time_left_s(self) -> float:
        return self.limits.wall_time_ms / 1000 - (time.monotonic() - self._started)

    @property
    def http_calls(self) -> int:
        return self._http_calls

    def fetch(self, url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        self._take_http_calls(1)
        try:
            return http.fetch(
                url,
                options or {},
                self.context.allow_hosts,
                self.limits.http_response_bytes,
                self._time_left_s(),
                allow_private_networks=self.context.allow_private_networks,
            )
        except FetchError as err:
            raise HostError(str(err)) from err

    def fetch_all(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Fetches concurrently; each answer is a response or {"error": message}."""
        if not isinstance(requests, list) or not all(isinstance(r, dict) and "url" in r for r in requests):
            raise HostError("fetchAll takes a list of {url, method, headers, body, timeoutMs}")
        self._take_http_calls(len(requests))

        def one(request: dict[str, Any]) -> dict[str, Any]:
            options = {k: v for k, v in request.items() if k != "url"}
            try:
                return http.fetch(
                    str(request["url"]),
                    options,
                    self.context.allow_hosts,
                    self.limits.http_response_bytes,
                    self._time_left_s(),
                    allow_private_networks=self.context.allow_private_networks,
                )
            except FetchError as err:
                return {"error": str(err)}

        with ThreadPoolExecutor(max_workers=max(1, min(8, len(requests)))) as pool:
            return list(pool.map(one, requests))

    # -- agents calling agents ----------------------------------------------------------------------

    def call_agent(self, agent_id: Any, input_hex: str) -> dict[str, Any]:
        if not isinstance(agent_id, int) or agent_id <= 0:
            raise HostError("callAgent: the agent id is a positive integer")
        stack = self.call_stack or (self.context.agent_id,)
        if agent_id in stack:
            path = " -> ".join(str(a) for a in (*stack, agent_id))
            raise HostError(f"callAgent: cycle {path}")
        if len(stack) >= self.limits.call_depth:
            self.limit_reached = CALL_DEPTH
            raise HostError(f"callAgent: call depth limit of {self.limits.call_depth} reached")
        if self.resolver is None:
            raise HostError("callAgent is not available here (no chain to find other agents on)")
        try:
            resolved = self.resolver(agent_id)
        except Exception as err:  # noqa: BLE001 - a resolver that breaks could not answer: the host's failure
            resolved = {"hostError": f"the resolver failed: {err.__class__.__name__}: {err}"}
        if "hostError" in resolved:  # checked first: with both, the answer cannot be trusted
            self.host_error = str(resolved["hostError"])
            raise HostError(f"callAgent: agent {agent_id}: the host could not look it up: {self.host_error}")
        if "error" in resolved:
            raise HostError(f"callAgent: agent {agent_id}: {resolved['error']}")
        from coprocessor.runtime.engine import execute  # the engine imports this module

        limits = Limits.from_dict(resolved["limits"])
        # A callee never outlives its caller's wall time, and the root's depth limit holds for all.
        wall_time_ms = max(1, min(limits.wall_time_ms, int(self._time_left_s() * 1000)))
        limits = replace(limits, wall_time_ms=wall_time_ms, call_depth=self.limits.call_depth)
        # Private networks are a setting of the worker, not of an agent: the callee gets the
        # caller's, whatever the resolver's context says (a resolver that leaves it out must not
        # turn it off for one agent of the call tree, nor can one turn it on).
        context = replace(
            RunContext.from_wire(resolved["context"]), allow_private_networks=self.context.allow_private_networks
        )
        callee = HostApi(
            limits=limits,
            context=context,
            call_stack=(*stack, agent_id),
            calls=self.calls,
            resolver=self.resolver,
        )
        record = {"agentId": agent_id, "codeHash": resolved["codeHash"], "depth": len(stack), "status": None}
        self.calls.append(record)
        execution = execute(resolved["code"], hex_to_bytes(input_hex), limits, callee)
        record["status"] = execution.status.name
        # A callee whose logs are private keeps them, and its error text, from its caller: the
        # caller's logs and output may well be public.
        private = bool(resolved.get("privateLogs"))
        if private:
            self.logs.append(f"[agent {agent_id}] (its logs are private to its owner)")
        else:
            self.logs.extend(f"[agent {agent_id}] {line}" for line in execution.logs)
        if callee.host_error is not None:
            # Up to the root, whatever the callee made of it (it may have caught it and returned).
            self.host_error = callee.host_error
            raise HostError(f"callAgent: agent {agent_id}: the host failed under it: {self.host_error}")
        if execution.status.name != "OK":
            if callee.limit_reached == CALL_DEPTH:
                # The depth limit is the root's, for the whole tree: a callee that failed on it
                # fails its caller on it too. The callee's other limits (HTTP calls, memory) are
                # its own: its caller just sees a callee that failed.
                self.limit_reached = CALL_DEPTH
            message = "details private to its owner" if private else execution.output.decode("utf-8", "replace")
            raise HostError(f"callAgent: agent {agent_id} ended {execution.status.name}: {message}")
        return {"status": execution.status.name, "output": to_hex(execution.output)}

    def _grant(self) -> tuple[ClusterStore, StorageGrant]:
        grant = self.context.storage
        if grant is None:
            raise HostError("ctx.storage is not available here (no cluster store was given)")
        if self._store is None:
            self._store = ClusterStore(Path(grant.path))
        return self._store, grant

    @staticmethod
    def _name(name: Any) -> str:
        if not isinstance(name, str) or not 0 < len(name) <= 256:
            raise HostError("a storage key is a string of 1 to 256 characters")
        return name

    def storage_get(self, name: str) -> str | None:
        store, grant = self._grant()
        try:
            return store.get(grant.agent_id, self._name(name), grant.keys, grant.epoch)
        except SealingError as err:
            raise HostError(str(err)) from err

    def storage_set(self, name: str, value: Any) -> None:
        store, grant = self._grant()
        if not isinstance(value, str):
            raise HostError("ctx.storage.set stores strings: JSON.stringify other values")
        try:
            store.set(grant.agent_id, self._name(name), value, grant.keys[grant.epoch], grant.epoch)
        except ValueError as err:
            raise HostError(str(err)) from err

    def storage_delete(self, name: str) -> None:
        store, grant = self._grant()
        store.delete(grant.agent_id, self._name(name), grant.keys)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    @staticmethod
    def utf8_decode(data: str) -> str:
        try:
            return hex_to_bytes(data).decode("utf-8")
        except UnicodeDecodeError as err:
            raise HostError(f"input is not UTF-8 text: {err}") from err
