"""Route tests: which template each page renders, with what context, and who may act.

The Dashboard (chain, store, services) is replaced here by a stand-in returning fixed data;
the browser tests drive the real one against a live stack.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bridge.stats import Window
from coprocessor.runtime.manifest import Manifest
from webui.app import create_app
from webui.auth import Auth

TOKEN = "let-me-in"


class StandInDashboard:
    def __init__(self) -> None:
        self.paused: dict[int, bool] = {}
        self.deployed: list[tuple[str, int]] = []
        self.tried: list[tuple[int, bytes]] = []
        self.rotations = 0
        self.router = type(
            "R",
            (),
            {"functions": type("F", (), {"agentCount": lambda self: type("C", (), {"call": lambda self: 1})()})()},
        )()

    def overview(self) -> dict[str, Any]:
        window = Window(seconds=60, fulfilled=3, failed=1, per_minute=3.0, p50_ms=120.0, p95_ms=300.0)
        chart = [{"minute": 0, "fulfilled": 2, "p50_ms": 100.0}, {"minute": 60, "fulfilled": 0, "p50_ms": None}]
        return {
            "counts": {"pending": 1, "fulfilled": 3},
            "minute": window,
            "hour": window,
            "chart": chart,
            "failures": [],
        }

    def requests(self, state: str, agent: str, consumer: str, page: int) -> dict[str, Any]:
        row = {
            "request_id": "7",
            "agent_id": 1,
            "consumer": "0x" + "11" * 20,
            "state": state or "fulfilled",
            "status": "OK",
            "worker": "worker-1",
            "epoch": 1,
            "requested_at": 1.0,
            "updated_at": 2.0,
        }
        return {"rows": [row], "total": 1, "page": page, "pages": 1, "states": ("pending", "fulfilled")}

    def request(self, request_id: int) -> dict[str, Any] | None:
        if request_id != 7:
            return None
        row = {
            "state": "fulfilled",
            "status": "OK",
            "agent_id": 1,
            "code_hash": "0x" + "22" * 32,
            "consumer": "0x1",
            "fee": "0",
            "callback_gas_limit": 1,
            "worker": "worker-1",
            "epoch": 1,
            "request_tx": "0xaa",
            "created_at_block": 3,
            "fulfil_tx": "0xbb",
            "gas_used": 50_000,
            "callback_succeeded": 1,
        }
        return {
            "id": 7,
            "row": row,
            "terminal": True,
            "transitions": [{"state": "pending", "at": 1.0, "detail": None}],
            "input": "hello",
            "output": "world",
            "logs": ["a log line"],
            "stats": {},
            "calls": [],
            "error": None,
        }

    def agents(self) -> list[dict[str, Any]]:
        return [self.agent(1)]

    def agent(self, agent_id: int, with_code: bool = True) -> dict[str, Any]:
        return {
            "id": agent_id,
            "codeHash": "0x" + "33" * 32,
            "price": 0,
            "version": 1,
            "paused": self.paused.get(agent_id, False),
            "restricted": False,
            "owner": "0x" + "44" * 20,
            "manifest": Manifest(name="hello"),
            "code": "export default 1;",
            "versions": [{"version": 1, "codeHash": "0x" + "33" * 32, "block": 2}],
        }

    def services(self) -> dict[str, Any]:
        worker = {
            "url": "http://w",
            "name": "worker-1",
            "healthy": False,
            "info": {"role": "worker", "epoch": 1},
            "last_seen": None,
            "quote_verified_at": None,
            "quote_error": None,
            "served": 4,
        }
        return {"workers": [worker], "gatekeepers": []}

    def keys(self) -> dict[str, Any]:
        return {
            "current": 1,
            "rotationPending": False,
            "epochs": [{"epoch": 1, "signer": "0x5", "publishedAt": 1, "key": "0x" + "55" * 32, "state": "current"}],
        }

    def deploy_agent(self, code: str, price: int) -> int:
        self.deployed.append((code, price))
        return 2

    def set_paused(self, agent_id: int, paused: bool) -> None:
        self.paused[agent_id] = paused

    def try_agent(self, agent_id: int, payload: bytes) -> int:
        self.tried.append((agent_id, payload))
        return 7

    def request_rotation(self) -> None:
        self.rotations += 1


@pytest.fixture
def dashboard() -> StandInDashboard:
    return StandInDashboard()


@pytest.fixture
def client(dashboard: StandInDashboard) -> TestClient:
    auth = Auth(hashlib.sha256(TOKEN.encode()).hexdigest(), b"secret")
    return TestClient(create_app(dashboard, auth))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "template", "keys"),
    [
        ("/", "overview.html", {"counts", "minute", "hour", "chart", "failures"}),
        ("/requests?state=fulfilled&agent=1", "requests.html", {"rows", "total", "filters", "pages"}),
        ("/requests/table?state=pending", "_requests_table.html", {"rows", "filters"}),
        ("/requests/7", "request.html", {"detail", "request_id"}),
        ("/agents", "agents.html", {"agents"}),
        ("/agents/1", "agent.html", {"agent"}),
        ("/workers", "workers.html", {"workers", "gatekeepers"}),
        ("/keys", "keys.html", {"epochs", "current", "rotationPending"}),
        ("/login", "login.html", {"failed"}),
    ],
)
def test_page_renders_its_template_with_its_context(
    client: TestClient, path: str, template: str, keys: set[str]
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.template.name == template  # type: ignore[attr-defined]
    assert keys <= set(response.context)  # type: ignore[attr-defined]
    if not template.startswith("_"):  # a full page, not a fragment that htmx swaps in
        assert "<main>" in response.text and '<script src="/static/htmx.min.js"' in response.text


def test_filters_survive_the_live_table(client: TestClient) -> None:
    page = client.get("/requests?state=fulfilled&agent=1&consumer=0xabc")
    assert page.context["filters"] == {"state": "fulfilled", "agent": "1", "consumer": "0xabc"}  # type: ignore[attr-defined]
    assert 'hx-include="#filters"' in page.text, "the polling table sends the filter form with each refresh"
    assert '<option value="fulfilled" selected>' in page.text


def test_unknown_request_page_waits_for_it(client: TestClient) -> None:
    response = client.get("/requests/0x99")
    assert response.context["detail"] is None  # type: ignore[attr-defined]
    assert "has not seen this request yet" in response.text
    assert 'hx-trigger="every 1s"' in response.text


def test_actions_need_login_then_csrf(client: TestClient, dashboard: StandInDashboard) -> None:
    assert client.post("/agents/1/pause", data={}).status_code == 401
    assert client.post("/login", data={"token": "wrong"}).status_code == 401
    login = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert login.status_code == 303 and "httponly" in login.headers["set-cookie"].lower()
    assert client.post("/agents/1/pause", data={}).status_code == 403, "no CSRF token"
    assert client.post("/agents/1/pause", data={"csrf": "forged"}).status_code == 403
    page = client.get("/agents/1")
    csrf = page.context["csrf"]  # type: ignore[attr-defined]
    assert f'value="{csrf}"' in page.text
    assert client.post("/agents/1/pause", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert dashboard.paused[1] is True
    tried = client.post("/agents/1/try", data={"csrf": csrf, "input": "hi"}, follow_redirects=False)
    assert tried.headers["location"] == f"/requests/0x{7:064x}" and dashboard.tried == [(1, b"hi")]
    deployed = client.post(
        "/agents", data={"csrf": csrf, "code": "export default 1;", "price": "5"}, follow_redirects=False
    )
    assert deployed.headers["location"] == "/agents/2" and dashboard.deployed == [("export default 1;", 5)]
    assert client.post("/keys/rotate", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert dashboard.rotations == 1


def test_reading_can_require_login(dashboard: StandInDashboard) -> None:
    auth = Auth(hashlib.sha256(TOKEN.encode()).hexdigest(), b"secret")
    client = TestClient(create_app(dashboard, auth, require_login_for_reading=True))  # type: ignore[arg-type]
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    client.post("/login", data={"token": TOKEN})
    assert client.get("/").status_code == 200


def test_json_api_and_openapi(client: TestClient) -> None:
    assert client.get("/api/overview").json()["minute"]["p50_ms"] == 120.0
    assert client.get("/api/requests/7").json()["output"] == "world"
    assert client.get("/api/requests/0x99").status_code == 404
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/overview", "/api/requests", "/api/agents", "/api/services", "/api/keys"} <= set(paths)
