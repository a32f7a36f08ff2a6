"""The API's route table: handlers declare their pydantic models once, and the same models
validate requests, shape responses and generate the OpenAPI document."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import to_jsonable_python
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from forma3d.domain.permissions import SELF, is_permission
from forma3d.http.audit import WriteTrail, answer_of, audited, status_of
from forma3d.http.principal import DECLARED, require_principal
from forma3d.http.problems import MEDIA_TYPE, Problem, validation_problem

MAX_BODY_BYTES = 1 << 20
MAX_JSON_DEPTH = 64  # our deepest body, a search filter, nests about 15 levels
MAX_NUMBER_CHARS = 64  # an int8 has 20 characters; no column holds more than this
REF = "#/components/schemas/{model}"
Handler = Callable[..., Awaitable[Any]]


@dataclass
class Endpoint:
    method: str
    path: str
    fn: Handler
    summary: str
    body: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    tags: tuple[str, ...] = ()
    query: tuple[str | dict[str, Any], ...] = ()  # a name (any string) or an OpenAPI parameter
    public: bool = False
    example: Any = None  # a request body this endpoint accepts, for the OpenAPI document
    permission: str | None = None  # `resource.action` the caller must hold (None: not yet declared)
    audit: bool | None = None  # recorded in the audit trail (None: every write method)


class UndeclaredPermission(RuntimeError):
    """A route was registered without the permission it needs."""


@dataclass(frozen=True)
class Listing:
    """The documented answer of a list endpoint: `item`s as a list, or a page of them with
    `meta=true`. Only `key` is sure to be in an item, since `fields=` picks the rest."""

    item: type[BaseModel]
    key: str = "id"


async def read_body(request: Request, limit: int = MAX_BODY_BYTES,
                    what: str = "request body") -> bytes:
    """The raw body, refused with 413 as soon as it is known to be larger than `limit`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"{what} is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"{what} is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class _Unbounded(ValueError):
    """JSON we refuse to build: a number too long to be any column's, or not finite."""


def _int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Unbounded(f"a number longer than {MAX_NUMBER_CHARS} characters")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Unbounded(f"a number longer than {MAX_NUMBER_CHARS} characters")
    value = float(text)
    if not math.isfinite(value):
        raise _Unbounded(f"the number {text} is out of range")
    return value


def _constant(text: str) -> Any:
    raise _Unbounded(f"{text} is not JSON")


def _depth(value: Any) -> int:
    """How deeply `value` nests (a scalar is 0), without recursing."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(
            node, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_json(raw: bytes, what: str = "request body") -> Any:
    """`raw` as JSON, within bounds (400 otherwise): nesting at most MAX_JSON_DEPTH, numbers of
    at most MAX_NUMBER_CHARS characters and finite, no NaN or Infinity.

    The one JSON parser for request bodies and webhooks: the standard library's answers a
    RecursionError to deep nesting and a ValueError to a 5,000-digit number, both 500s."""
    try:
        value = json.loads(raw, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise Problem(400, f"malformed JSON: {what} nested deeper than {MAX_JSON_DEPTH} "
                      "levels") from None
    except _Unbounded as error:
        raise Problem(400, f"malformed JSON: {what} holds {error}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise Problem(400, f"malformed JSON: {error}") from None
    # Counting brackets is C-speed; only a body with many of them is walked.
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _depth(value) > MAX_JSON_DEPTH:
        raise Problem(400, f"malformed JSON: {what} nested deeper than {MAX_JSON_DEPTH} levels")
    return value


async def read_json(request: Request, limit: int = MAX_BODY_BYTES) -> Any:
    """The request body as bounded JSON, refusing oversized, non-JSON and malformed bodies."""
    raw = await read_body(request, limit)
    content_type = request.headers.get("content-type", "application/json").split(";")[0]
    if raw and not content_type.strip().endswith("json"):
        raise Problem(415, f"expected a JSON body, got {content_type!r}")
    return parse_json(raw) if raw else None


def json_response(value: Any, status: int = 200) -> Response:
    return JSONResponse(to_jsonable_python(value), status_code=status)


@dataclass
class ApiRouter:
    endpoints: list[Endpoint] = field(default_factory=list)

    def route(self, method: str, path: str, summary: str, *, body: type[BaseModel] | None = None,
              response: Any = None, status: int = 200, tags: tuple[str, ...] = (),
              query: tuple[str | dict[str, Any], ...] = (), public: bool = False,
              example: Any = None, permission: str | None = None, audit: bool | None = None,
              ) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            if permission:
                DECLARED.add(permission)
            self.endpoints.append(Endpoint(method, path, fn, summary, body, response, status,
                                           tags, query, public, example, permission, audit))
            return fn
        return register

    def check_permissions(self) -> None:
        """Every route that is not public declares a well-formed permission, or the app does
        not start."""
        missing = [f"{e.method} {e.path}" for e in self.endpoints
                   if not e.public and not (e.permission and is_permission(e.permission))]
        if missing:
            raise UndeclaredPermission(
                "routes without a declared `resource.action` permission: " + ", ".join(missing))

    def routes(self) -> list[Route]:
        self.check_permissions()
        by_path: dict[str, dict[str, Endpoint]] = {}
        for endpoint in self.endpoints:
            by_path.setdefault(endpoint.path, {})[endpoint.method] = endpoint
        return [Route(path, _dispatcher(methods), methods=list(methods))
                for path, methods in by_path.items()]

    def public_routes(self) -> tuple[tuple[str, str], ...]:
        """(method, path) of the routes anyone may call."""
        return tuple((e.method, e.path) for e in self.endpoints if e.public)

    def openapi(self, title: str, version: str, prefix: str = "",
                extra_paths: dict[str, Any] | None = None) -> dict[str, Any]:
        """The OpenAPI 3.1 document of every endpoint, from the same models and query specs that
        validate requests; `extra_paths` adds endpoints served outside this router."""
        schemas: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}
        paths: dict[str, Any] = {}
        for e in self.endpoints:
            operation: dict[str, Any] = {
                "summary": e.summary, "tags": list(e.tags), "operationId": e.fn.__name__,
                "responses": {"default": PROBLEM_RESPONSE},
            }
            params = [path_parameter(n) for n in _path_params(e.path)]
            params += [q if isinstance(q, dict) else {
                "name": q, "in": "query", "required": False, "schema": {"type": "string"}}
                for q in e.query]
            if params:
                operation["parameters"] = params
            if e.body is not None:
                media: dict[str, Any] = {"schema": _schema(e.body, schemas)}
                if e.example is not None:
                    media["example"] = e.example
                operation["requestBody"] = {"required": True,
                                            "content": {"application/json": media}}
            ok: dict[str, Any] = {"description": "OK"}
            if e.response is not None:
                ok["content"] = {"application/json": {"schema": _schema(e.response, schemas)}}
            operation["responses"][str(e.status)] = ok
            if not e.public:
                operation["security"] = [{"apiKey": []}]
            paths.setdefault(prefix + e.path, {})[e.method.lower()] = operation
        paths.update(extra_paths or {})
        return {"openapi": "3.1.0", "info": {"title": title, "version": version},
                "paths": paths,
                "components": {"schemas": schemas, "securitySchemes": {
                    "apiKey": {"type": "http", "scheme": "bearer"}}}}


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["type", "title", "status", "detail"], "properties": {
        "type": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "message": {"type": "string"}}}}}}
PROBLEM_RESPONSE: dict[str, Any] = {
    "description": "Problem (RFC 9457)",
    "content": {MEDIA_TYPE: {"schema": {"$ref": REF.format(model="Problem")}}}}


def path_parameter(name: str) -> dict[str, Any]:
    """A path parameter; `..._id` ones are UUIDs (anything else answers 404)."""
    schema: dict[str, Any] = {"type": "string"}
    if name.endswith("_id"):
        schema["format"] = "uuid"
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _path_params(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]


def _schema(model: Any, schemas: dict[str, Any]) -> dict[str, Any]:
    if isinstance(model, Listing):
        return _listing(model, schemas)
    schema = TypeAdapter(model).json_schema(ref_template=REF)
    schemas.update(schema.pop("$defs", {}))
    if isinstance(model, type) and issubclass(model, BaseModel):
        schemas[model.__name__] = schema
        return {"$ref": REF.format(model=model.__name__)}
    return schema


def _listing(listing: Listing, schemas: dict[str, Any]) -> dict[str, Any]:
    _schema(listing.item, schemas)
    name = f"{listing.item.__name__}Fields"
    schemas[name] = {**schemas[listing.item.__name__], "required": [listing.key],
                     "title": f"{listing.item.__name__} (the fields asked for)"}
    item = {"$ref": REF.format(model=name)}
    page = {"type": "object", "required": ["data", "total", "limit", "offset"], "properties": {
        "data": {"type": "array", "items": item}, "total": {"type": "integer"},
        "limit": {"type": "integer"}, "offset": {"type": "integer"}}}
    return {"anyOf": [{"type": "array", "items": item}, page]}


def authorize(request: Request, endpoint: Endpoint) -> None:
    """401 without a principal, 403 without the endpoint's permission: before the body is read."""
    principal = require_principal(request)
    needed = endpoint.permission or ""
    if needed != SELF and not principal.can(needed):
        raise Problem(403, f"this needs the permission {needed!r}, which the "
                      f"{principal.kind} does not hold")


def _dispatcher(methods: dict[str, Endpoint]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        e = methods[request.method if request.method != "HEAD" else "GET"]
        if not e.public:
            authorize(request, e)
        if not audited(e.method, e.path, e.audit):
            return await _answer(e, request, None)
        # The entity as it was: the same path's GET, for a change of one thing (not a list's).
        reader = methods.get("GET") if e.method in ("PUT", "PATCH", "DELETE") else None
        trail = WriteTrail(request, e.method, e.path, reader.fn if reader else None)
        await trail.start()
        try:
            response = await _answer(e, request, trail)
        except BaseException as error:
            await trail.finish(status_of(error),
                               error.body() if isinstance(error, Problem) else None)
            raise
        await trail.finish(response.status_code, answer_of(response))
        return response
    return endpoint


async def _answer(e: Endpoint, request: Request, trail: WriteTrail | None) -> Response:
    args: list[Any] = [request]
    if e.body is not None:
        try:
            args.append(e.body.model_validate(await read_json(request)))
        except ValidationError as error:
            raise validation_problem(error) from None
        if trail is not None:
            trail.command = args[-1].model_dump(mode="json", exclude_unset=True)
    result = await e.fn(*args)
    if isinstance(result, Response):
        return result
    if e.response is not None and not isinstance(e.response, Listing):
        adapter = TypeAdapter(e.response)
        result = adapter.dump_python(adapter.validate_python(result), mode="json")
    return json_response(result, e.status)
