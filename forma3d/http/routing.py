"""The API's route table: handlers declare their pydantic models once, and the same models
validate requests, shape responses and generate the OpenAPI document."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import to_jsonable_python
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from forma3d.http.problems import MEDIA_TYPE, Problem, validation_problem

MAX_BODY_BYTES = 1 << 20
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
    query: tuple[str, ...] = ()
    public: bool = False


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


async def read_json(request: Request, limit: int = MAX_BODY_BYTES) -> Any:
    """The request body as JSON, refusing oversized, non-JSON and malformed bodies."""
    raw = await read_body(request, limit)
    content_type = request.headers.get("content-type", "application/json").split(";")[0]
    if raw and not content_type.strip().endswith("json"):
        raise Problem(415, f"expected a JSON body, got {content_type!r}")
    try:
        return json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise Problem(400, f"malformed JSON: {error}") from None


def json_response(value: Any, status: int = 200) -> Response:
    return JSONResponse(to_jsonable_python(value), status_code=status)


@dataclass
class ApiRouter:
    endpoints: list[Endpoint] = field(default_factory=list)

    def route(self, method: str, path: str, summary: str, *, body: type[BaseModel] | None = None,
              response: Any = None, status: int = 200, tags: tuple[str, ...] = (),
              query: tuple[str, ...] = (), public: bool = False) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.endpoints.append(Endpoint(method, path, fn, summary, body, response, status,
                                           tags, query, public))
            return fn
        return register

    def routes(self) -> list[Route]:
        by_path: dict[str, dict[str, Endpoint]] = {}
        for endpoint in self.endpoints:
            by_path.setdefault(endpoint.path, {})[endpoint.method] = endpoint
        return [Route(path, _dispatcher(methods), methods=list(methods))
                for path, methods in by_path.items()]

    def public_paths(self) -> tuple[str, ...]:
        return tuple(e.path for e in self.endpoints if e.public)

    def openapi(self, title: str, version: str, prefix: str = "") -> dict[str, Any]:
        schemas: dict[str, Any] = {}
        paths: dict[str, Any] = {}
        for e in self.endpoints:
            operation: dict[str, Any] = {
                "summary": e.summary, "tags": list(e.tags),
                "operationId": e.fn.__name__,
                "responses": {"default": {"description": "Problem",
                                          "content": {MEDIA_TYPE: {"schema": {
                                              "$ref": "#/components/schemas/Problem"}}}}},
            }
            params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                      for n in _path_params(e.path)]
            params += [{"name": n, "in": "query", "required": False,
                        "schema": {"type": "string"}} for n in e.query]
            if params:
                operation["parameters"] = params
            if e.body is not None:
                operation["requestBody"] = {"required": True, "content": {
                    "application/json": {"schema": _schema(e.body, schemas)}}}
            ok: dict[str, Any] = {"description": "OK"}
            if e.response is not None:
                ok["content"] = {"application/json": {"schema": _schema(e.response, schemas)}}
            operation["responses"][str(e.status)] = ok
            if not e.public:
                operation["security"] = [{"apiKey": []}]
            paths.setdefault(prefix + e.path, {})[e.method.lower()] = operation
        schemas["Problem"] = {"type": "object", "properties": {
            "type": {"type": "string"}, "title": {"type": "string"},
            "status": {"type": "integer"}, "detail": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "object"}}}}
        return {"openapi": "3.1.0", "info": {"title": title, "version": version},
                "paths": paths,
                "components": {"schemas": schemas, "securitySchemes": {
                    "apiKey": {"type": "http", "scheme": "bearer"}}}}


def _path_params(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]


def _schema(model: Any, schemas: dict[str, Any]) -> dict[str, Any]:
    schema = TypeAdapter(model).json_schema(ref_template=REF)
    schemas.update(schema.pop("$defs", {}))
    if isinstance(model, type) and issubclass(model, BaseModel):
        schemas[model.__name__] = schema
        return {"$ref": REF.format(model=model.__name__)}
    return schema


def _dispatcher(methods: dict[str, Endpoint]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        e = methods[request.method if request.method != "HEAD" else "GET"]
        args: list[Any] = [request]
        if e.body is not None:
            try:
                args.append(e.body.model_validate(await read_json(request)))
            except ValidationError as error:
                raise validation_problem(error) from None
        result = await e.fn(*args)
        if isinstance(result, Response):
            return result
        if e.response is not None:
            adapter = TypeAdapter(e.response)
            result = adapter.dump_python(adapter.validate_python(result), mode="json")
        return json_response(result, e.status)
    return endpoint
