"""Shared dependencies of the routes, as Annotated aliases."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from webui.auth import Auth
from webui.dashboard import Dashboard


def get_dashboard(request: Request) -> Dashboard:
    dashboard: Dashboard = request.app.state.dashboard
    return dashboard


def get_auth(request: Request) -> Auth:
    auth: Auth = request.app.state.auth
    return auth


DashboardDep = Annotated[Dashboard, Depends(get_dashboard)]
AuthDep = Annotated[Auth, Depends(get_auth)]

# Far beyond any real listing (25 rows a page), and keeps the store's offset a small integer.
MAX_PAGE = 1_000_000
PageQuery = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"1-based page number, at most {MAX_PAGE}")]


def render(request: Request, template: str, **context: Any) -> Response:
    return render_status(request, template, 200, context)


def render_status(request: Request, template: str, status_code: int, context: dict[str, Any]) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    auth: Auth = request.app.state.auth
    admin = auth.is_admin(request)
    chain = get_dashboard(request).chain()
    return templates.TemplateResponse(
        request,
        template,
        {
            **context,
            "admin": admin,
            "csrf": auth.csrf_token(request) if admin else "",
            "login_enabled": auth.enabled,
            "chain": chain,
        },
        status_code=status_code,
    )
