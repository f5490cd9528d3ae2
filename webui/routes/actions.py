"""Admin actions: each needs the admin session and the form's CSRF token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import RedirectResponse
from starlette.responses import Response
from web3.exceptions import ContractCustomError, ContractLogicError

from coprocessor.errors import CoprocessorError
from enclave.reverts import refusal
from protocol.errors import ManifestError, ProtocolError
from webui.routes.deps import AuthDep, DashboardDep

router = APIRouter(include_in_schema=False)


def admin_with_csrf(request: Request, auth: AuthDep, csrf: Annotated[str | None, Form()] = None) -> None:
    if not auth.is_admin(request):
        raise HTTPException(status_code=401, detail="log in with the admin token first")
    if not auth.csrf_ok(request, csrf):
        raise HTTPException(status_code=403, detail="missing or wrong CSRF token")


Admin = Depends(admin_with_csrf)


@router.post("/agents", dependencies=[Admin])
async def deploy(
    dashboard: DashboardDep,
    code: Annotated[str, Form()] = "",
    price: Annotated[int, Form(ge=0, lt=2**96)] = 0,
    name: Annotated[str, Form(max_length=64)] = "",
    allow_hosts: Annotated[str, Form(max_length=2048)] = "",
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    source = (await file.read()).decode("utf-8", "replace") if file is not None and file.filename else code
    if not source.strip():
        raise HTTPException(status_code=422, detail="paste the agent's code or choose a file")
    try:
        hosts = tuple(host.strip() for host in allow_hosts.split(",") if host.strip())
        agent_id = dashboard.deploy_agent(source, price, name.strip(), hosts)
    except (ManifestError, CoprocessorError, ProtocolError) as err:
        raise HTTPException(status_code=422, detail=str(err)) from err
    return RedirectResponse(f"/agents/{agent_id}", status_code=303)


@router.post("/agents/{agent_id}/pause", dependencies=[Admin])
def pause(agent_id: int, dashboard: DashboardDep) -> Response:
    dashboard.set_paused(agent_id, True)
    return RedirectResponse(f"/agents/{agent_id}", status_code=303)


@router.post("/agents/{agent_id}/unpause", dependencies=[Admin])
def unpause(agent_id: int, dashboard: DashboardDep) -> Response:
    dashboard.set_paused(agent_id, False)
    return RedirectResponse(f"/agents/{agent_id}", status_code=303)


@router.post("/agents/{agent_id}/try", dependencies=[Admin])
def try_agent(agent_id: int, dashboard: DashboardDep, input: Annotated[str, Form()] = "") -> Response:
    try:
        payload = bytes.fromhex(input[2:]) if input.startswith("0x") else input.encode()
    except ValueError as err:
        raise HTTPException(status_code=400, detail=f"the input starts with 0x but is not hex: {err}") from err
    try:
        request_id = dashboard.try_agent(agent_id, payload)
    except (ContractCustomError, ContractLogicError) as err:
        raise HTTPException(status_code=422, detail=refusal(err)) from err
    return RedirectResponse(f"/requests/0x{request_id:064x}", status_code=303)


@router.post("/keys/rotate", dependencies=[Admin])
def rotate(dashboard: DashboardDep) -> Response:
    dashboard.request_rotation()
    return RedirectResponse("/keys", status_code=303)
