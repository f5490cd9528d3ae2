"""Route tests: which template each page renders, with what context, and who may act.

The session and paging tests play the attacker: forged, replayed, expired and cross-session
cookies and CSRF tokens, and page numbers out of range.

The Dashboard (chain, store, services) is replaced here by a stand-in returning fixed data;
the browser tests drive the real one against a live stack.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, TypeAdapter, ValidationError

from bridge.stats import Window
from bridge.store import Delivery, NewRequest, RequestStore
from protocol.manifest import Manifest
from protocol.results import RequestCommitment
from webui import schemas
from webui.app import create_app
from webui.auth import COOKIE, MAX_SESSIONS, Auth
from webui.dashboard import ChainStatus, Dashboard
from webui.routes.deps import MAX_PAGE

TOKEN = "let-me-in"
SECRET = b"secret"
TTL = 600
# A request id is a keccak hash and a fee a uint96: both far beyond 2^53, where JSON numbers
# stop being exact in JavaScript.
BIG_ID = 2**256 - 1
FEE = 2**96 - 1
PRICE = 2**96 - 3


# A request open on-chain that the bridge has not stored yet.
OPEN_UNSEEN = 8


class StandInDashboard:
    def __init__(self) -> None:
        self.chain_status = ChainStatus(url="http://127.0.0.1:8545", ok=True, head=7)
        self.chain_down = False
        self.listed_status = "OK"
        self.paused: dict[int, bool] = {}
        self.deployed: list[tuple[str, int]] = []
        self.deployed_as: tuple[str, tuple[str, ...]] = ("", ())
        self.tried: list[tuple[int, bytes]] = []
        self.rotations = 0
        self.manifest = Manifest(name="hello")
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
            "failures": [
                {
                    "request_id": str(BIG_ID),
                    "agent_id": 1,
                    "status": "AGENT_ERROR",
                    "reason": None,
                    "error": "boom",
                    "updated_at": 2.0,
                }
            ],
        }

    def requests(self, state: str, agent: str, consumer: str, page: int) -> dict[str, Any]:
        row = {
            "request_id": "7",
            "agent_id": 1,
            "consumer": "0x" + "11" * 20,
            "state": state or "fulfilled",
            "status": self.listed_status,
            "worker": "worker-1",
            "epoch": 1,
            "requested_at": 1.0,
            "updated_at": 2.0,
        }
        return {"rows": [row], "total": 1, "page": page, "pages": 1, "states": ("pending", "fulfilled")}

    def request_is_open(self, request_id: int) -> bool:
        return request_id == OPEN_UNSEEN

    def request(self, request_id: int) -> dict[str, Any] | None:
        if request_id not in (7, BIG_ID):
            return None
        # Every column of the bridge's row, as `Dashboard.request` passes it on.
        row = {
            "request_id": str(request_id),
            "agent_id": 1,
            "consumer": "0x1",
            "code_hash": "0x" + "22" * 32,
            "input": b"hello",
            "fee": str(FEE),
            "callback_gas_limit": 1,
            "created_at_block": 3,
            "deadline": 1_800_000_000,
            "nonce": 0,
            "price": str(FEE - 10**15),
            "operator_fee": "0",
            "subscription_id": 0,
            "assignee": "0x" + "00" * 20,
            "assigned_until": 0,
            "next_attempt_at": 0.0,
            "cancel_tx": None,
            "request_tx": "0xaa",
            "requested_at": 1.0,
            "state": "fulfilled",
            "worker": "worker-1",
            "epoch": 1,
            "status": "OK",
            "output": b"world",
            "error": None,
            "logs": '["a log line"]',
            "stats": "{}",
            "result": "{}",
            "fulfil_tx": "0xbb",
            "gas_used": 50_000,
            "callback_succeeded": 1,
            "gas_reimbursed": str(10**14),
            "refunded": str(9 * 10**14),
            "reason": None,
            "attempts": 0,
            "updated_at": 2.0,
        }
        return {
            "id": request_id,
            "row": row,
            "terminal": True,
            "transitions": [
                {"state": "pending", "at": 1.0, "detail": None},
                {"state": "fulfilled", "at": 2.0, "detail": "tx 0xbb", "after_ms": 1000.0},
            ],
            "input": "hello",
            "output": "world",
            "logs": ["a log line"],
            "stats": {},
            "calls": [{"agentId": 2, "codeHash": "0x" + "66" * 32, "depth": 1, "status": "OK"}],
            "error": None,
            "sealed_logs_bytes": None,
        }

    def chain(self) -> ChainStatus:
        return self.chain_status

    def agents(self) -> list[dict[str, Any]]:
        if self.chain_down:
            raise requests.ConnectionError("connection refused")
        return [self.agent(1, with_code=False)]

    def agent(self, agent_id: int, with_code: bool = True) -> dict[str, Any]:
        agent: dict[str, Any] = {
            "id": agent_id,
            "codeHash": "0x" + "33" * 32,
            "price": PRICE,
            "version": 1,
            "paused": self.paused.get(agent_id, False),
            "restricted": False,
            "owner": "0x" + "44" * 20,
            "manifest": self.manifest,
        }
        if with_code:
            agent["code"] = "export default 1;"
            agent["versions"] = [{"version": 1, "codeHash": "0x" + "33" * 32, "block": 2}]
        return agent

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

    def economics(self) -> dict[str, Any]:
        operator = {
            "address": "0x7", "active": True, "staked": 100 * 10**18, "unstaking": 0, "unstakeAvailableAt": 0,
            "missed": 2, "slashed": 20 * 10**18, "deliveredForOthers": 1, "fleet": "0x8",
        }  # fmt: skip
        return {
            "operatorFee": 10**14,
            "feeToken": "0x9",
            "tokensPerEth": 2_000 * 10**18,
            "fulfilGasOverhead": 60_000,
            "staking": {
                "minStake": 10**20,
                "slashAmount": 10**19,
                "assignmentWindowS": 10,
                "unstakeDelayS": 86400,
                "operators": [operator],
            },
            "subscriptions": [
                {"id": 1, "owner": "0x8", "balance": FEE, "held": 10**15, "currency": 0},
                {"id": 2, "owner": "0x8", "balance": 5 * 10**18, "held": 10**18, "currency": 1},
            ],
        }

    def deploy_agent(self, code: str, price: int, name: str = "", allow_hosts: tuple[str, ...] = ()) -> int:
        self.deployed.append((code, price))
        self.deployed_as = (name, allow_hosts)
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
        ("/economics", "economics.html", {"staking", "subscriptions", "operatorFee"}),
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


def test_a_request_open_on_chain_but_not_yet_stored_is_waited_for(client: TestClient) -> None:
    response = client.get(f"/requests/{OPEN_UNSEEN:#x}")
    assert response.context["detail"] is None
    assert "has not seen this request yet" in response.text
    assert 'hx-trigger="every 1s"' in response.text


def test_an_id_nobody_made_is_a_404_and_stops_the_polling(client: TestClient) -> None:
    page = client.get("/requests/0x99")
    assert page.status_code == 404
    assert "<main>" in page.text, "a styled page"
    assert "the router has no open request with this id" in page.text
    live = client.get("/requests/0x99/live")
    assert "No such request" in live.text
    assert "hx-trigger" not in live.text, "the fragment that replaces the polling one does not poll"
    for bad in ("/requests/0xZZ", f"/requests/{2**256:#x}"):
        assert client.get(bad).status_code == 404


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


# -- the JSON API's models and its OpenAPI document ------------------------------------------------

# Every /api/ path: a URL the stand-in answers, and the model its answer must match.
API: dict[str, tuple[str, TypeAdapter[Any]]] = {
    "/api/overview": ("/api/overview", TypeAdapter(schemas.Overview)),
    "/api/requests": ("/api/requests", TypeAdapter(schemas.RequestPage)),
    "/api/requests/{request_id}": (f"/api/requests/{BIG_ID}", TypeAdapter(schemas.RequestDetail)),
    "/api/agents": ("/api/agents", TypeAdapter(list[schemas.Agent])),
    "/api/agents/{agent_id}": ("/api/agents/1", TypeAdapter(schemas.AgentDetail)),
    "/api/services": ("/api/services", TypeAdapter(schemas.Services)),
    "/api/keys": ("/api/keys", TypeAdapter(schemas.Keys)),
    "/api/economics": ("/api/economics", TypeAdapter(schemas.Economics)),
}
JS_SAFE = 2**53


def openapi(client: TestClient) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/openapi.json").json()
    return document


def component(document: dict[str, Any], ref: str) -> dict[str, Any]:
    prefix = "#/components/schemas/"
    assert ref.startswith(prefix)
    schema: dict[str, Any] = document["components"]["schemas"][ref.removeprefix(prefix)]
    return schema


def json_integers(text: str) -> list[int]:
    """Every integer written as a JSON number in `text`."""
    found: list[int] = []

    def keep(literal: str) -> int:
        found.append(int(literal))
        return int(literal)

    json.loads(text, parse_int=keep)
    return found


def test_every_api_path_is_checked_here(client: TestClient) -> None:
    paths = {path for path in openapi(client)["paths"] if path.startswith("/api/")}
    assert paths == set(API), "a new endpoint needs its URL and model in API, so the tests below cover it"


def test_every_api_path_documents_a_named_closed_response_schema(client: TestClient) -> None:
    document = openapi(client)
    api_paths = {path: item for path, item in document["paths"].items() if path.startswith("/api/")}
    assert api_paths
    for path, item in api_paths.items():
        for method, operation in item.items():
            schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
            if schema.get("type") == "array":
                schema = schema["items"]
            assert "$ref" in schema, f"{method} {path}: the 200 answer is an anonymous schema"
            model = component(document, schema["$ref"])
            assert model["type"] == "object"
            assert model["properties"], f"{method} {path}: the 200 answer's schema has no properties"
            assert model["additionalProperties"] is False, f"{method} {path}: extra keys would be allowed"


@pytest.mark.parametrize(
    ("schema", "field"),
    [
        ("RequestDetail", "id"),
        ("RequestRow", "request_id"),
        ("RequestRow", "fee"),
        ("RequestRow", "price"),
        ("RequestSummary", "request_id"),
        ("Failure", "request_id"),
        ("Agent", "price"),
        ("AgentDetail", "price"),
    ],
)
def test_256_bit_fields_are_documented_as_decimal_strings(client: TestClient, schema: str, field: str) -> None:
    prop = openapi(client)["components"]["schemas"][schema]["properties"][field]
    assert prop["type"] == "string"
    assert prop["pattern"] == "^(0|[1-9][0-9]*)$"
    assert "2^53" in prop["description"], "the description says why it is a string"


@pytest.mark.parametrize("path", list(API))
def test_each_endpoint_answers_exactly_what_its_model_describes(client: TestClient, path: str) -> None:
    url, model = API[path]
    response = client.get(url)
    assert response.status_code == 200
    # Strict: a number where the model says string (or the reverse) fails here.
    parsed = model.validate_json(response.text, strict=True)
    assert model.dump_python(parsed, mode="json", exclude_unset=True) == response.json(), "no key left undescribed"


@pytest.mark.parametrize("path", list(API))
def test_no_answer_holds_a_json_number_beyond_2_53(client: TestClient, path: str) -> None:
    response = client.get(API[path][0])
    assert response.status_code == 200
    assert [n for n in json_integers(response.text) if abs(n) > JS_SAFE] == []


def test_the_models_refuse_a_256_bit_value_sent_as_a_json_number() -> None:
    """What makes validating a response body above a check of the wire format: the dashboard's
    Python ints become strings, but a number in JSON stays an error."""
    failure = {"agent_id": 1, "status": None, "reason": None, "error": None, "updated_at": 1.0}
    assert schemas.Failure.model_validate({**failure, "request_id": BIG_ID}).request_id == str(BIG_ID)
    assert schemas.Failure.model_validate_json(json.dumps({**failure, "request_id": str(BIG_ID)}))
    with pytest.raises(ValidationError, match="request_id"):
        schemas.Failure.model_validate_json(json.dumps({**failure, "request_id": BIG_ID}))


@pytest.mark.parametrize("spelling", [str(BIG_ID), hex(BIG_ID), f"0x{BIG_ID:064x}"])
def test_a_request_id_beyond_2_53_round_trips_exactly_as_a_string(client: TestClient, spelling: str) -> None:
    response = client.get(f"/api/requests/{spelling}")
    assert response.status_code == 200
    # Read as JavaScript would: every JSON number becomes a double.
    as_javascript_reads_it = json.loads(response.text, parse_int=float)
    assert as_javascript_reads_it["id"] == str(BIG_ID)
    assert as_javascript_reads_it["row"]["request_id"] == str(BIG_ID)
    assert as_javascript_reads_it["row"]["fee"] == str(FEE)
    assert int(as_javascript_reads_it["id"]) == BIG_ID
    again = client.get(f"/api/requests/{as_javascript_reads_it['id']}")
    assert again.json()["id"] == str(BIG_ID), "the id a client got back names the same request"


def test_prices_and_failed_request_ids_beyond_2_53_are_strings(client: TestClient) -> None:
    assert client.get("/api/agents/1").json()["price"] == str(PRICE)
    assert [agent["price"] for agent in client.get("/api/agents").json()] == [str(PRICE)]
    failure = client.get("/api/overview").json()["failures"][0]
    assert failure["request_id"] == str(BIG_ID)


@pytest.mark.parametrize(
    ("url", "path", "status", "model"),
    [
        ("/api/requests/abc", "/api/requests/{request_id}", 400, schemas.ErrorResponse),
        ("/api/requests/0x99", "/api/requests/{request_id}", 404, schemas.ErrorResponse),
        ("/api/agents/2", "/api/agents/{agent_id}", 404, schemas.ErrorResponse),
        ("/api/agents/abc", "/api/agents/{agent_id}", 400, schemas.ValidationErrorResponse),
        ("/api/requests?page=0", "/api/requests", 400, schemas.ValidationErrorResponse),
    ],
)
def test_error_answers_are_declared_and_match_their_model(
    client: TestClient, url: str, path: str, status: int, model: type[BaseModel]
) -> None:
    response = client.get(url)
    assert response.status_code == status
    model.model_validate_json(response.text, strict=True)
    declared = openapi(client)["paths"][path]["get"]["responses"][str(status)]
    assert declared["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{model.__name__}"}


LEAKED = "an-internal-value-never-to-be-sent"

# (dashboard method, URL, where in its answer a key is added by mistake)
LEAKS: list[tuple[str, str, Callable[[Any], dict[str, Any]]]] = [
    ("overview", "/api/overview", lambda answer: answer),
    ("overview", "/api/overview", lambda answer: answer["failures"][0]),
    ("requests", "/api/requests", lambda answer: answer["rows"][0]),
    ("request", "/api/requests/7", lambda answer: answer),
    ("request", "/api/requests/7", lambda answer: answer["row"]),
    ("request", "/api/requests/7", lambda answer: answer["transitions"][0]),
    ("agents", "/api/agents", lambda answer: answer[0]),
    ("agent", "/api/agents/1", lambda answer: answer),
    ("agent", "/api/agents/1", lambda answer: answer["versions"][0]),
    ("services", "/api/services", lambda answer: answer["workers"][0]),
    ("keys", "/api/keys", lambda answer: answer["epochs"][0]),
    ("economics", "/api/economics", lambda answer: answer["staking"]["operators"][0]),
]


@pytest.mark.parametrize(
    ("method", "url", "where"),
    LEAKS,
    ids=[
        "overview",
        "overview-failure",
        "requests-row",
        "request",
        "request-row",
        "request-transition",
        "agents-agent",
        "agent",
        "agent-version",
        "services-worker",
        "keys-epoch",
        "economics-operator",
    ],
)
def test_a_key_added_by_mistake_fails_the_endpoint_instead_of_leaking(
    app: FastAPI,
    dashboard: StandInDashboard,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    url: str,
    where: Callable[[Any], dict[str, Any]],
) -> None:
    client = TestClient(app, raise_server_exceptions=False)
    assert client.get(url).status_code == 200
    original = getattr(dashboard, method)

    def leaky(*args: Any, **kwargs: Any) -> Any:
        answer = original(*args, **kwargs)
        where(answer)["internal_note"] = LEAKED
        return answer

    monkeypatch.setattr(dashboard, method, leaky)
    response = client.get(url)
    assert response.status_code == 500
    assert LEAKED not in response.text


def test_a_services_own_info_is_passed_on_as_it_gave_it(
    client: TestClient, dashboard: StandInDashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one open blob: each worker and gatekeeper version says what it says."""
    original = dashboard.services

    def newer_worker() -> dict[str, Any]:
        answer = original()
        answer["workers"][0]["info"]["somethingNew"] = {"nested": [1, 2]}
        return answer

    monkeypatch.setattr(dashboard, "services", newer_worker)
    response = client.get("/api/services")
    assert response.status_code == 200
    assert response.json()["workers"][0]["info"] == {"role": "worker", "epoch": 1, "somethingNew": {"nested": [1, 2]}}


def test_an_agent_with_private_logs_shows_its_owners_key_as_hex(
    client: TestClient, dashboard: StandInDashboard
) -> None:
    # Not valid UTF-8: bytes must reach the JSON as hex, whatever they hold.
    key = bytes(range(200, 232))
    dashboard.manifest = Manifest(name="secretive", logs_key=key)
    for manifest in (client.get("/api/agents/1").json()["manifest"], client.get("/api/agents").json()[0]["manifest"]):
        assert manifest["logs_key"] == "0x" + key.hex()


def test_the_real_read_models_over_a_real_store_match_the_models(tmp_path: Path) -> None:
    """The stand-in could drift from the real Dashboard: here the bridge's own store answers."""
    store = RequestStore(tmp_path / "bridge.sqlite")
    now = time.time()
    for request_id in (BIG_ID, BIG_ID - 1):
        commitment = RequestCommitment(
            agent_id=1,
            code_hash=bytes(32),
            input_hash=bytes(32),
            consumer="0x" + "11" * 20,
            fee=FEE,
            callback_gas_limit=100_000,
            created_at=3,
            deadline=1_800_000_000,
            nonce=0,
        )
        store.record_blocks([NewRequest(request_id, commitment, b"hi", "0xaa", now)], [], 3, 3)
    result = {
        "worker": "worker-1",
        "signature": {"epoch": 1},
        "status": "OK",
        "output": "0x6869",
        "error": None,
        "logs": ["a line"],
        "stats": {"elapsed_ms": 1.5},
        "calls": [{"agentId": 2, "codeHash": "0x" + "66" * 32, "depth": 1, "status": "OK"}],
    }
    store.take("pending", "dispatched", 2)  # as the dispatcher does before a worker answers
    store.mark_executed([(BIG_ID, result)])
    store.mark_submitted([BIG_ID], "0xbb")
    store.mark_fulfilled([Delivery(BIG_ID, "0xbb", 50_000, True, "fulfilled on-chain")])
    store.move(BIG_ID - 1, "failed", "deadline passed")
    # Only the store-backed read models are used: the chain parts stay unset.
    dashboard = Dashboard.__new__(Dashboard)
    dashboard.store = store
    dashboard.worker_urls, dashboard.gatekeeper_urls, dashboard.seen = [], [], {}
    client = TestClient(create_app(dashboard, Auth(hashlib.sha256(TOKEN.encode()).hexdigest(), SECRET)))

    for path in ("/api/overview", "/api/requests", "/api/requests/{request_id}", "/api/services"):
        url, model = API[path]
        response = client.get(url)
        assert response.status_code == 200, f"{path}: {response.text}"
        assert model.dump_python(model.validate_json(response.text, strict=True), mode="json", exclude_unset=True) == (
            response.json()
        )
        assert [n for n in json_integers(response.text) if abs(n) > JS_SAFE] == []
    detail = client.get(f"/api/requests/{BIG_ID}").json()
    assert (detail["id"], detail["row"]["request_id"], detail["row"]["fee"]) == (str(BIG_ID), str(BIG_ID), str(FEE))
    assert [t["state"] for t in detail["transitions"]] == [
        "pending",
        "dispatched",
        "executed",
        "submitted",
        "fulfilled",
    ]
    assert "after_ms" not in detail["transitions"][0], "the first transition has nothing to follow"
    assert all("after_ms" in t for t in detail["transitions"][1:])
    assert detail["calls"] == result["calls"]
    failures = client.get("/api/overview").json()["failures"]
    assert [f["request_id"] for f in failures] == [str(BIG_ID - 1)]
    store.close()


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
    assert response.headers["content-type"].startswith("text/html")
    assert "<main>" in response.text, "a styled page"
    assert "query parameter page" in response.text
    assert "<script>alert" not in response.text, "what the client sent is escaped, never run"


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


@pytest.mark.parametrize("agent", ["\u00b2", "\u2460", "99999999999999999999", "9" * 5000, "-1"])
def test_odd_agent_filters_match_nothing_instead_of_failing(client: TestClient, agent: str) -> None:
    for path in ("/requests", "/requests/table", "/api/requests"):
        assert client.get(path, params={"agent": agent}).status_code == 200, path


def test_an_unreachable_chain_is_said_on_every_page_and_its_pages_answer_503(
    client: TestClient, dashboard: StandInDashboard
) -> None:
    assert "Chain unreachable" not in client.get("/").text
    dashboard.chain_status = ChainStatus(url="http://127.0.0.1:8545", ok=False, error="ReadTimeout: timed out")
    dashboard.chain_down = True
    for page in ("/", "/overview/live", "/requests"):
        shown = client.get(page)
        assert shown.status_code == 200, page
        assert "Chain unreachable" in shown.text, page
        assert "ReadTimeout: timed out" in shown.text, page
    agents = client.get("/agents")
    assert agents.status_code == 503
    assert "the chain does not answer (ConnectionError)" in agents.text
    api = client.get("/api/agents")
    assert api.status_code == 503
    assert api.json() == {"detail": "the chain does not answer (ConnectionError); try again when it is back"}


def test_a_request_delivered_with_an_error_looks_like_a_failure(
    client: TestClient, dashboard: StandInDashboard
) -> None:
    ok = client.get("/requests/table").text
    assert "state-fulfilled" in ok
    assert "status-ok" in ok
    dashboard.listed_status = "AGENT_ERROR"
    failed = client.get("/requests/table").text
    assert "state-delivered-error" in failed
    assert "fulfilled · AGENT_ERROR" in failed
    assert "status-bad" in failed


def test_prices_read_in_eth_with_the_wei_on_hover() -> None:
    from webui.display import eth

    assert eth(0) == "0 ETH"
    assert eth(10**15) == "0.001 ETH"
    assert eth(1_500_000_000_000_000_000) == "1.5 ETH"
    assert eth(1) == "0.000000000000000001 ETH"


def test_deploying_with_a_name_and_hosts(client: TestClient, dashboard: StandInDashboard) -> None:
    login(client)
    form = {"csrf": csrf_of(client), "code": "export default async () => 1;", "price": "0", "name": "mine",
            "allow_hosts": " api.example.com, prices.example.org:8443 ,"}  # fmt: skip
    assert client.post("/agents", data=form, follow_redirects=False).status_code == 303
    assert dashboard.deployed_as == ("mine", ("api.example.com", "prices.example.org:8443"))


def test_try_it_with_input_that_is_not_hex_is_a_400_page(client: TestClient, dashboard: StandInDashboard) -> None:
    login(client)
    tried = client.post("/agents/1/try", data={"csrf": csrf_of(client), "input": "0xZZ"})
    assert tried.status_code == 400
    assert "<main>" in tried.text
    assert "the input starts with 0x but is not hex" in tried.text
    assert dashboard.tried == [], "nothing was sent"


def test_a_negative_price_is_a_400_page(client: TestClient, dashboard: StandInDashboard) -> None:
    login(client)
    form = {"csrf": csrf_of(client), "code": "export default async () => 1;", "price": "-1"}
    deployed = client.post("/agents", data=form)
    assert deployed.status_code == 400
    assert "<main>" in deployed.text
    assert dashboard.deployed == []


def test_fees_and_stake_show_operators_missed_assignments_and_subscriptions(client: TestClient) -> None:
    page = client.get("/economics").text
    assert "<code>0x7</code></td><td>active</td><td>100 tokens</td>" in page
    assert "<td>2</td><td>20 tokens</td><td>1</td>" in page, "missed, slashed and delivered for others"
    assert "<td>led by <code>0x8</code></td>" in page, "its fleet"
    assert "<td>wei</td><td>79228162514.264337593543950335 ETH</td>" in page, "a subscription in wei"
    assert "<td>the fee token</td><td>5 tokens</td><td>1 tokens</td>" in page, "a subscription in the token"
    assert '<span id="token-rate">2000 tokens</span> per ETH' in page
    api = client.get("/api/economics").json()
    assert api["subscriptions"][0]["balance"] == str(FEE), "wei as decimal strings"
    assert api["staking"]["operators"][0]["missed"] == 2
