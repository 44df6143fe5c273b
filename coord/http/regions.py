"""The Kemendagri region reference data: 38 provinces and 514 regencies/cities."""

from __future__ import annotations

from typing import Literal

import msgspec
from aiohttp import web

from coord.apidoc import RegionPath, documented
from coord.http.streams import json_response
from coord.keys import REGIONS
from coord.problems import invalid, not_found
from events.domain.regions import Region

routes = web.RouteTableDef()


class RegionQuery(msgspec.Struct, kw_only=True):
    """Query of `GET /v1/regions`."""

    level: Literal["province", "regency"] | None = None
    province: str | None = None


class RegionList(msgspec.Struct, kw_only=True):
    """`GET /v1/regions`."""

    items: list[Region]
    count: int


class RegionDetail(msgspec.Struct, kw_only=True):
    """`GET /v1/regions/{code}`: a province lists its children, a regency names its province."""

    region: Region
    children: list[Region] | None = None
    province: Region | None = None


@routes.get("/v1/regions")
@documented(query=RegionQuery, responses={200: RegionList}, tags=("regions",))
async def list_regions(request: web.Request) -> web.Response:
    """Every region; `?level=province|regency` and `?province=35` narrow the list."""
    regions = request.app[REGIONS]
    level = request.query.get("level")
    if level not in (None, "province", "regency"):
        raise invalid("level must be province or regency", "query.level")
    province = request.query.get("province")
    items = [
        r
        for r in regions.all()
        if (level is None or r.level == level)
        and (province is None or r.code == province or r.province_code == province)
    ]
    return json_response({"items": items, "count": len(items)})


@routes.get("/v1/regions/{code}")
@documented(path=RegionPath, responses={200: RegionDetail}, errors=(404,), tags=("regions",))
async def get_region(request: web.Request) -> web.Response:
    """One region; a province lists its regencies and cities."""
    regions = request.app[REGIONS]
    code = request.match_info["code"]
    region = regions.get(code)
    if region is None:
        raise not_found(f"no region with code {code!r}")
    body: dict[str, object] = {"region": region}
    if region.level == "province":
        body["children"] = list(regions.children(code))
    else:
        body["province"] = regions.get(regions.province_of(code))
    return json_response(body)
