"""The JSON API: the same data as the pages, described in /openapi.json."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, HTTPException

from protocol.hexes import to_hex
from webui.routes.deps import DashboardDep, PageQuery

router = APIRouter(prefix="/api", tags=["api"])


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return to_hex(value)
    return value


@router.get("/overview", summary="Counts by state, throughput and latency, recent failures")
def overview(dashboard: DashboardDep) -> dict[str, Any]:
    data: dict[str, Any] = _plain(dashboard.overview())
    return data


@router.get("/requests", summary="Requests, newest first, filtered and paginated")
def requests(
    dashboard: DashboardDep, state: str = "", agent: str = "", consumer: str = "", page: PageQuery = 1
) -> dict[str, Any]:
    data: dict[str, Any] = _plain(dashboard.requests(state, agent, consumer, page))
    return data


@router.get("/requests/{request_id}", summary="One request: timeline, decoded input and output, provenance")
def request(request_id: str, dashboard: DashboardDep) -> dict[str, Any]:
    try:
        rid = int(request_id, 0)
    except ValueError as err:
        raise HTTPException(status_code=400, detail="request_id must be an integer, decimal or 0x-hex") from err
    detail = dashboard.request(rid)
    if detail is None:
        raise HTTPException(status_code=404, detail="unknown request")
    data: dict[str, Any] = _plain(detail)
    return data


@router.get("/agents", summary="The agents on-chain")
def agents(dashboard: DashboardDep) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = _plain(dashboard.agents())
    return data


@router.get("/agents/{agent_id}", summary="One agent, with its code and versions")
def agent(agent_id: int, dashboard: DashboardDep) -> dict[str, Any]:
    # Otherwise a negative id fails to encode and an unknown one reverts: both would answer 500.
    if not 0 < agent_id <= int(dashboard.router.functions.agentCount().call()):
        raise HTTPException(status_code=404, detail="unknown agent")
    data: dict[str, Any] = _plain(dashboard.agent(agent_id))
    return data


@router.get("/services", summary="Workers and gatekeepers: attestation, epoch, health")
def services(dashboard: DashboardDep) -> dict[str, Any]:
    data: dict[str, Any] = _plain(dashboard.services())
    return data


@router.get("/keys", summary="Key epochs and rotation state")
def keys(dashboard: DashboardDep) -> dict[str, Any]:
    data: dict[str, Any] = _plain(dashboard.keys())
    return data
