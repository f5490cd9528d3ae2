"""The JSON API: the same data as the pages, described in /openapi.json.

Each endpoint validates the dashboard's answer against its model in `webui.schemas` before it
sends it: the document and the answers cannot drift apart unnoticed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, HTTPException

from protocol.hexes import to_hex
from webui.routes.deps import DashboardDep, PageQuery
from webui.schemas import (
    Agent,
    AgentDetail,
    Economics,
    ErrorResponse,
    Keys,
    Overview,
    RequestDetail,
    RequestPage,
    Services,
    ValidationErrorResponse,
)

router = APIRouter(prefix="/api", tags=["api"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse, "description": "No such item"}}
BAD_PARAMETER: dict[int | str, dict[str, Any]] = {
    400: {"model": ValidationErrorResponse, "description": "A malformed parameter"}
}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # Recursing into asdict's result: a dataclass may hold bytes (a manifest's logs key).
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return to_hex(value)
    return value


@router.get("/overview", summary="Counts by state, throughput and latency, recent failures")
def overview(dashboard: DashboardDep) -> Overview:
    return Overview.model_validate(_plain(dashboard.overview()))


@router.get("/requests", summary="Requests, newest first, filtered and paginated", responses=BAD_PARAMETER)
def requests(
    dashboard: DashboardDep, state: str = "", agent: str = "", consumer: str = "", page: PageQuery = 1
) -> RequestPage:
    return RequestPage.model_validate(_plain(dashboard.requests(state, agent, consumer, page)))


@router.get(
    "/requests/{request_id}",
    summary="One request: timeline, decoded input and output, provenance",
    responses={400: {"model": ErrorResponse, "description": "The id is not an integer"}, **NOT_FOUND},
    # The first transition has no `after_ms`: left out rather than sent as null, as it always was.
    response_model_exclude_unset=True,
)
def request(request_id: str, dashboard: DashboardDep) -> RequestDetail:
    try:
        rid = int(request_id, 0)
    except ValueError as err:
        raise HTTPException(status_code=400, detail="request_id must be an integer, decimal or 0x-hex") from err
    detail = dashboard.request(rid)
    if detail is None:
        raise HTTPException(status_code=404, detail="unknown request")
    return RequestDetail.model_validate(_plain(detail))


@router.get("/agents", summary="The agents on-chain")
def agents(dashboard: DashboardDep) -> list[Agent]:
    return [Agent.model_validate(agent) for agent in _plain(dashboard.agents())]


@router.get("/agents/{agent_id}", summary="One agent, with its code and versions", responses=BAD_PARAMETER | NOT_FOUND)
def agent(agent_id: int, dashboard: DashboardDep) -> AgentDetail:
    # Otherwise a negative id fails to encode and an unknown one reverts: both would answer 500.
    if not 0 < agent_id <= int(dashboard.router.functions.agentCount().call()):
        raise HTTPException(status_code=404, detail="unknown agent")
    return AgentDetail.model_validate(_plain(dashboard.agent(agent_id)))


@router.get("/services", summary="Workers and gatekeepers: attestation, epoch, health")
def services(dashboard: DashboardDep) -> Services:
    return Services.model_validate(_plain(dashboard.services()))


@router.get("/economics", summary="Fee settings, operators with their stakes and missed assignments, subscriptions")
def economics(dashboard: DashboardDep) -> Economics:
    return Economics.model_validate(_plain(dashboard.economics()))


@router.get("/keys", summary="Key epochs and rotation state")
def keys(dashboard: DashboardDep) -> Keys:
    return Keys.model_validate(_plain(dashboard.keys()))
