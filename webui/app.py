"""The dashboard's FastAPI application: pages (Jinja2 + htmx), admin actions, a JSON API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from webui import display
from webui.auth import Auth
from webui.chart import throughput_latency_svg
from webui.dashboard import Dashboard
from webui.routes import actions, api, pages
from webui.routes.deps import render_status

TEMPLATES = Path(__file__).parent / "templates"
# Shipped inside the package (an installed dashboard has no node_modules): htmx.min.js is the
# npm package htmx.org's, pinned in package.json; a test checks the two agree.
STATIC = Path(__file__).parent / "static"


def _where(loc: tuple[int | str, ...]) -> str:
    kind, *name = loc
    return f"{kind} parameter {'.'.join(map(str, name))}" if name else str(kind)


async def bad_request(request: Request, exc: RequestValidationError) -> Response:
    """A malformed request is the client's mistake: 400, not FastAPI's default 422."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=400)
    # The page escapes what a validation message contains: a browser never runs it.
    lines = [f"{_where(tuple(error['loc']))}: {error['msg']}" for error in exc.errors()]
    return render_status(request, "error.html", 400, {"title": "Bad request", "lines": lines})


TITLES = {401: "Not logged in", 403: "Not allowed", 404: "Not found", 405: "Not allowed", 422: "Not accepted"}


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """Errors as styled pages in the browser; the API keeps FastAPI's JSON."""
    if request.url.path.startswith("/api/") or exc.status_code < 400:
        return await http_exception_handler(request, exc)
    title = TITLES.get(exc.status_code, "Something went wrong")
    page = render_status(request, "error.html", exc.status_code, {"title": title, "lines": [str(exc.detail)]})
    for name, value in (exc.headers or {}).items():
        page.headers[name] = value
    return page


async def chain_unreachable(request: Request, exc: Exception) -> Response:
    """A page or call that needed the chain while its node does not answer: 503, said plainly."""
    detail = f"the chain does not answer ({exc.__class__.__name__}); try again when it is back"
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": detail}, status_code=503)
    return render_status(request, "unavailable.html", 503, {"detail": detail})


def create_app(
    dashboard: Dashboard, auth: Auth, require_login_for_reading: bool = False, simulated_tee: bool = True
) -> FastAPI:
    app = FastAPI(title="Enclave Agents dashboard", description="Requests, agents, workers and keys, live.")
    templates = Jinja2Templates(directory=TEMPLATES)
    templates.env.globals.update(
        short=display.short,
        eth=display.eth,
        tokens=display.tokens,
        money=display.money,
        unit=display.unit,
        zip=zip,
        timestamp=display.timestamp,
        duration=display.duration_ms,
        chart_svg=throughput_latency_svg,
        simulated_tee=simulated_tee,
    )
    app.state.dashboard = dashboard
    app.state.auth = auth
    app.state.templates = templates
    app.state.require_login_for_reading = require_login_for_reading
    app.exception_handler(RequestValidationError)(bad_request)
    app.exception_handler(StarletteHTTPException)(http_error)
    # web3 over HTTP: a node that refuses or times out raises requests' errors.
    app.exception_handler(requests.RequestException)(chain_unreachable)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def reading_gate(request: Request, call_next: Any) -> Any:
        path = request.url.path
        public = path.startswith(("/login", "/static", "/healthz"))
        if require_login_for_reading and not public and not auth.is_admin(request):
            return RedirectResponse("/login", status_code=303)
        return await call_next(request)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(pages.router)
    app.include_router(actions.router)
    app.include_router(api.router)
    return app
