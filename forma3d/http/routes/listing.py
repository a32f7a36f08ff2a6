"""The one way a resource exposes lists: `GET <path>` and its `POST <path>/search` twin, both
through the shared query language, so every list parses, pages, includes and fails alike.

Single-object reads go through the same `QuerySpec` (`fetch_one`), so an object looks the same
in a list and on its own, and related rows (`include=`) are fetched per page in one query each.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from forma3d.http.deps import deps, tenant_of
from forma3d.http.principal import require_principal
from forma3d.http.problems import Problem
from forma3d.http.query import (
    Condition,
    Conn,
    Filter,
    Query,
    QueryError,
    QuerySpec,
    fetch_page,
    openapi_parameters,
    parse_body,
    parse_params,
    search_example,
)
from forma3d.http.routes.api import api
from forma3d.http.routing import Listing

MAX_RELATED = 10_000  # rows per include per page: a guard, far above any real order
Row = dict[str, Any]
Expander = Callable[[Conn, Any, list[Row], tuple[str, ...]], Awaitable[None]]
Narrow = Callable[[Request], Awaitable[Filter]]


class SearchBody(BaseModel):
    """POST .../search. Fields are untyped on purpose: the query language validates them and
    answers 400 with every problem listed, exactly as for the GET parameters."""

    model_config = ConfigDict(extra="allow")
    filter: Any = Field(None, description="conditions ANDed; AND/OR take lists of filters")
    sort: Any = Field(None, description='"field:asc,other:desc" or a list of them')
    limit: Any = Field(None, description="page size")
    offset: Any = Field(None, description="rows to skip")
    meta: Any = Field(None, description="true: answer {data, total, limit, offset}")
    fields: Any = Field(None, description="the fields to return (the id always comes)")
    include: Any = Field(None, description="related objects to embed")

    @model_validator(mode="before")
    @classmethod
    def _empty_is_everything(cls, data: Any) -> Any:
        return {} if data is None else data


def query_of(request: Request, spec: QuerySpec, body: SearchBody | None = None) -> Query:
    """The client's list query, or a 400 problem naming every bad parameter (403 when it
    filters on a field revealing data the caller may not read)."""
    try:
        if body is None:
            query = parse_params(spec, request.query_params)
        else:
            query = parse_body(spec, body.model_dump(exclude_unset=True))
    except QueryError as exc:
        problem = exc.to_problem()
        raise Problem(400, problem["detail"], errors=problem["errors"]) from None
    principal = require_principal(request)
    for name in sorted(query.filtered_on()):
        needed = spec.by_name[name].permission
        if needed and not principal.can(needed):
            raise Problem(403, f"filtering on {name!r} needs the permission {needed!r}, which the "
                          f"{principal.kind} does not hold")
    return query


async def fetch_one(conn: Conn, spec: QuerySpec, tenant_id: Any, key: Any, what: str) -> Row:
    """One object by primary key, shaped by the list spec; another tenant's object is a 404."""
    query = Query(filter=Condition(spec.primary_key, "eq", key), limit=1)
    page = await fetch_page(conn, spec, query, tenant_id)
    if not page.data:
        raise Problem(404, f"{what} {key} not found")
    return page.data[0]


async def fetch_related(conn: Conn, spec: QuerySpec, tenant_id: Any, field: str,
                        keys: Sequence[Any]) -> dict[Any, list[Row]]:
    """Rows of `spec` whose `field` is one of `keys`, grouped by it: one query per include."""
    wanted = tuple(dict.fromkeys(k for k in keys if k is not None))
    if not wanted:
        return {}
    query = Query(filter=Condition(field, "in", wanted), limit=MAX_RELATED)
    grouped: dict[Any, list[Row]] = defaultdict(list)
    for row in (await fetch_page(conn, spec, query, tenant_id)).data:
        grouped[row[field]].append(row)
    return grouped


def list_routes(path: str, spec: QuerySpec, *, name: str, item: type[BaseModel], tag: str,
                permission: str,
                expand: Expander | None = None, always: tuple[str, ...] = (),
                narrow: Narrow | None = None) -> None:
    """Registers `GET path` and `POST path/search` for `spec` (both need `permission`).

    `expand` attaches the relations named by `include=` (plus `always`) to the page's rows;
    `narrow` adds a server-side condition from the path (and raises 404 for a missing parent).
    """
    noun = name.replace("_", " ")
    response = Listing(item, spec.primary_key)
    params = tuple(openapi_parameters(spec))

    async def run(request: Request, query: Query) -> Response:
        if narrow is not None:
            query = query.narrowed(await narrow(request))
        tenant_id = tenant_of(request)
        async with deps(request).pool.acquire() as conn:
            page = await fetch_page(conn, spec, query, tenant_id)
            names = tuple(dict.fromkeys((*always, *query.include)))
            if expand is not None and names and page.data:
                await expand(conn, tenant_id, page.data, names)
        return JSONResponse(page.to_json())

    async def list_(request: Request) -> Response:
        return await run(request, query_of(request, spec))

    async def search(request: Request, body: SearchBody) -> Response:
        return await run(request, query_of(request, spec, body))

    list_.__name__, search.__name__ = f"list_{name}", f"search_{name}"
    api.route("GET", path, f"List {noun} (filter, sort, page, fields, include)",
              response=response, tags=(tag,), query=params, permission=permission)(list_)
    api.route("POST", f"{path}/search", f"Search {noun} with an AND/OR filter",
              body=SearchBody, response=response, tags=(tag,),
              example=search_example(spec), permission=permission, audit=False)(search)
