"""The dashboard's FastAPI application: pages (Jinja2 + htmx), admin actions, a JSON API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from coprocessor.chain import PROJECT_ROOT
from webui import display
from webui.auth import Auth
from webui.chart import throughput_latency_svg
from webui.dashboard import Dashboard
from webui.routes import actions, api, pages

TEMPLATES = Path(__file__).parent / "templates"
HTMX = PROJECT_ROOT / "node_modules" / "htmx.org" / "dist"


class LoginRequired(Exception):
    """Reading needs a login on this dashboard (require_login_for_reading)."""


def create_app(dashboard: Dashboard, auth: Auth, require_login_for_reading: bool = False) -> FastAPI:
    app = FastAPI(title="Enclave Agents dashboard", description="Requests, agents, workers and keys, live.")
    templates = Jinja2Templates(directory=TEMPLATES)
    templates.env.globals.update(
        short=display.short,
        timestamp=display.timestamp,
        duration=display.duration_ms,
        chart_svg=throughput_latency_svg,
    )
    app.state.dashboard = dashboard
    app.state.auth = auth
    app.state.templates = templates
    app.state.require_login_for_reading = require_login_for_reading
    app.mount("/static", StaticFiles(directory=HTMX), name="static")

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
