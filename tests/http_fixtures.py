"""Local HTTP servers standing in for external APIs (price sources, an OpenAI-compatible model)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handler = Callable[[str, str, dict[str, str], bytes], tuple[int, Any]]


class FakeApi:
    """Routes by path prefix; each handler returns (status, JSON-able body or bytes)."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        api = self

        class RequestHandler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                api.seen.append((self.command, self.path, headers, body))
                for prefix, handler in sorted(api.routes.items(), key=lambda item: -len(item[0])):
                    if self.path.startswith(prefix):
                        status, payload = handler(self.command, self.path, headers, body)
                        break
                else:
                    status, payload = 404, {"error": "no such route"}
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> FakeApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def fake_api() -> Iterator[FakeApi]:
    api = FakeApi().start()
    try:
        yield api
    finally:
        api.stop()


class PriceSources:
    """Three exchanges answering in three shapes; each can be honest, down or lying."""

    def __init__(self, api: FakeApi, price: float) -> None:
        self.api = api
        self.prices = {"a": price, "b": price, "c": price}
        self.down: set[str] = set()
        shapes: dict[str, Callable[[float], Any]] = {
            "a": lambda p: {"data": {"amount": f"{p:.2f}", "base": "ETH", "currency": "USD"}},
            "b": lambda p: {"price": str(p)},
            "c": lambda p: {"last": p},
        }
        for name, shape in shapes.items():
            api.routes[f"/{name}/"] = self._handler(name, shape)

    def _handler(self, name: str, shape: Callable[[float], Any]) -> Handler:
        def handle(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
            if name in self.down:
                return 503, {"error": "maintenance"}
            return 200, shape(self.prices[name])

        return handle

    def set_all(self, price: float) -> None:
        self.prices = dict.fromkeys(self.prices, price)

    @property
    def urls(self) -> list[str]:
        return [f"{self.api.url}/{name}/{{pair}}" for name in ("a", "b", "c")]


def openai_compatible(api: FakeApi, api_key: str) -> None:
    """An OpenAI-compatible /v1/chat/completions that checks the bearer key and echoes."""

    def complete(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        if headers.get("authorization") != f"Bearer {api_key}":
            return 401, {"error": {"message": "invalid api key"}}
        request = json.loads(body)
        prompt = request["messages"][-1]["content"]
        answer = f"You asked {request['model']}: {prompt} The answer is 4."
        return 200, {
            "id": "cmpl-1",
            "object": "chat.completion",
            "choices": [{"message": {"role": "assistant", "content": answer}}],
        }

    api.routes["/v1/chat/completions"] = complete
