"""The one list query language every list endpoint shares (Printago's conventions).

A `QuerySpec` whitelists what clients may filter, sort, select and include on one endpoint;
`QuerySpec.of` derives it from the resource's pydantic response model, so a column is declared
once (its type from the annotation, its SQL and abilities from `Column` metadata).
`parse_params` (GET query string) and `parse_body` (POST .../search JSON) turn client input into a
validated `Query`, collecting every problem into one `QueryError`; `compile_query` turns a `Query`
into parameterised SQL and `fetch_page` runs it. Client text reaches SQL only as bind parameters;
identifiers and expressions come only from the spec, and the tenant condition is always first.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Literal, Protocol, TypeAlias, TypedDict, Union, get_args, get_origin
from uuid import UUID

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from forma3d.messaging.text import NO_NUL_PATTERN, storable

RESERVED_PARAMS = frozenset({"sort", "limit", "offset", "meta", "fields", "include"})
BODY_KEYS = RESERVED_PARAMS | {"filter", "hints"}  # Printago's search body; hints is ignored
MAX_LIST_VALUES = 500  # in/notIn: one array parameter, but keep plans and payloads sane
MAX_FILTER_DEPTH = 6
MAX_CONDITIONS = 100
_INT64 = 2**63
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class FieldType(StrEnum):
    STR = "str"
    INT = "int"
    DECIMAL = "decimal"
    BOOL = "bool"
    DATETIME = "datetime"
    UUID = "uuid"
    ENUM = "enum"


class FieldError(TypedDict):
    field: str
    message: str


class QueryError(ValueError):
    """Bad client input. Carries every per-field problem so a client can fix them in one go."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))

    def to_problem(self) -> dict[str, Any]:
        """The application/problem+json body (RFC 9457) the HTTP layer answers with 400."""
        count = len(self.errors)
        return {
            "type": "about:blank",
            "title": "Bad Request",
            "status": 400,
            "detail": f"The list query has {count} problem{'s' if count != 1 else ''}.",
            "errors": list(self.errors),
        }


# --- declarations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One whitelisted field: the client-facing name and the trusted SQL expression behind it."""

    name: str
    type: FieldType = FieldType.STR
    column: str = ""  # SQL expression, e.g. "o.created_at"; defaults to the name
    choices: tuple[str, ...] = ()  # allowed values of an ENUM field
    filterable: bool = True
    sortable: bool = True
    # A filter over a set: `column` is then a subquery yielding the row's values (one column),
    # and a condition holds when any of them meets it (only the operators in EACH_OPERATORS).
    # Such a field is filter-only: never selected, never sorted on.
    each: bool = False
    fold: bool = False  # case-insensitive equality: the client's value is lower-cased (the
    #                     column's SQL lower-cases its side)
    permission: str = ""  # filtering on it also needs this permission (it reveals another
    #                       resource's data)
    description: str = ""  # for the OpenAPI parameters

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or self.name in BODY_KEYS:
            raise ValueError(f"invalid or reserved field name {self.name!r}")
        if (self.type is FieldType.ENUM) != bool(self.choices):
            raise ValueError(f"field {self.name!r}: choices go with, and only with, ENUM")
        if self.each and (self.sortable or not self.filterable):
            raise ValueError(f"field {self.name!r}: a set field is filterable, not sortable")
        if self.fold and self.type is not FieldType.STR:
            raise ValueError(f"field {self.name!r}: only text folds case")
        if not self.column:
            object.__setattr__(self, "column", self.name)


@dataclass(frozen=True)
class SortKey:
    field: str
    descending: bool = False


@dataclass(frozen=True)
class QuerySpec:
    """What one list endpoint exposes. Everything here is trusted server code, never client input.

    `table` is a table name or a whole FROM clause (joins included); `scope` is an optional fixed
    SQL condition (e.g. "deleted_at IS NULL") ANDed after the tenant condition.
    """

    table: str
    fields: tuple[Field, ...]
    default_sort: str = ""  # e.g. "created_at:desc"; the primary key always ends the order
    primary_key: str = "id"
    tenant_column: str = "tenant_id"
    scope: str = ""
    default_limit: int = 50
    max_limit: int = 500
    includes: frozenset[str] = frozenset()
    max_includes: int = 4
    by_name: Mapping[str, Field] = field(init=False, repr=False, compare=False)
    sort_keys: tuple[SortKey, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {f.name: f for f in self.fields}
        if len(by_name) != len(self.fields):
            raise ValueError(f"{self.table}: duplicate field names")
        if self.primary_key not in by_name:
            raise ValueError(f"{self.table}: primary key {self.primary_key!r} is not a field")
        if by_name[self.primary_key].each:
            raise ValueError(f"{self.table}: primary key {self.primary_key!r} is a set field")
        if not 1 <= self.default_limit <= self.max_limit:
            raise ValueError(f"{self.table}: default_limit must be within 1..max_limit")
        object.__setattr__(self, "by_name", by_name)
        parser = _Parser(self)
        keys = parser.sort(self.default_sort) if self.default_sort else ()
        if parser.errors:
            raise ValueError(f"{self.table}: bad default_sort: {QueryError(parser.errors)}")
        object.__setattr__(self, "sort_keys", keys)

    @property
    def columns(self) -> tuple[str, ...]:
        """The fields a row has (what `fields=` may name), in declaration order."""
        return tuple(f.name for f in self.fields if not f.each)

    @classmethod
    def of(cls, model: type[BaseModel], table: str, *, filters: tuple[Field, ...] = (),
           **options: Any) -> QuerySpec:
        """The spec of a response model: every scalar field is a column, read from
        `<alias>.<name>` (the alias is the table's last word, e.g. "print_jobs j") unless its
        `Column` says otherwise; fields holding other models are relations (includes), not
        columns. `filters` adds filter-only fields (set fields). The tenant column defaults to
        `<alias>.tenant_id`."""
        alias = table.split()[-1] if " " in table.strip() else ""
        fields = tuple(f for name, info in model.model_fields.items()
                       if (f := _field_of(name, info, alias)) is not None)
        options.setdefault("tenant_column", f"{alias}.tenant_id" if alias else "tenant_id")
        return cls(table=table, fields=fields + filters, **options)


Resource = QuerySpec


@dataclass(frozen=True)
class Column:
    """`Annotated` metadata of a response-model field: the SQL expression behind it (default
    `<alias>.<name>`) and whether clients may filter and sort on it (default: yes for scalars,
    no for JSON and arrays)."""

    sql: str = ""
    filterable: bool | None = None
    sortable: bool | None = None


_SCALARS: tuple[tuple[type, FieldType], ...] = (
    (bool, FieldType.BOOL),  # before int: bool is an int
    (int, FieldType.INT),
    (Decimal, FieldType.DECIMAL),
    (datetime, FieldType.DATETIME),
    (UUID, FieldType.UUID),
    (StrEnum, FieldType.ENUM),
    (str, FieldType.STR),
)


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        kept = [a for a in get_args(annotation) if a is not type(None)]
        if len(kept) == 1:
            return kept[0]
    return annotation


def _holds_model(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_holds_model(a) for a in get_args(annotation))


def _field_of(name: str, info: FieldInfo, alias: str) -> Field | None:
    """One response-model field as a query field; None for an embedded relation."""
    annotation = _unwrap_optional(info.annotation)
    if _holds_model(annotation):
        return None
    column = next((m for m in info.metadata if isinstance(m, Column)), Column())
    found = next((t for base, t in _SCALARS
                  if isinstance(annotation, type) and issubclass(annotation, base)), None)
    scalar = found is not None
    choices = tuple(annotation) if found is FieldType.ENUM else ()
    return Field(name, found or FieldType.STR,
                 column.sql or (f"{alias}.{name}" if alias else name), choices,
                 scalar if column.filterable is None else column.filterable,
                 scalar if column.sortable is None else column.sortable)


# --- parsed queries -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """One comparison; `value` is already converted to the field's Python type."""

    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class Group:
    joiner: Literal["AND", "OR"]
    parts: tuple[Filter, ...]


Filter: TypeAlias = Condition | Group


@dataclass(frozen=True)
class Query:
    filter: Filter | None = None
    sort: tuple[SortKey, ...] = ()  # empty: the spec's default sort
    limit: int = 50
    offset: int = 0
    fields: tuple[str, ...] = ()  # empty: every field; otherwise always starts with the key
    include: tuple[str, ...] = ()
    meta: bool = False

    def filtered_on(self) -> frozenset[str]:
        """The names of the fields the filter compares."""
        def names(node: Filter | None) -> Iterable[str]:
            if isinstance(node, Condition):
                yield node.field
            elif isinstance(node, Group):
                for part in node.parts:
                    yield from names(part)
        return frozenset(names(self.filter))

    def narrowed(self, extra: Filter) -> Query:
        """ANDs a server-side condition (e.g. a path parameter) onto the client's filter."""
        both = (self.filter, extra) if self.filter is not None else (extra,)
        return replace(self, filter=Group("AND", both) if len(both) > 1 else extra)


# --- value conversion ---------------------------------------------------------------------------


def _show(raw: object) -> str:
    text = repr(raw)
    return text if len(text) <= 60 else text[:57] + "..."


def _to_str(raw: object) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"{_show(raw)} is not a string")
    try:
        return storable(raw)  # PostgreSQL text holds neither NUL nor lone surrogates
    except ValueError as exc:
        raise ValueError(f"{_show(raw)} {exc}") from None


def _to_int(raw: object) -> int:
    if isinstance(raw, str) and re.fullmatch(r"\s*[+-]?[0-9]{1,19}\s*", raw):
        raw = int(raw)
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise ValueError(f"{_show(raw)} is not a whole number")
    if not -_INT64 <= raw < _INT64:
        raise ValueError(f"{raw} is out of the 64-bit integer range")
    return raw


def _to_decimal(raw: object) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError(f"{_show(raw)} is not a decimal number")
    try:
        value = Decimal(str(raw).strip())  # str() keeps 0.1 as 0.1, not its binary expansion
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise ValueError(f"{_show(raw)} is not a decimal number")
    if abs(value.adjusted()) > 1000:  # far beyond any column, and beyond what numeric parses
        raise ValueError(f"{_show(raw)} is out of range")
    return value


_BOOLS = {"true": True, "1": True, "false": False, "0": False}


def _to_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _BOOLS:
        return _BOOLS[raw.strip().lower()]
    raise ValueError(f"{_show(raw)} is not a boolean (use true or false)")


def _to_datetime(raw: object) -> datetime:
    if not isinstance(raw, str):
        raise ValueError(f"{_show(raw)} is not an ISO-8601 date-time")
    # An unencoded "+02:00" in a URL arrives as " 02:00"; put the sign back.
    text = re.sub(r" (\d\d:?\d\d)$", r"+\1", raw.strip())
    try:
        value = datetime.fromisoformat(text)
        # Naive means UTC here; normalising now also catches instants beyond year 1..9999.
        return value.replace(tzinfo=value.tzinfo or UTC).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"{_show(raw)} is not an ISO-8601 date-time") from None


def _to_uuid(raw: object) -> UUID:
    try:
        if isinstance(raw, str):
            return UUID(raw.strip())
    except ValueError:
        pass
    raise ValueError(f"{_show(raw)} is not a UUID")


def _to_enum(raw: object, choices: tuple[str, ...]) -> str:
    """Case-insensitive, answering with the canonical spelling: `pending` finds PENDING."""
    if isinstance(raw, str):
        for choice in choices:
            if choice.lower() == raw.strip().lower():
                return choice
    raise ValueError(f"{_show(raw)} is not one of {', '.join(choices)}")


_CONVERTERS: dict[FieldType, Callable[[object], object]] = {
    FieldType.STR: _to_str,
    FieldType.INT: _to_int,
    FieldType.DECIMAL: _to_decimal,
    FieldType.BOOL: _to_bool,
    FieldType.DATETIME: _to_datetime,
    FieldType.UUID: _to_uuid,
}


# --- operators ----------------------------------------------------------------------------------

Bind = Callable[[object], str]  # appends a parameter, returns its "$n" placeholder
Arity = Literal["one", "many", "two", "flag"]


def escape_like(text: str) -> str:
    """Makes client text literal inside a LIKE pattern (backslash is the escape character)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like(prefix: str, suffix: str) -> Callable[[str, Any, Bind], str]:
    def render(column: str, value: Any, bind: Bind) -> str:
        return f"{column} ILIKE {bind(prefix + escape_like(value) + suffix)} ESCAPE '\\'"

    return render


def _compare(sql_op: str) -> Callable[[str, Any, Bind], str]:
    return lambda column, value, bind: f"{column} {sql_op} {bind(value)}"


def _not_in(column: str, value: Any, bind: Bind) -> str:
    # NULL is "not in" any list, just as ne uses IS DISTINCT FROM and keeps NULLs.
    return f"({column} IS NULL OR {column} <> ALL({bind(list(value))}))"


_ALL = frozenset(FieldType)
_ORDERED = frozenset({FieldType.STR, FieldType.INT, FieldType.DECIMAL, FieldType.DATETIME})
_TEXT = frozenset({FieldType.STR})


@dataclass(frozen=True)
class Operator:
    name: str
    arity: Arity
    types: frozenset[FieldType]
    render: Callable[[str, Any, Bind], str]


OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in (
        Operator("eq", "one", _ALL, _compare("=")),
        Operator("ne", "one", _ALL, _compare("IS DISTINCT FROM")),
        Operator("gt", "one", _ORDERED, _compare(">")),
        Operator("gte", "one", _ORDERED, _compare(">=")),
        Operator("lt", "one", _ORDERED, _compare("<")),
        Operator("lte", "one", _ORDERED, _compare("<=")),
        Operator("contains", "one", _TEXT, _like("%", "%")),
        Operator("startsWith", "one", _TEXT, _like("", "%")),
        Operator("endsWith", "one", _TEXT, _like("%", "")),
        Operator("in", "many", _ALL, lambda c, v, bind: f"{c} = ANY({bind(list(v))})"),
        Operator("notIn", "many", _ALL, _not_in),
        Operator("isNull", "flag", _ALL, lambda c, v, bind: f"{c} IS {'' if v else 'NOT '}NULL"),
        Operator(
            "between", "two", _ORDERED, lambda c, v, b: f"{c} BETWEEN {b(v[0])} AND {b(v[1])}"
        ),
    )
}
# What a set field takes: "some value is / is among / contains ..." (a negation or an order
# over a set would read ambiguously).
EACH_OPERATORS = frozenset({"eq", "in", "contains", "startsWith", "endsWith"})


def applies(op: Operator, f: Field) -> bool:
    """Whether `op` compares values of `f`."""
    return f.type in op.types and (not f.each or op.name in EACH_OPERATORS)


# startsWith, STARTSWITH and our snake_case starts_with all name the same operator.
_OP_ALIASES = {name.lower(): name for name in OPERATORS}


def _op_name(text: str) -> str | None:
    return _OP_ALIASES.get(text.replace("_", "").lower())


# --- parsing ------------------------------------------------------------------------------------


class _HasMultiItems(Protocol):
    def multi_items(self) -> list[tuple[str, str]]: ...


Params: TypeAlias = "_HasMultiItems | Mapping[str, str | Sequence[str]] | Iterable[tuple[str, str]]"


def _pairs(params: Params) -> list[tuple[str, str]]:
    if hasattr(params, "multi_items"):  # Starlette QueryParams / MultiDict
        return list(params.multi_items())
    if isinstance(params, Mapping):
        return [(k, v) for k, vs in params.items() for v in ([vs] if isinstance(vs, str) else vs)]
    return list(params)


def _split(raw: object) -> list[object]:
    """A comma-separated string (GET) or a JSON list (POST) as a list of raw values."""
    if isinstance(raw, str):
        return [part.strip() for part in raw.split(",")]
    if isinstance(raw, list):
        return list(raw)
    raise ValueError(f"{_show(raw)} is not a list or comma-separated values")


def _sort_items(raw: object) -> list[object]:
    """Flattens "a:asc,b:desc", ["a:asc", "b:desc"] and [{"a": "asc"}, ...] into one list."""
    items = raw if isinstance(raw, list) else [] if raw in ("", None) else [raw]
    return [
        part for item in items for part in (item.split(",") if isinstance(item, str) else [item])
    ]


def _names(raw: object) -> list[str]:
    items = [] if raw in ("", None) else _split(raw)
    if not all(isinstance(item, str) and item for item in items):
        raise ValueError(f"{_show(raw)} is not a comma-separated list of names")
    return list(dict.fromkeys(str(item) for item in items))


class _Parser:
    """Collects errors instead of stopping at the first, so a 400 lists every problem."""

    def __init__(self, spec: QuerySpec) -> None:
        self.spec = spec
        self.errors: list[FieldError] = []
        self.conditions = 0

    def fail(self, name: str, message: str) -> None:
        self.errors.append({"field": name, "message": message})

    def condition(self, name: str, op_text: str, raw: object) -> Condition | None:
        f = self.spec.by_name.get(name)
        if f is None or not f.filterable:
            allowed = ", ".join(n for n, g in self.spec.by_name.items() if g.filterable)
            self.fail(name, f"unknown or unfilterable field {name!r}; filterable: {allowed}")
            return None
        op_name = _op_name(op_text)
        if op_name is None:
            self.fail(name, f"unknown operator {op_text!r}; operators: {', '.join(OPERATORS)}")
            return None
        if raw is None and op_name in ("eq", "ne"):  # JSON null: {"x": null}, {"x": {"ne": null}}
            op_name, raw = "isNull", op_name == "eq"
        op = OPERATORS[op_name]
        if not applies(op, f):
            usable = ", ".join(o.name for o in OPERATORS.values() if applies(o, f))
            self.fail(
                name, f"operator {op_name} does not apply to {f.type} field {name!r}; use {usable}"
            )
            return None
        self.conditions += 1
        try:
            return Condition(name, op_name, _ARITY[op.arity](raw, f))
        except ValueError as exc:
            self.fail(name, f"{op_name}: {exc}")
            return None

    def json_filter(self, node: object, depth: int = 1) -> Filter | None:
        if depth > MAX_FILTER_DEPTH:
            self.fail("filter", f"nested deeper than {MAX_FILTER_DEPTH} levels")
            return None
        if not isinstance(node, Mapping) or not node:
            self.fail("filter", f"expected a non-empty object, got {_show(node)}")
            return None
        parts: list[Filter | None] = []
        for key, value in node.items():
            if key in ("AND", "OR"):
                parts.append(self.json_group(key, value, depth))
            elif isinstance(value, Mapping) and value:
                parts.extend(self.condition(key, op, raw) for op, raw in value.items())
            elif isinstance(value, Mapping | list):
                self.fail(key, 'expected a value or {"operator": value}, e.g. {"in": [...]}')
            else:
                parts.append(self.condition(key, "eq", value))
        return _join("AND", parts)

    def json_group(self, joiner: Literal["AND", "OR"], items: object, depth: int) -> Filter | None:
        if not isinstance(items, list) or not items:
            self.fail("filter", f"{joiner} expects a non-empty list of filter objects")
            return None
        return _join(joiner, [self.json_filter(item, depth + 1) for item in items])

    def sort(self, raw: object) -> tuple[SortKey, ...]:
        keys: list[SortKey] = []
        for item in _sort_items(raw):
            key = self.sort_key(item)
            if key is not None and any(k.field == key.field for k in keys):
                self.fail("sort", f"field {key.field!r} is sorted on more than once")
            elif key is not None:
                keys.append(key)
        return tuple(keys)

    def sort_key(self, item: object) -> SortKey | None:
        """Accepts `a`, `a:desc`, `{"field": "a", "direction": "desc"}` and `{"a": "desc"}`."""
        if isinstance(item, Mapping) and "field" in item and set(item) <= {"field", "direction"}:
            name, direction = item["field"], item.get("direction", "asc")
        elif isinstance(item, Mapping) and len(item) == 1:
            ((name, direction),) = item.items()
        elif isinstance(item, str):
            name, _, direction = item.strip().partition(":")
        else:
            self.fail("sort", f"{_show(item)} is not field:asc or field:desc")
            return None
        f = self.spec.by_name.get(name.strip()) if isinstance(name, str) else None
        if f is None or not f.sortable:
            allowed = ", ".join(n for n, g in self.spec.by_name.items() if g.sortable)
            self.fail("sort", f"cannot sort on {_show(name)}; sortable: {allowed}")
            return None
        direction = direction.strip().lower() if isinstance(direction, str) else direction
        if direction not in ("asc", "desc", ""):
            self.fail(
                "sort", f"direction of {f.name!r} must be asc or desc, not {_show(direction)}"
            )
            return None
        return SortKey(f.name, direction == "desc")

    def number(self, name: str, raw: object, low: int, high: int) -> int | None:
        try:
            value = _to_int(raw)
        except ValueError as exc:
            self.fail(name, str(exc))
            return None
        if not low <= value <= high:
            self.fail(name, f"must be between {low} and {high}, got {value}")
            return None
        return value

    def options(self, raw: Mapping[str, object]) -> dict[str, Any]:
        spec = self.spec
        out: dict[str, Any] = {}
        out["sort"] = self.sort(raw.get("sort"))
        if "limit" in raw:
            out["limit"] = self.number("limit", raw["limit"], 1, spec.max_limit)
        if "offset" in raw:
            out["offset"] = self.number("offset", raw["offset"], 0, _INT64 - 1)
        try:
            out["meta"] = _to_bool(raw.get("meta", False))
        except ValueError as exc:
            self.fail("meta", str(exc))
        out["fields"] = self.projection(raw.get("fields"))
        out["include"] = self.include(raw.get("include"))
        return {k: v for k, v in out.items() if v is not None}

    def projection(self, raw: object) -> tuple[str, ...]:
        try:
            names = _names(raw)
        except ValueError as exc:
            self.fail("fields", str(exc))
            return ()
        columns = self.spec.columns
        unknown = [n for n in names if n not in columns]
        if unknown:
            self.fail("fields", f"unknown {', '.join(unknown)}; fields: {', '.join(columns)}")
        if not names or unknown:
            return ()
        key = self.spec.primary_key
        return (key, *(n for n in names if n != key))

    def include(self, raw: object) -> tuple[str, ...]:
        try:
            names = _names(raw)
        except ValueError as exc:
            self.fail("include", str(exc))
            return ()
        unknown = [n for n in names if n not in self.spec.includes]
        allowed = ", ".join(sorted(self.spec.includes)) or "none"
        if unknown:
            self.fail("include", f"cannot include {', '.join(unknown)}; includable: {allowed}")
        if len(names) > self.spec.max_includes:
            self.fail("include", f"at most {self.spec.max_includes} relations, got {len(names)}")
        return tuple(names)

    def finish(self, flt: Filter | None, raw_options: Mapping[str, object]) -> Query:
        options = self.options(raw_options)
        if self.conditions > MAX_CONDITIONS:
            self.fail("filter", f"more than {MAX_CONDITIONS} conditions")
        if self.errors:
            raise QueryError(self.errors)
        return Query(filter=flt, **{"limit": self.spec.default_limit, **options})


def _one(raw: object, f: Field) -> object:
    if f.type is FieldType.ENUM:
        return _to_enum(raw, f.choices)
    value = _CONVERTERS[f.type](raw)
    return value.lower() if f.fold and isinstance(value, str) else value


def _many(raw: object, f: Field) -> tuple[object, ...]:
    items = _split(raw)
    if not items or items == [""]:
        raise ValueError("needs at least one value")
    if len(items) > MAX_LIST_VALUES:
        raise ValueError(f"takes at most {MAX_LIST_VALUES} values, got {len(items)}")
    return tuple(_one(item, f) for item in items)


def _two(raw: object, f: Field) -> tuple[object, object]:
    items = _split(raw)
    if len(items) != 2:
        raise ValueError(f"needs exactly two values (low,high), got {_show(raw)}")
    low, high = _one(items[0], f), _one(items[1], f)
    if low > high:  # type: ignore[operator]  # ordered types only, both of the same type
        raise ValueError(f"low {_show(items[0])} is above high {_show(items[1])}")
    return low, high


def _flag(raw: object, f: Field) -> bool:
    return _to_bool(raw)


_ARITY: dict[Arity, Callable[[object, Field], object]] = {
    "one": _one,
    "many": _many,
    "two": _two,
    "flag": _flag,
}


def _join(joiner: Literal["AND", "OR"], parts: Iterable[Filter | None]) -> Filter | None:
    kept = tuple(p for p in parts if p is not None)
    return kept[0] if len(kept) == 1 else Group(joiner, kept) if kept else None


def parse_params(spec: QuerySpec, params: Params) -> Query:
    """GET list query: `field=value`, `field.op=value` (ANDed), plus the reserved parameters."""
    parser = _Parser(spec)
    options: dict[str, object] = {}
    conditions: list[Filter | None] = []
    for key, value in _pairs(params):
        if key in RESERVED_PARAMS and key in options:
            parser.fail(key, "given more than once")
        elif key in RESERVED_PARAMS:
            options[key] = value
        else:
            name, _, op = key.partition(".")
            conditions.append(parser.condition(name, op or "eq", value))
    return parser.finish(_join("AND", conditions), options)


def parse_body(spec: QuerySpec, body: object) -> Query:
    """POST .../search: {"filter": {...AND/OR...}, "sort", "limit", "offset", "fields",
    "include", "meta"}; an empty or missing body lists everything, like a bare GET."""
    parser = _Parser(spec)
    body = {} if body is None else body
    if not isinstance(body, Mapping):
        raise QueryError([{"field": "body", "message": "expected a JSON object"}])
    for key in body:
        if key not in BODY_KEYS:
            parser.fail(
                str(key), f"unknown key; the search body takes {', '.join(sorted(BODY_KEYS))}"
            )
    raw_filter = body.get("filter")
    flt = parser.json_filter(raw_filter) if raw_filter not in (None, {}) else None
    return parser.finish(flt, body)


# --- compiling ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledQuery:
    """asyncpg-ready SQL: `sql` selects the page, `count_sql` counts every match (for meta)."""

    sql: str
    params: tuple[object, ...]
    count_sql: str
    count_params: tuple[object, ...]


def _field(spec: QuerySpec, name: str) -> Field:
    """Every name is resolved through the whitelist again here, so a hand-built Query is as safe
    as a parsed one."""
    f = spec.by_name.get(name)
    if f is None:
        raise QueryError([{"field": name, "message": f"unknown field {name!r}"}])
    return f


def _render(spec: QuerySpec, node: Filter, bind: Bind) -> str:
    if isinstance(node, Group):
        inner = f" {node.joiner} ".join(_render(spec, part, bind) for part in node.parts)
        return f"({inner})"
    op = OPERATORS.get(node.op)
    if op is None:
        raise QueryError([{"field": node.field, "message": f"unknown operator {node.op!r}"}])
    f = _field(spec, node.field)
    if not applies(op, f):
        raise QueryError([{"field": node.field, "message": f"operator {op.name} does not apply"}])
    if f.each:
        return (f"EXISTS (SELECT 1 FROM ({f.column}) AS each_(value)"
                f" WHERE {op.render('each_.value', node.value, bind)})")
    if f.type is FieldType.INT:
        # An integer column would type $n as int4 and 2**40 would fail in the driver (a 500);
        # bigint compares with int2/int4 columns and keeps their indexes usable.
        return op.render(f.column, node.value, lambda v: _cast(bind(v), "bigint", v))
    return op.render(f.column, node.value, bind)


def _cast(placeholder: str, sql_type: str, value: object) -> str:
    return f"{placeholder}::{sql_type}{'[]' if isinstance(value, list) else ''}"


def _order_by(spec: QuerySpec, keys: tuple[SortKey, ...]) -> str:
    # The primary key last makes the order total, so offset pages never repeat or skip rows.
    if all(k.field != spec.primary_key for k in keys):
        keys = (*keys, SortKey(spec.primary_key))
    return ", ".join(
        f"{_field(spec, k.field).column} {'DESC' if k.descending else 'ASC'}" for k in keys
    )


def compile_where(spec: QuerySpec, flt: Filter | None, tenant_id: object,
                  params: list[object]) -> str:
    """The WHERE condition of `spec` and a filter, binding into `params` (empty: the tenant is
    $1). The tenant condition is always ANDed first; the client filter only narrows it."""
    if params:
        raise ValueError("the tenant is always the first parameter")
    params.append(tenant_id)

    def bind(value: object) -> str:
        params.append(value)
        return f"${len(params)}"

    where = [f"{spec.tenant_column} = $1"]
    if spec.scope:
        where.append(f"({spec.scope})")
    if flt is not None:
        where.append(_render(spec, flt, bind))
    return " AND ".join(where)


def compile_query(spec: QuerySpec, query: Query, tenant_id: object) -> CompiledQuery:
    """The page and count queries of `query` (see `compile_where`)."""
    params: list[object] = []

    def bind(value: object) -> str:
        params.append(value)
        return f"${len(params)}"

    where_sql = compile_where(spec, query.filter, tenant_id, params)
    count_params = tuple(params)
    names = query.fields or spec.columns
    columns = ", ".join(f'{_field(spec, n).column} AS "{n}"' for n in names)
    order = _order_by(spec, query.sort or spec.sort_keys)
    sql = (
        f"SELECT {columns} FROM {spec.table} WHERE {where_sql} ORDER BY {order}"
        f" LIMIT {bind(query.limit)} OFFSET {bind(query.offset)}"
    )
    count_sql = f"SELECT count(*) FROM {spec.table} WHERE {where_sql}"
    return CompiledQuery(sql, tuple(params), count_sql, count_params)


# --- running ------------------------------------------------------------------------------------

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"


def jsonable(value: Any) -> Any:
    """Our wire format: decimals as strings (money), UTC ISO-8601 times, UUIDs as strings."""
    if isinstance(value, datetime):
        utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return utc.isoformat().replace("+00:00", "Z")
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


@dataclass
class Page:
    """One page of rows (mutable, so the endpoint can attach included relations to them)."""

    data: list[dict[str, Any]]
    limit: int
    offset: int
    total: int | None = None  # set exactly when the client asked for meta

    def to_json(self) -> list[Any] | dict[str, Any]:
        data = [jsonable(row) for row in self.data]
        if self.total is None:
            return data
        return {"data": data, "total": self.total, "limit": self.limit, "offset": self.offset}


async def fetch_page(conn: Conn, spec: QuerySpec, query: Query, tenant_id: object) -> Page:
    """Runs the page query, and the count only when meta asks for it and the page can't tell."""
    compiled = compile_query(spec, query, tenant_id)
    rows = [dict(r.items()) for r in await conn.fetch(compiled.sql, *compiled.params)]
    total: int | None = None
    if query.meta and len(rows) < query.limit and (rows or query.offset == 0):
        total = query.offset + len(rows)  # a short, non-empty page ends the result set
    elif query.meta:
        total = int(await conn.fetchval(compiled.count_sql, *compiled.count_params))
    return Page(rows, query.limit, query.offset, total)


# --- documenting --------------------------------------------------------------------------------

_DECIMAL_PATTERN = r"^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?\s*$"
_INT64_SCHEMA = {"type": "integer", "minimum": -_INT64, "maximum": _INT64 - 1}


def value_schema(f: Field) -> dict[str, Any]:
    """The JSON Schema of one value of `f`, as its converter accepts it."""
    if f.type is FieldType.ENUM:
        return {"type": "string", "enum": list(f.choices)}
    schemas: dict[FieldType, dict[str, Any]] = {
        FieldType.STR: {"type": "string", "pattern": NO_NUL_PATTERN},
        FieldType.INT: dict(_INT64_SCHEMA),
        FieldType.DECIMAL: {"type": "string", "pattern": _DECIMAL_PATTERN},
        FieldType.BOOL: {"type": "boolean"},
        FieldType.DATETIME: {"type": "string", "format": "date-time"},
        FieldType.UUID: {"type": "string", "format": "uuid"},
    }
    return schemas[f.type]


def _operand_schema(f: Field, op: Operator) -> dict[str, Any]:
    one = value_schema(f)
    if op.arity == "flag":
        return {"type": "boolean"}
    if op.arity == "one":
        return one
    if f.type is FieldType.STR:  # a comma separates the values of a GET list
        one = {"type": "string", "pattern": "^[^,\\u0000]*$"}
    if op.arity == "two":
        return {"type": "array", "items": one, "minItems": 2, "maxItems": 2}
    return {"type": "array", "items": one, "minItems": 1, "maxItems": MAX_LIST_VALUES}


def _query_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "query", "required": False,
                             "description": description, "schema": schema}
    if schema.get("type") == "array":  # a=1,2,3 (form style, not exploded)
        param.update(style="form", explode=False)
    return param


def openapi_parameters(spec: QuerySpec) -> list[dict[str, Any]]:
    """The GET list parameters of `spec` as OpenAPI parameter objects: the reserved ones, and
    `field` plus `field.<op>` for every filterable field and operator its type takes."""
    sortable = "|".join(f.name for f in spec.fields if f.sortable)
    one_sort = f"({sortable})(:(asc|desc))?"
    params = [
        _query_param("sort", {"type": "string", "pattern": f"^{one_sort}(,{one_sort})*$",
                              "example": spec.default_sort or spec.primary_key},
                     "comma-separated field:asc or field:desc"),
        _query_param("limit", {"type": "integer", "minimum": 1, "maximum": spec.max_limit,
                               "default": spec.default_limit}, "page size"),
        _query_param("offset", {"type": "integer", "minimum": 0, "maximum": _INT64 - 1,
                                "default": 0}, "rows to skip"),
        _query_param("meta", {"type": "boolean", "default": False},
                     "true: answer {data, total, limit, offset}"),
        _query_param("fields", {"type": "array", "uniqueItems": True, "items": {
            "type": "string", "enum": list(spec.columns)}},
                     "the fields to return (the id always comes)"),
    ]
    if spec.includes:
        params.append(_query_param("include", {
            "type": "array", "uniqueItems": True, "maxItems": spec.max_includes,
            "items": {"type": "string", "enum": sorted(spec.includes)}},
            "related objects to embed"))
    return params + filter_parameters(spec)


def filter_parameters(spec: QuerySpec) -> list[dict[str, Any]]:
    """`field` plus `field.<op>` for every filterable field of `spec` and operator it takes."""
    params: list[dict[str, Any]] = []
    for f in spec.fields:
        if not f.filterable:
            continue
        about = f"{f.description}: " if f.description else ""
        params.append(_query_param(f.name, value_schema(f), f"{about}{f.name} equals"))
        for op in OPERATORS.values():
            if applies(op, f):
                params.append(_query_param(f"{f.name}.{op.name}", _operand_schema(f, op),
                                           f"{about}{f.name} {op.name}"))
    return params


def search_example(spec: QuerySpec) -> dict[str, Any]:
    """A search body this spec accepts: an OR of two of its own fields, sorted and paged."""
    filterable = [f for f in spec.fields if f.filterable and not f.each
                  and f.name != spec.primary_key]
    enum = next((f for f in filterable if f.type is FieldType.ENUM), None)
    text = next((f for f in filterable if f.type is FieldType.STR), None)
    conditions: list[dict[str, Any]] = []
    if enum is not None:
        conditions.append({enum.name: {"in": list(enum.choices[:2])}})
    if text is not None:
        conditions.append({text.name: {"startsWith": "A"}})
    if not conditions:
        conditions.append({spec.primary_key: {"isNull": False}})
    flt = {"OR": conditions} if len(conditions) > 1 else conditions[0]
    return {"filter": flt, "sort": spec.default_sort or spec.primary_key, "limit": 20,
            "meta": True}
