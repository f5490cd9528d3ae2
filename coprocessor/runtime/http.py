"""`ctx.fetch`: HTTP for agents, to allow-listed hosts only, with capped responses.

Redirects are not followed: an allow-listed host could otherwise send the agent anywhere.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx


class FetchError(Exception):
    """Becomes a JS exception in the agent, with this message."""


def host_allowed(allow_hosts: tuple[str, ...], host: str, port: int | None) -> bool:
    """An entry `host` allows any port of it; `host:port` that port only."""
    return any(entry == host or entry == f"{host}:{port}" for entry in allow_hosts)


def fetch(
    url: str, options: dict[str, Any], allow_hosts: tuple[str, ...], max_bytes: int, timeout_s: float
) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"fetch: {url!r} is not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if not host_allowed(allow_hosts, parts.hostname, port):
        allowed = ", ".join(allow_hosts) or "none"
        raise FetchError(f"fetch: host {parts.hostname}:{port} is not on this agent's allow-list ({allowed})")
    method = str(options.get("method", "GET")).upper()
    headers = {str(k): str(v) for k, v in (options.get("headers") or {}).items()}
    body = options.get("body")
    if body is not None and not isinstance(body, str):
        raise FetchError("fetch: body is a string (JSON.stringify objects)")
    if "timeoutMs" in options:
        timeout_s = min(timeout_s, float(options["timeoutMs"]) / 1000)
    if timeout_s <= 0:
        raise FetchError("fetch: no wall time left for this request")
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=False) as client:
            with client.stream(method, url, headers=headers, content=body) as response:
                data = bytearray()
                for chunk in response.iter_bytes():
                    data.extend(chunk)
                    if len(data) > max_bytes:
                        raise FetchError(f"fetch: the response from {parts.hostname} exceeds {max_bytes} bytes")
    except httpx.TimeoutException as err:
        raise FetchError(f"fetch: {parts.hostname} did not answer within {timeout_s * 1000:.0f} ms") from err
    except httpx.HTTPError as err:
        raise FetchError(f"fetch: {method} {url} failed: {err.__class__.__name__}: {err}") from err
    return {
        "url": url,
        "status": response.status_code,
        "ok": 200 <= response.status_code < 300,
        "headers": {k.lower(): v for k, v in response.headers.items()},
        "body": data.decode("utf-8", errors="replace"),
    }
