"""Route tests: which template each page renders, with what context, and who may act.

The session and paging tests play the attacker: forged, replayed, expired and cross-session
cookies and CSRF tokens, and page numbers out of range.

The Dashboard (chain, store, services) is replaced here by a stand-in returning fixed data;
the browser tests drive the real one against a live stack.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bridge.stats import Window
from coprocessor.runtime.manifest import Manifest
from webui.app import create_app
from webui.auth import COOKIE, MAX_SESSIONS, Auth
from webui.routes.deps import MAX_PAGE

TOKEN = "let-me-in"
SECRET = b"secret"
TTL = 600


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


class Clock:
    """A monotonic clock the tests move by hand, so expiry needs no sleeping."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auth(clock: Clock) -> Auth:
    return Auth(hashlib.sha256(TOKEN.encode()).hexdigest(), SECRET, session_ttl=TTL, clock=clock)


@pytest.fixture
def app(dashboard: StandInDashboard, auth: Auth) -> FastAPI:
    return create_app(dashboard, auth)  # type: ignore[arg-type]


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app)


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
    assert response.template.name == template
    assert keys <= set(response.context)
    if not template.startswith("_"):  # a full page, not a fragment that htmx swaps in
        assert "<main>" in response.text
        assert '<script src="/static/htmx.min.js"' in response.text


def test_filters_survive_the_live_table(client: TestClient) -> None:
    page = client.get("/requests?state=fulfilled&agent=1&consumer=0xabc")
    assert page.context["filters"] == {"state": "fulfilled", "agent": "1", "consumer": "0xabc"}
    assert 'hx-include="#filters"' in page.text, "the polling table sends the filter form with each refresh"
    assert '<option value="fulfilled" selected>' in page.text


def test_unknown_request_page_waits_for_it(client: TestClient) -> None:
    response = client.get("/requests/0x99")
    assert response.context["detail"] is None
    assert "has not seen this request yet" in response.text
    assert 'hx-trigger="every 1s"' in response.text


def test_actions_need_login_then_csrf(client: TestClient, dashboard: StandInDashboard) -> None:
    assert client.post("/agents/1/pause", data={}).status_code == 401
    assert client.post("/login", data={"token": "wrong"}).status_code == 401
    login = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert login.status_code == 303
    assert "httponly" in login.headers["set-cookie"].lower()
    assert client.post("/agents/1/pause", data={}).status_code == 403, "no CSRF token"
    assert client.post("/agents/1/pause", data={"csrf": "forged"}).status_code == 403
    page = client.get("/agents/1")
    csrf = page.context["csrf"]
    assert f'value="{csrf}"' in page.text
    assert client.post("/agents/1/pause", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert dashboard.paused[1] is True
    tried = client.post("/agents/1/try", data={"csrf": csrf, "input": "hi"}, follow_redirects=False)
    assert tried.headers["location"] == f"/requests/0x{7:064x}"
    assert dashboard.tried == [(1, b"hi")]
    deployed = client.post(
        "/agents", data={"csrf": csrf, "code": "export default 1;", "price": "5"}, follow_redirects=False
    )
    assert deployed.headers["location"] == "/agents/2"
    assert dashboard.deployed == [("export default 1;", 5)]
    assert client.post("/keys/rotate", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert dashboard.rotations == 1


def test_reading_can_require_login(dashboard: StandInDashboard) -> None:
    auth = Auth(hashlib.sha256(TOKEN.encode()).hexdigest(), SECRET)
    client = TestClient(create_app(dashboard, auth, require_login_for_reading=True))  # type: ignore[arg-type]
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    token = login(client)
    assert client.get("/").status_code == 200
    client.post("/logout")
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    stolen = TestClient(client.app)
    stolen.cookies.set(COOKIE, token)
    assert stolen.get("/", follow_redirects=False).headers["location"] == "/login", "revoked, so no reading"


def test_json_api_and_openapi(client: TestClient) -> None:
    assert client.get("/api/overview").json()["minute"]["p50_ms"] == 120.0
    assert client.get("/api/requests/7").json()["output"] == "world"
    assert client.get("/api/requests/0x99").status_code == 404
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/overview", "/api/requests", "/api/agents", "/api/services", "/api/keys"} <= set(paths)


# -- sessions, as an attacker would try them ----------------------------------------------------


def login(client: TestClient) -> str:
    response = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert response.status_code == 303
    token: str = response.cookies[COOKIE]
    return token


def browser_with(app: FastAPI, cookie: str) -> TestClient:
    """Another browser, presenting a cookie it got hold of (or made up)."""
    browser = TestClient(app)
    browser.cookies.set(COOKIE, cookie)
    return browser


def is_admin(client: TestClient) -> bool:
    page = client.get("/agents/1")
    assert page.status_code == 200
    admin: bool = page.context["admin"]
    assert ('action="/logout"' in page.text) is admin
    return admin


def csrf_of(client: TestClient) -> str:
    page = client.get("/agents/1")
    assert page.context["admin"] is True
    csrf: str = page.context["csrf"]
    return csrf


def pause(client: TestClient, csrf: str) -> int:
    status: int = client.post("/agents/1/pause", data={"csrf": csrf}, follow_redirects=False).status_code
    return status


def old_style_session() -> str:
    """The cookie every login used to get: a constant anyone with the secret could compute."""
    return hmac.new(SECRET, b"admin-session", hashlib.sha256).hexdigest()


@pytest.mark.parametrize("forged", [old_style_session(), secrets.token_urlsafe(32)], ids=["old-constant", "random"])
def test_a_forged_cookie_is_not_admin_and_cannot_act(
    app: FastAPI, client: TestClient, dashboard: StandInDashboard, forged: str
) -> None:
    login(client)  # a real admin is logged in meanwhile: a live session must not make forgeries pass
    attacker = browser_with(app, forged)
    assert not is_admin(attacker)
    csrf = hmac.new(SECRET, b"csrf:" + forged.encode(), hashlib.sha256).hexdigest()  # even knowing the secret
    assert pause(attacker, csrf) == 401
    assert attacker.post("/keys/rotate", data={"csrf": csrf}).status_code == 401
    assert attacker.post("/agents", data={"csrf": csrf, "code": "export default 1;"}).status_code == 401
    assert dashboard.paused == {}
    assert dashboard.rotations == 0
    assert dashboard.deployed == []


def test_the_server_keeps_only_a_digest_and_the_digest_is_no_cookie(
    app: FastAPI, client: TestClient, auth: Auth, dashboard: StandInDashboard
) -> None:
    token = login(client)
    digest = hashlib.sha256(token.encode()).hexdigest()
    state = repr(vars(auth))
    assert token not in state
    assert digest in state
    attacker = browser_with(app, digest)  # what a look at the server's memory would give
    assert not is_admin(attacker)
    assert pause(attacker, hmac.new(SECRET, b"csrf:" + digest.encode(), hashlib.sha256).hexdigest()) == 401
    assert dashboard.paused == {}


def test_the_session_cookie_is_httponly_strict_and_lives_as_long_as_the_session(client: TestClient) -> None:
    response = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    attributes = {
        part.strip().split("=")[0].lower(): part.strip() for part in response.headers["set-cookie"].split(";")
    }
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "samesite=strict"
    assert attributes["max-age"].lower() == f"max-age={TTL}"
    assert response.cookies[COOKIE] != old_style_session()


def test_every_login_gets_its_own_token(app: FastAPI) -> None:
    first, second = TestClient(app), TestClient(app)
    first_token, second_token = login(first), login(second)
    assert first_token != second_token
    assert len(first_token) >= 43, "32 random bytes, base64url"
    assert is_admin(first)
    assert is_admin(second)
    first.post("/logout")
    assert not is_admin(browser_with(app, first_token))
    assert is_admin(second), "one admin logging out does not log the other out"


def test_logging_in_again_replaces_the_browsers_session(app: FastAPI, client: TestClient) -> None:
    old = login(client)
    old_csrf = csrf_of(client)
    new = login(client)
    assert new != old
    assert not is_admin(browser_with(app, old))
    assert pause(client, old_csrf) == 403, "the old session's CSRF token went with it"
    assert pause(client, csrf_of(client)) == 303


def test_a_captured_cookie_stops_working_after_logout(
    app: FastAPI, client: TestClient, auth: Auth, dashboard: StandInDashboard
) -> None:
    token = login(client)
    csrf = csrf_of(client)
    stolen = browser_with(app, token)
    assert is_admin(stolen), "a copy of a live cookie works like the original: hence revocation"
    logout = client.post("/logout", follow_redirects=False)
    assert logout.status_code == 303
    assert COOKIE not in client.cookies
    assert not is_admin(stolen)
    assert pause(stolen, csrf) == 401
    assert stolen.post("/agents/1/pause", data={}, headers={"x-csrf-token": csrf}).status_code == 401
    assert dashboard.paused == {}
    assert auth.live_sessions() == 0


def test_an_expired_session_is_refused(
    client: TestClient, clock: Clock, auth: Auth, dashboard: StandInDashboard
) -> None:
    login(client)
    csrf = csrf_of(client)
    clock.now += TTL - 1
    assert is_admin(client), "still within its lifetime"
    clock.now += 1
    assert not is_admin(client), "expiry is absolute: using the session just before did not extend it"
    assert pause(client, csrf) == 401
    assert dashboard.paused == {}
    assert auth.live_sessions() == 0


def test_csrf_from_one_session_does_not_validate_for_another(app: FastAPI, dashboard: StandInDashboard) -> None:
    alice, mallory = TestClient(app), TestClient(app)
    login(alice)
    login(mallory)
    alice_csrf, mallory_csrf = csrf_of(alice), csrf_of(mallory)
    assert alice_csrf != mallory_csrf
    assert pause(mallory, alice_csrf) == 403
    assert mallory.post("/agents/1/pause", data={}, headers={"x-csrf-token": alice_csrf}).status_code == 403
    assert dashboard.paused == {}
    assert pause(alice, alice_csrf) == 303
    assert dashboard.paused == {1: True}


def test_a_login_loop_cannot_grow_the_sessions_without_bound(dashboard: StandInDashboard, clock: Clock) -> None:
    auth = Auth(hashlib.sha256(TOKEN.encode()).hexdigest(), SECRET, max_sessions=3, clock=clock)
    app = create_app(dashboard, auth)  # type: ignore[arg-type]
    tokens = [login(TestClient(app)) for _ in range(5)]
    assert auth.live_sessions() == 3
    assert [is_admin(browser_with(app, token)) for token in tokens] == [False, False, True, True, True]


def test_the_default_bound_is_a_thousand_sessions() -> None:
    auth = Auth(hashlib.sha256(TOKEN.encode()).hexdigest(), SECRET)
    for _ in range(1_050):
        auth.start_session()
    assert auth.live_sessions() == MAX_SESSIONS == 1_000


# -- paging and other integers from the client ----------------------------------------------------

BAD_PAGES = ["99999999999999999999", "0", "-1", "abc", str(MAX_PAGE + 1), "1.5", "", "<script>alert(1)</script>"]


@pytest.mark.parametrize("path", ["/requests", "/requests/table"])
@pytest.mark.parametrize("page", BAD_PAGES)
def test_a_bad_page_number_is_a_400_on_the_pages(client: TestClient, path: str, page: str) -> None:
    response = client.get(path, params={"page": page})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain"), "never rendered as HTML"
    assert "query parameter page" in response.text


@pytest.mark.parametrize("page", BAD_PAGES)
def test_a_bad_page_number_is_a_400_in_the_api(client: TestClient, page: str) -> None:
    response = client.get("/api/requests", params={"page": page})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert [error["loc"] for error in response.json()["detail"]] == [["query", "page"]]


@pytest.mark.parametrize("page", [1, MAX_PAGE])
def test_page_numbers_within_bounds_are_served_unclamped(client: TestClient, page: int) -> None:
    assert client.get("/requests", params={"page": page}).context["page"] == page
    assert client.get("/requests/table", params={"page": page}).context["page"] == page
    assert client.get("/api/requests", params={"page": page}).json()["page"] == page


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/requests/abc", 400),
        ("/api/agents/abc", 400),
        ("/api/agents/-1", 404),
        ("/api/agents/0", 404),
        ("/api/agents/99999999999999999999", 404),
        ("/agents/abc", 400),
        ("/agents/-1", 404),
        ("/agents/99999999999999999999", 404),
    ],
)
def test_bad_ids_are_client_errors_not_500(client: TestClient, path: str, status: int) -> None:
    assert client.get(path).status_code == status


def test_htmx_ships_inside_the_package_and_matches_the_pinned_npm_release(client: TestClient) -> None:
    from protocol.deployment import PROJECT_ROOT
    from webui.app import STATIC

    vendored = (STATIC / "htmx.min.js").read_bytes()
    assert vendored == (PROJECT_ROOT / "node_modules" / "htmx.org" / "dist" / "htmx.min.js").read_bytes()
    served = client.get("/static/htmx.min.js")
    assert served.status_code == 200
    assert served.content == vendored
