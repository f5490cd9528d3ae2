"""The pages (and the fragments that htmx swaps in to keep them live)."""

from __future__ import annotations

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from webui.auth import COOKIE
from webui.routes.deps import AuthDep, DashboardDep, PageQuery, render

router = APIRouter(include_in_schema=False)


@router.get("/")
def overview(request: Request, dashboard: DashboardDep) -> Response:
    return render(request, "overview.html", nav="overview", **dashboard.overview())


@router.get("/overview/live")
def overview_live(request: Request, dashboard: DashboardDep) -> Response:
    return render(request, "_overview.html", **dashboard.overview())


@router.get("/requests")
def requests(
    request: Request,
    dashboard: DashboardDep,
    state: str = "",
    agent: str = "",
    consumer: str = "",
    page: PageQuery = 1,
) -> Response:
    filters = {"state": state, "agent": agent, "consumer": consumer}
    listing = dashboard.requests(state, agent, consumer, page)
    return render(request, "requests.html", nav="requests", filters=filters, **listing)


@router.get("/requests/table")
def requests_table(
    request: Request,
    dashboard: DashboardDep,
    state: str = "",
    agent: str = "",
    consumer: str = "",
    page: PageQuery = 1,
) -> Response:
    filters = {"state": state, "agent": agent, "consumer": consumer}
    return render(request, "_requests_table.html", filters=filters, **dashboard.requests(state, agent, consumer, page))


def _request_id(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError as err:
        raise HTTPException(status_code=404, detail=f"no such request: {text!r} is not a request id") from err
    if not 0 <= value < 2**256:
        raise HTTPException(status_code=404, detail="no such request: a request id is a uint256")
    return value


def _unknown(dashboard: DashboardDep, rid: int, detail: object) -> bool:
    """Neither stored by the bridge nor open on-chain: nothing will ever arrive under this id."""
    return detail is None and not dashboard.request_is_open(rid)


@router.get("/requests/{request_id}")
def request_detail(request: Request, request_id: str, dashboard: DashboardDep) -> Response:
    rid = _request_id(request_id)
    detail = dashboard.request(rid)
    if _unknown(dashboard, rid, detail):
        raise HTTPException(
            status_code=404,
            detail=f"no request 0x{rid:064x}: the router has no open request with this id and the bridge never saw one",
        )
    return render(request, "request.html", nav="requests", request_id=rid, detail=detail)


@router.get("/requests/{request_id}/live")
def request_live(request: Request, request_id: str, dashboard: DashboardDep) -> Response:
    rid = _request_id(request_id)
    detail = dashboard.request(rid)
    # An id nobody made stops the page's polling: the fragment comes back without its trigger.
    return render(request, "_request.html", request_id=rid, detail=detail, unknown=_unknown(dashboard, rid, detail))


@router.get("/agents")
def agents(request: Request, dashboard: DashboardDep) -> Response:
    return render(request, "agents.html", nav="agents", agents=dashboard.agents())


@router.get("/agents/{agent_id}")
def agent(request: Request, agent_id: int, dashboard: DashboardDep) -> Response:
    if not 0 < agent_id <= int(dashboard.router.functions.agentCount().call()):
        raise HTTPException(status_code=404, detail="no such agent")
    return render(request, "agent.html", nav="agents", agent=dashboard.agent(agent_id))


@router.get("/workers")
def workers(request: Request, dashboard: DashboardDep) -> Response:
    return render(request, "workers.html", nav="workers", **dashboard.services())


@router.get("/workers/live")
def workers_live(request: Request, dashboard: DashboardDep) -> Response:
    return render(request, "_workers.html", **dashboard.services())


@router.get("/keys")
def keys(request: Request, dashboard: DashboardDep) -> Response:
    return render(request, "keys.html", nav="keys", **dashboard.keys())


@router.get("/economics")
def economics(request: Request, dashboard: DashboardDep) -> Response:
    return render(request, "economics.html", nav="economics", **dashboard.economics())


@router.get("/login")
def login_form(request: Request) -> Response:
    return render(request, "login.html", nav="login", failed=False)


@router.post("/login")
def login(request: Request, auth: AuthDep, token: str = Form(...)) -> Response:
    if not auth.check_token(token):
        response = render(request, "login.html", nav="login", failed=True)
        response.status_code = 401
        return response
    # A login replaces the browser's previous session rather than leaving it live alongside.
    auth.end_session(request)
    redirect = RedirectResponse("/", status_code=303)
    redirect.set_cookie(COOKIE, auth.start_session(), max_age=auth.session_ttl, httponly=True, samesite="strict")
    return redirect


@router.post("/logout")
def logout(request: Request, auth: AuthDep) -> Response:
    # Revoked here, not just forgotten by the browser: a copy of the cookie must stop working too.
    auth.end_session(request)
    redirect = RedirectResponse("/", status_code=303)
    redirect.delete_cookie(COOKIE, httponly=True, samesite="strict")
    return redirect
