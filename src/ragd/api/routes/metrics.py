"""``GET /metrics``: Prometheus text exposition, for the addresses allowed to read it."""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from ragd.api.bodies import JsonBodyRoute
from ragd.api.deps import ContainerDep
from ragd.errors import Forbidden
from ragd.telemetry import metrics

router = APIRouter(tags=["health"], route_class=JsonBodyRoute)


def address_allowed(host: str | None, allowed: list[str]) -> bool:
    """True when ``host`` (the client address) is inside one of ``allowed``
    (addresses or CIDRs; ``*`` admits everyone)."""
    if "*" in allowed:
        return True
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name such as "testclient" is no address to trust
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in ipaddress.ip_network(net, strict=False) for net in allowed)


@router.get(
    "/metrics",
    summary="Prometheus metrics (clients in RAGD_METRICS_ALLOW only)",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
        403: {"description": "The client address is not in RAGD_METRICS_ALLOW"},
    },
)
async def scrape(request: Request, container: ContainerDep) -> Response:
    client = request.client.host if request.client else None
    if not address_allowed(client, container.settings.metrics_allow):
        raise Forbidden("this address may not read metrics (see RAGD_METRICS_ALLOW)")
    body, content_type = await run_in_threadpool(metrics.render, container.database.inventory)
    return Response(body, media_type=content_type)
