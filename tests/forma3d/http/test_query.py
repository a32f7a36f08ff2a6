"""Pure tests of the list query language: parsing, validation and SQL compilation (no database)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel
from starlette.datastructures import QueryParams

from forma3d.http.query import (
    MAX_CONDITIONS,
    MAX_FILTER_DEPTH,
    OPERATORS,
    Column,
    CompiledQuery,
    Condition,
    Field,
    FieldError,
    FieldType,
    Group,
    Page,
    Query,
    QueryError,
    QuerySpec,
    SortKey,
    compile_query,
    escape_like,
    jsonable,
    openapi_parameters,
    parse_body,
    parse_params,
)

TENANT = uuid.UUID("00000000-0000-0000-0000-0000000000aa")
STATES = ("PENDING", "PROCESSING", "FULFILLED", "CANCELLED")
SPEC = QuerySpec(
    table="orders o",
    fields=(
        Field("id", FieldType.UUID, "o.id"),
        Field("name", column="o.name"),
        Field("quantity", FieldType.INT, "o.quantity"),
        Field("price", FieldType.DECIMAL, "o.price"),
        Field("rush", FieldType.BOOL, "o.rush"),
        Field("created_at", FieldType.DATETIME, "o.created_at"),
        Field("printer_id", FieldType.UUID, "o.printer_id"),
        Field("status", FieldType.ENUM, "o.status", choices=STATES),
        Field("notes", column="o.notes", filterable=False, sortable=False),
    ),
    default_sort="created_at:desc",
    tenant_column="o.tenant_id",
    includes=frozenset({"lines", "lines.part", "shipment"}),
    max_includes=2,
)
ALL_COLUMNS = (
    'o.id AS "id", o.name AS "name", o.quantity AS "quantity", o.price AS "price", '
    'o.rush AS "rush", o.created_at AS "created_at", o.printer_id AS "printer_id", '
    'o.status AS "status", o.notes AS "notes"'
)


def compiled(params: Any) -> CompiledQuery:
    return compile_query(SPEC, parse_params(SPEC, params), TENANT)


def where(c: CompiledQuery) -> str:
    """The WHERE clause without the tenant condition, which every query starts with."""
    clause = c.count_sql.split(" WHERE ", 1)[1]
    assert clause.startswith("o.tenant_id = $1")
    return clause.removeprefix("o.tenant_id = $1").removeprefix(" AND ")


def errors(fn: Any, *args: Any) -> list[FieldError]:
    with pytest.raises(QueryError) as caught:
        fn(SPEC, *args)
    return caught.value.errors


# --- GET: every operator ------------------------------------------------------------------------

PRINTER = "6f1c2b3a-0000-4000-8000-000000000001"

OPERATOR_CASES = [
    ("name", "benchy", "o.name = $2", ["benchy"]),
    ("name.eq", "benchy", "o.name = $2", ["benchy"]),
    ("name.ne", "benchy", "o.name IS DISTINCT FROM $2", ["benchy"]),
    ("quantity.gt", "10", "o.quantity > $2::bigint", [10]),
    ("quantity.gte", "10", "o.quantity >= $2::bigint", [10]),
    ("quantity.lt", "100", "o.quantity < $2::bigint", [100]),
    ("quantity.lte", "-3", "o.quantity <= $2::bigint", [-3]),
    ("name.contains", "benchy", "o.name ILIKE $2 ESCAPE '\\'", ["%benchy%"]),
    ("name.startsWith", "PLA", "o.name ILIKE $2 ESCAPE '\\'", ["PLA%"]),
    ("name.endsWith", ".3mf", "o.name ILIKE $2 ESCAPE '\\'", ["%.3mf"]),
    ("status.in", "pending,processing", "o.status = ANY($2)", [["PENDING", "PROCESSING"]]),
    (
        "status.notIn",
        "cancelled, fulfilled",
        "(o.status IS NULL OR o.status <> ALL($2))",
        [["CANCELLED", "FULFILLED"]],
    ),
    ("printer_id.isNull", "true", "o.printer_id IS NULL", []),
    ("printer_id.isNull", "false", "o.printer_id IS NOT NULL", []),
    ("quantity", "7", "o.quantity = $2::bigint", [7]),
    ("quantity.in", "1,2", "o.quantity = ANY($2::bigint[])", [[1, 2]]),
    ("quantity.between", "10,100", "o.quantity BETWEEN $2::bigint AND $3::bigint", [10, 100]),
    ("price.between", "1.5,2", "o.price BETWEEN $2 AND $3", [Decimal("1.5"), Decimal("2")]),
    ("printer_id", PRINTER, "o.printer_id = $2", [uuid.UUID(PRINTER)]),
]


@pytest.mark.parametrize(("key", "value", "sql", "params"), OPERATOR_CASES)
def test_get_operator_compiles_to_parameterised_sql(
    key: str, value: str, sql: str, params: list[Any]
) -> None:
    c = compiled({key: value})
    assert where(c) == sql
    assert list(c.count_params) == [TENANT, *params]
    assert list(c.params) == [TENANT, *params, 50, 0]


def test_every_operator_is_covered_by_the_cases() -> None:
    used = {key.partition(".")[2] or "eq" for key, *_ in OPERATOR_CASES}
    assert used == set(OPERATORS)


def test_full_select_has_projection_order_and_paging() -> None:
    c = compiled({"name": "x"})
    assert c.sql == (
        f"SELECT {ALL_COLUMNS} FROM orders o WHERE o.tenant_id = $1 AND o.name = $2"
        " ORDER BY o.created_at DESC, o.id ASC LIMIT $3 OFFSET $4"
    )
    assert c.count_sql == "SELECT count(*) FROM orders o WHERE o.tenant_id = $1 AND o.name = $2"


def test_no_filter_is_just_the_tenant() -> None:
    c = compiled({})
    assert c.count_sql == "SELECT count(*) FROM orders o WHERE o.tenant_id = $1"
    assert c.params == (TENANT, 50, 0)


def test_several_params_are_anded_in_order_including_repeats() -> None:
    c = compiled([("quantity.gte", "1"), ("name.contains", "a"), ("quantity.lt", "9")])
    assert (
        where(c)
        == "(o.quantity >= $2::bigint AND o.name ILIKE $3 ESCAPE '\\' AND o.quantity < $4::bigint)"
    )
    assert c.count_params == (TENANT, 1, "%a%", 9)


def test_starlette_query_params_and_mapping_of_lists_are_accepted() -> None:
    qp = QueryParams("status=pending&name.contains=ben&status.ne=cancelled&limit=5")
    q = parse_params(SPEC, qp)
    assert q.limit == 5
    assert q.filter == Group(
        "AND",
        (
            Condition("status", "eq", "PENDING"),
            Condition("name", "contains", "ben"),
            Condition("status", "ne", "CANCELLED"),
        ),
    )
    assert parse_params(SPEC, {"status": ["pending", "fulfilled"]}).filter == Group(
        "AND", (Condition("status", "eq", "PENDING"), Condition("status", "eq", "FULFILLED"))
    )


@pytest.mark.parametrize("op", ["starts_with", "STARTSWITH", "startswith", "startsWith"])
def test_operator_names_are_case_and_underscore_insensitive(op: str) -> None:
    q = parse_params(SPEC, {f"name.{op}": "PLA"})
    assert q.filter == Condition("name", "startsWith", "PLA")


def test_scope_is_anded_after_the_tenant() -> None:
    spec = QuerySpec("orders", (Field("id", FieldType.INT),), scope="deleted_at IS NULL")
    c = compile_query(spec, parse_params(spec, {"id.gt": "3"}), 7)
    assert c.count_sql == (
        "SELECT count(*) FROM orders"
        " WHERE tenant_id = $1 AND (deleted_at IS NULL) AND id > $2::bigint"
    )


# --- values and their types ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("quantity", " +42 ", 42),
        ("price", "12.50", Decimal("12.50")),
        ("rush", "TRUE", True),
        ("rush", "0", False),
        ("created_at", "2026-03-30T17:16:46.925Z", datetime(2026, 3, 30, 17, 16, 46, 925000, UTC)),
        ("created_at", "2026-03-30", datetime(2026, 3, 30, tzinfo=UTC)),
        ("created_at", "2026-03-30T10:00:00", datetime(2026, 3, 30, 10, tzinfo=UTC)),
        # an unencoded "+" in a URL arrives as a space
        (
            "created_at",
            "2026-03-30T12:00:00 02:00",
            datetime(2026, 3, 30, 12, tzinfo=timezone(timedelta(hours=2))),
        ),
        ("id", PRINTER.upper(), uuid.UUID(PRINTER)),
        ("status", "Pending", "PENDING"),
        ("name", "", ""),
    ],
)
def test_values_are_converted_to_the_field_type(key: str, value: str, expected: object) -> None:
    condition = parse_params(SPEC, {key: value}).filter
    assert isinstance(condition, Condition)
    assert condition.value == expected
    assert type(condition.value) is type(expected)


BAD_VALUES = [
    ("quantity", "abc", "'abc' is not a whole number"),
    ("quantity", "1.5", "not a whole number"),
    ("quantity", "99999999999999999999", "not a whole number"),
    ("quantity", "9223372036854775808", "out of the 64-bit integer range"),
    ("price", "abc", "not a decimal number"),
    ("price", "NaN", "not a decimal number"),
    ("price", "Infinity", "not a decimal number"),
    ("price", "1e9999", "'1e9999' is out of range"),
    ("name", "a\x00b", "must not contain a NUL character"),
    ("name.contains", "\ud800", "must be valid Unicode"),
    ("created_at", "0001-01-01T00:00:00+01:00", "not an ISO-8601 date-time"),
    ("rush", "yes", "not a boolean"),
    ("created_at", "yesterday", "not an ISO-8601 date-time"),
    ("id", "123", "not a UUID"),
    ("status", "SHIPPED", "not one of PENDING, PROCESSING, FULFILLED, CANCELLED"),
    ("quantity.between", "5,1", "low '5' is above high '1'"),
    ("quantity.between", "1", "needs exactly two values"),
    ("quantity.between", "1,2,3", "needs exactly two values"),
    ("status.in", "", "needs at least one value"),
    ("status.in", "pending,nope", "'nope' is not one of"),
    ("printer_id.isNull", "maybe", "not a boolean"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD_VALUES)
def test_bad_values_name_the_field_and_the_problem(key: str, value: str, message: str) -> None:
    [error] = errors(parse_params, {key: value})
    assert error["field"] == key.partition(".")[0]
    assert message in error["message"]


def test_too_many_in_values() -> None:
    [error] = errors(parse_params, {"quantity.in": ",".join(["1"] * 501)})
    assert "at most 500 values" in error["message"]


def test_long_bad_values_are_truncated_in_messages() -> None:
    [error] = errors(parse_params, {"quantity": "x" * 1000})
    assert len(error["message"]) < 120


# --- whitelisting -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("colour", "unknown or unfilterable field 'colour'; filterable: id, name,"),
        ("notes", "unknown or unfilterable field 'notes'"),
        ("tenant_id", "unknown or unfilterable field 'tenant_id'"),
        ("name.like", "unknown operator 'like'; operators: eq, ne, gt"),
        ("name.eq.x", "unknown operator 'eq.x'"),
        ("quantity.contains", "operator contains does not apply to int field 'quantity'"),
        ("rush.gt", "does not apply to bool field 'rush'; use eq, ne, in, notIn, isNull"),
        ("status.gte", "does not apply to enum field 'status'"),
        ("id.between", "does not apply to uuid field 'id'"),
    ],
)
def test_unknown_fields_and_operators_are_rejected(key: str, message: str) -> None:
    [error] = errors(parse_params, {key: "1"})
    assert message in error["message"]


def test_all_problems_are_reported_together() -> None:
    problems = errors(
        parse_params,
        [
            ("nope", "1"),
            ("quantity.gt", "x"),
            ("sort", "zzz"),
            ("limit", "1000"),
            ("fields", "id,bogus"),
            ("include", "secrets"),
        ],
    )
    assert [e["field"] for e in problems] == [
        "nope",
        "quantity",
        "sort",
        "limit",
        "fields",
        "include",
    ]


def test_query_error_becomes_a_problem_document() -> None:
    with pytest.raises(QueryError) as caught:
        parse_params(SPEC, {"quantity": "x", "limit": "0"})
    problem = caught.value.to_problem()
    assert problem["status"] == 400
    assert problem["title"] == "Bad Request"
    assert problem["detail"] == "The list query has 2 problems."
    assert problem["errors"] == caught.value.errors
    assert "quantity: eq: 'x' is not a whole number" in str(caught.value)


INJECTIONS = [
    "name; DROP TABLE orders; --",
    'name" FROM pg_user --',
    "o.tenant_id",
    "1=1) OR (1=1",
    "name.eq;--",
    "name.eq) OR (1=1",
]


@pytest.mark.parametrize("key", INJECTIONS)
def test_injected_field_names_never_reach_sql(key: str) -> None:
    assert errors(parse_params, {key: "x"})
    assert errors(parse_params, {"sort": f"{key}:asc"})
    assert errors(parse_params, {"fields": key})
    assert errors(parse_body, {"filter": {key: {"eq": "x"}}})


@pytest.mark.parametrize(
    "value",
    ["'; DROP TABLE orders; --", "x' OR '1'='1", "$1 OR true", "%' OR 1=1 --", "\\' OR 1=1"],
)
def test_injected_values_are_only_parameters(value: str) -> None:
    for op in ("eq", "ne", "contains", "startsWith", "endsWith", "gt", "in", "notIn"):
        c = compiled({f"name.{op}": value})
        assert value not in c.sql
        assert c.sql == compiled({f"name.{op}": "x"}).sql


def test_hand_built_queries_are_whitelisted_at_compile_time() -> None:
    with pytest.raises(QueryError, match="unknown field 'tenant_id'"):
        compile_query(SPEC, Query(filter=Condition("tenant_id", "eq", 1)), TENANT)
    with pytest.raises(QueryError, match="unknown operator 'like'"):
        compile_query(SPEC, Query(filter=Condition("name", "like", "x")), TENANT)
    with pytest.raises(QueryError, match="unknown field"):
        compile_query(SPEC, Query(sort=(SortKey("1; DROP"),)), TENANT)
    with pytest.raises(QueryError, match="unknown field"):
        compile_query(SPEC, Query(fields=("id", "pg_sleep(10)")), TENANT)


def test_exposing_the_tenant_column_only_narrows() -> None:
    spec = QuerySpec("t", (Field("id", FieldType.INT), Field("tenant_id", FieldType.INT)))
    c = compile_query(spec, parse_params(spec, {"tenant_id": "2"}), 1)
    assert c.count_sql == "SELECT count(*) FROM t WHERE tenant_id = $1 AND tenant_id = $2::bigint"
    assert c.count_params == (1, 2)


def test_narrowed_ands_a_server_condition() -> None:
    extra = Condition("printer_id", "eq", uuid.UUID(PRINTER))
    assert Query().narrowed(extra).filter == extra
    q = parse_params(SPEC, {"name": "a"}).narrowed(extra)
    assert where(compile_query(SPEC, q, TENANT)) == "(o.name = $2 AND o.printer_id = $3)"


# --- sort ---------------------------------------------------------------------------------------


def order_by(params: Any) -> str:
    sql = compiled(params).sql
    return sql.split(" ORDER BY ", 1)[1].split(" LIMIT ", 1)[0]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        (None, "o.created_at DESC, o.id ASC"),
        ("", "o.created_at DESC, o.id ASC"),
        ("quantity", "o.quantity ASC, o.id ASC"),
        ("quantity:DESC", "o.quantity DESC, o.id ASC"),
        ("status:asc,created_at:desc", "o.status ASC, o.created_at DESC, o.id ASC"),
        (" name : desc , quantity", "o.name DESC, o.quantity ASC, o.id ASC"),
        ("id:desc", "o.id DESC"),
        ("id:desc,name", "o.id DESC, o.name ASC"),
    ],
)
def test_sort_whitelisted_and_stable(sort: str | None, expected: str) -> None:
    assert order_by({} if sort is None else {"sort": sort}) == expected


@pytest.mark.parametrize(
    ("sort", "message"),
    [
        ("colour:asc", "cannot sort on 'colour'; sortable: id, name, quantity"),
        ("notes", "cannot sort on 'notes'"),
        ("name:up", "direction of 'name' must be asc or desc, not 'up'"),
        ("name,name:desc", "field 'name' is sorted on more than once"),
        ("name:asc:desc", "must be asc or desc"),
    ],
)
def test_bad_sort(sort: str, message: str) -> None:
    [error] = errors(parse_params, {"sort": sort})
    assert error["field"] == "sort"
    assert message in error["message"]


# --- paging, meta, fields, include --------------------------------------------------------------


def test_paging_defaults_and_bounds() -> None:
    assert parse_params(SPEC, {}).limit == 50
    q = parse_params(SPEC, {"limit": "500", "offset": "1000"})
    assert (q.limit, q.offset) == (500, 1000)
    assert compile_query(SPEC, q, TENANT).params[-2:] == (500, 1000)


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"limit": "0"}, "limit", "must be between 1 and 500, got 0"),
        ({"limit": "501"}, "limit", "must be between 1 and 500, got 501"),
        ({"limit": "ten"}, "limit", "'ten' is not a whole number"),
        ({"limit": ""}, "limit", "not a whole number"),
        ({"offset": "-1"}, "offset", "must be between 0 and"),
        ({"meta": "yes"}, "meta", "not a boolean"),
        ([("limit", "1"), ("limit", "2")], "limit", "given more than once"),
    ],
)
def test_bad_paging(params: Any, field: str, message: str) -> None:
    [error] = errors(parse_params, params)
    assert error == {"field": field, "message": error["message"]}
    assert message in error["message"]


def test_meta_fields_and_include() -> None:
    q = parse_params(
        SPEC, {"meta": "true", "fields": "status,name,id,name", "include": "lines.part,shipment"}
    )
    assert q.meta
    assert q.fields == ("id", "status", "name")
    assert q.include == ("lines.part", "shipment")
    assert compile_query(SPEC, q, TENANT).sql.startswith(
        'SELECT o.id AS "id", o.status AS "status", o.name AS "name" FROM'
    )


def test_projection_always_keeps_the_key() -> None:
    assert parse_params(SPEC, {"fields": "name"}).fields == ("id", "name")
    assert parse_params(SPEC, {"fields": ""}).fields == ()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"fields": "name,secret"}, "unknown secret; fields: id, name,"),
        ({"fields": "name,,id"}, "not a comma-separated list of names"),
        ({"include": "owner"}, "cannot include owner; includable: lines, lines.part, shipment"),
        ({"include": "lines,lines.part,shipment"}, "at most 2 relations, got 3"),
    ],
)
def test_bad_fields_and_include(params: dict[str, str], message: str) -> None:
    [error] = errors(parse_params, params)
    assert message in error["message"]


# --- POST .../search ----------------------------------------------------------------------------


def test_printago_search_examples() -> None:
    q = parse_body(
        SPEC,
        {
            "filter": {"status": {"eq": "pending"}, "name": {"contains": "benchy"}},
            "limit": 20,
            "offset": 0,
        },
    )
    assert (q.limit, q.offset) == (20, 0)
    assert q.filter == Group(
        "AND", (Condition("status", "eq", "PENDING"), Condition("name", "contains", "benchy"))
    )
    q = parse_body(
        SPEC, {"filter": {"OR": [{"status": {"eq": "pending"}}, {"status": {"eq": "processing"}}]}}
    )
    assert where(compile_query(SPEC, q, TENANT)) == "(o.status = $2 OR o.status = $3)"
    q = parse_body(SPEC, {"filter": {"quantity": {"between": [10, 100]}}})
    assert q.filter == Condition("quantity", "between", (10, 100))


def test_printago_search_body_shape_with_string_options() -> None:
    q = parse_body(
        SPEC,
        {
            "sort": "quantity:desc",
            "limit": 1,
            "offset": 0,
            "fields": "name",
            "include": "lines",
            "meta": True,
            "hints": True,
        },
    )
    assert q == Query(
        sort=(SortKey("quantity", True),),
        limit=1,
        fields=("id", "name"),
        include=("lines",),
        meta=True,
    )


def test_nested_and_or() -> None:
    body = {
        "filter": {
            "OR": [
                {"AND": [{"quantity": {"gte": 1, "lte": 5}}, {"rush": True}]},
                {"status": "fulfilled", "price": {"gt": "9.99"}},
                {"OR": [{"name": {"startsWith": "a"}}, {"printer_id": None}]},
            ],
            "created_at": {"gte": "2026-01-01T00:00:00Z"},
        }
    }
    c = compile_query(SPEC, parse_body(SPEC, body), TENANT)
    assert where(c) == (
        "((((o.quantity >= $2::bigint AND o.quantity <= $3::bigint) AND o.rush = $4)"
        " OR (o.status = $5 AND o.price > $6)"
        " OR (o.name ILIKE $7 ESCAPE '\\' OR o.printer_id IS NULL))"
        " AND o.created_at >= $8)"
    )
    assert c.count_params == (
        TENANT,
        1,
        5,
        True,
        "FULFILLED",
        Decimal("9.99"),
        "a%",
        datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_json_values_and_nulls() -> None:
    def flt(body_filter: dict[str, Any]) -> object:
        return parse_body(SPEC, {"filter": body_filter}).filter

    assert flt({"printer_id": {"eq": None}}) == Condition("printer_id", "isNull", True)
    assert flt({"printer_id": {"ne": None}}) == Condition("printer_id", "isNull", False)
    assert flt({"status": {"in": ["pending", "Cancelled"]}}) == Condition(
        "status", "in", ("PENDING", "CANCELLED")
    )
    assert flt({"status": {"notIn": "pending,cancelled"}}) == Condition(
        "status", "notIn", ("PENDING", "CANCELLED")
    )
    assert flt({"price": {"lt": 0.1}}) == Condition("price", "lt", Decimal("0.1"))
    assert flt({"quantity": "7"}) == Condition("quantity", "eq", 7)
    assert flt({"printer_id": {"isNull": False}}) == Condition("printer_id", "isNull", False)


def test_json_sort_forms() -> None:
    def sort(raw: object) -> tuple[SortKey, ...]:
        return parse_body(SPEC, {"sort": raw}).sort

    expected = (SortKey("status"), SortKey("quantity", True))
    assert sort("status:asc,quantity:desc") == expected
    assert sort(["status", "quantity:desc"]) == expected
    assert sort([{"field": "status"}, {"field": "quantity", "direction": "DESC"}]) == expected
    assert sort([{"status": "asc"}, {"quantity": "desc"}]) == expected
    assert sort([]) == ()


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ([], "body", "expected a JSON object"),
        ({"where": {}}, "where", "unknown key; the search body takes fields, filter, hints"),
        ({"filter": []}, "filter", "expected a non-empty object"),
        ({"filter": {"OR": []}}, "filter", "OR expects a non-empty list"),
        ({"filter": {"AND": {"name": "x"}}}, "filter", "AND expects a non-empty list"),
        ({"filter": {"OR": [1]}}, "filter", "expected a non-empty object, got 1"),
        ({"filter": {"status": ["a", "b"]}}, "status", 'e.g. {"in": [...]}'),
        ({"filter": {"status": {}}}, "status", "expected a value or"),
        ({"filter": {"name": {"gt": None}}}, "name", "gt: None is not a string"),
        ({"filter": {"name": 5}}, "name", "5 is not a string"),
        ({"filter": {"quantity": True}}, "quantity", "True is not a whole number"),
        ({"filter": {"quantity": 1.5}}, "quantity", "1.5 is not a whole number"),
        ({"filter": {"price": False}}, "price", "not a decimal number"),
        ({"filter": {"rush": 1}}, "rush", "not a boolean"),
        ({"filter": {"quantity": {"between": [1]}}}, "quantity", "needs exactly two values"),
        ({"filter": {"quantity": {"in": 5}}}, "quantity", "not a list or comma-separated"),
        ({"limit": 1.5}, "limit", "not a whole number"),
        ({"limit": True}, "limit", "not a whole number"),
        ({"meta": "sure"}, "meta", "not a boolean"),
        ({"fields": ["name", 3]}, "fields", "not a comma-separated list of names"),
        ({"sort": [5]}, "sort", "5 is not field:asc or field:desc"),
        ({"sort": [{"a": 1, "b": 2}]}, "sort", "is not field:asc or field:desc"),
    ],
)
def test_bad_search_bodies(body: object, field: str, message: str) -> None:
    [error] = errors(parse_body, body)
    assert error["field"] == field
    assert message in error["message"]


def test_empty_search_body_lists_everything() -> None:
    assert parse_body(SPEC, None) == parse_body(SPEC, {}) == parse_params(SPEC, {})
    assert parse_body(SPEC, {"filter": None}).filter is None
    assert parse_body(SPEC, {"filter": {}}).filter is None


def test_filter_depth_and_size_are_bounded() -> None:
    node: dict[str, Any] = {"name": "x"}
    for _ in range(MAX_FILTER_DEPTH - 1):
        node = {"OR": [node]}
    assert parse_body(SPEC, {"filter": node}).filter == Condition("name", "eq", "x")
    [error] = errors(parse_body, {"filter": {"AND": [node]}})
    assert error == {"field": "filter", "message": f"nested deeper than {MAX_FILTER_DEPTH} levels"}
    many = {"OR": [{"quantity": i} for i in range(MAX_CONDITIONS + 1)]}
    assert errors(parse_body, {"filter": many})[-1]["message"] == "more than 100 conditions"
    params = [("quantity", str(i)) for i in range(MAX_CONDITIONS + 1)]
    assert errors(parse_params, params)[-1]["message"] == "more than 100 conditions"


# --- spec declarations --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Field("limit"), "invalid or reserved field name 'limit'"),
        (lambda: Field("filter"), "reserved"),
        (lambda: Field("a.b"), "invalid"),
        (lambda: Field('x"'), "invalid"),
        (lambda: Field("s", FieldType.ENUM), "choices go with, and only with, ENUM"),
        (lambda: Field("s", choices=("A",)), "choices go with"),
        (lambda: QuerySpec("t", (Field("name"),)), "primary key 'id' is not a field"),
        (lambda: QuerySpec("t", (Field("id"), Field("id"))), "duplicate field names"),
        (lambda: QuerySpec("t", (Field("id"),), default_sort="nope"), "bad default_sort"),
        (lambda: QuerySpec("t", (Field("id"),), default_limit=600), "default_limit"),
        (lambda: Field("tag", each=True), "a set field is filterable, not sortable"),
        (lambda: Field("n", FieldType.INT, fold=True), "only text folds case"),
        (lambda: QuerySpec("t", (Field("id", each=True, sortable=False),)), "is a set field"),
    ],
)
def test_bad_declarations_fail_at_import_time(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


def test_default_column_is_the_name() -> None:
    assert Field("name").column == "name"


# --- Page ---------------------------------------------------------------------------------------


def test_page_json_plain_list_or_meta() -> None:
    row = {
        "id": uuid.UUID(PRINTER),
        "price": Decimal("12.50"),
        "created_at": datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))),
        "lines": [{"due": datetime(2026, 1, 2).date()}],
        "rush": None,
    }
    expected = {
        "id": PRINTER,
        "price": "12.50",
        "created_at": "2026-01-01T10:00:00Z",
        "lines": [{"due": "2026-01-02"}],
        "rush": None,
    }
    assert Page([row], limit=20, offset=0).to_json() == [expected]
    assert Page([row], limit=20, offset=40, total=41).to_json() == {
        "data": [expected],
        "total": 41,
        "limit": 20,
        "offset": 40,
    }
    assert jsonable(datetime(2026, 1, 1)) == "2026-01-01T00:00:00Z"


# --- properties ---------------------------------------------------------------------------------


def like_regex(pattern: object) -> re.Pattern[str]:
    """PostgreSQL LIKE semantics with backslash escapes, as a Python regex."""
    assert isinstance(pattern, str)
    out, chars = [], iter(pattern)
    for ch in chars:
        if ch == "\\":
            out.append(re.escape(next(chars)))
        else:
            out.append({"%": ".*", "_": "."}.get(ch, re.escape(ch)))
    return re.compile("".join(out), re.DOTALL | re.IGNORECASE)


NEEDLES = st.text(alphabet="ab%_\\x", max_size=6)


@given(needle=NEEDLES, haystack=st.text(alphabet="ab%_\\x", max_size=12))
def test_contains_matches_exactly_the_literal_substring(needle: str, haystack: str) -> None:
    [param] = compiled({"name.contains": needle}).count_params[1:]
    assert bool(like_regex(param).fullmatch(haystack)) == (needle.lower() in haystack.lower())


@given(needle=NEEDLES, haystack=st.text(alphabet="ab%_\\x", max_size=12))
def test_starts_and_ends_with_are_literal(needle: str, haystack: str) -> None:
    [start] = compiled({"name.startsWith": needle}).count_params[1:]
    [end] = compiled({"name.endsWith": needle}).count_params[1:]
    assert bool(like_regex(start).fullmatch(haystack)) == haystack.startswith(needle)
    assert bool(like_regex(end).fullmatch(haystack)) == haystack.endswith(needle)


@given(st.text())
def test_escape_like_leaves_no_bare_wildcards(text: str) -> None:
    assert not re.search(r"(?<!\\)(?:\\\\)*[%_]", escape_like(text).replace("\\\\", ""))


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_int_round_trip(n: int) -> None:
    assert parse_params(SPEC, {"quantity": str(n)}).filter == Condition("quantity", "eq", n)


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_decimal_round_trip(d: Decimal) -> None:
    assert parse_params(SPEC, {"price": str(d)}).filter == Condition("price", "eq", d)


@given(st.datetimes(timezones=st.timezones()))
def test_datetime_round_trip(dt: datetime) -> None:
    condition = parse_params(SPEC, {"created_at": dt.isoformat()}).filter
    assert isinstance(condition, Condition)
    assert condition.value.tzinfo is UTC
    assert condition.value == dt.astimezone(UTC)  # not dt: == across zones fails in folds


KEYS = st.one_of(
    st.text(max_size=20),
    st.sampled_from([f.name for f in SPEC.fields]).flatmap(
        lambda name: st.sampled_from([*OPERATORS, "", "x"]).map(
            lambda op: f"{name}.{op}" if op else name
        )
    ),
    st.sampled_from(["sort", "limit", "offset", "meta", "fields", "include"]),
)


@given(st.lists(st.tuples(KEYS, st.text(max_size=20)), max_size=8))
def test_any_query_string_parses_or_fails_cleanly(pairs: list[tuple[str, str]]) -> None:
    try:
        q = parse_params(SPEC, pairs)
    except QueryError as exc:
        assert exc.errors
        assert all(set(e) == {"field", "message"} and e["message"] for e in exc.errors)
        return
    c = compile_query(SPEC, q, TENANT)
    assert c.sql.count("$") == len(c.params)
    for _key, value in pairs:
        if len(value) > 3 and value.strip() not in c.sql:
            assert value not in c.sql


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["AND", "OR", "name", "quantity", "status", "eq", "in", "between", "zz"]
            ),
            children,
            max_size=3,
        )
    ),
    max_leaves=15,
)


@given(JSON)
def test_any_json_filter_parses_or_fails_cleanly(node: object) -> None:
    try:
        q = parse_body(SPEC, {"filter": node})
    except QueryError as exc:
        assert exc.errors
        return
    c = compile_query(SPEC, q, TENANT)
    assert c.sql.count("$") == len(c.params)


@given(st.dictionaries(st.sampled_from(["filter", "sort", "limit", "offset", "fields", "x"]), JSON))
def test_any_search_body_parses_or_fails_cleanly(body: dict[str, object]) -> None:
    try:
        q = parse_body(SPEC, body)
    except QueryError as exc:
        assert exc.errors
        return
    compile_query(SPEC, q, TENANT)


# --- specs derived from response models ---------------------------------------------------------


class _Colour(StrEnum):
    RED = "RED"
    BLUE = "BLUE"


class _Line(BaseModel):
    id: uuid.UUID


class _Widget(BaseModel):
    id: uuid.UUID
    name: str
    count: int
    price: Decimal | None
    rush: bool
    made_at: datetime
    colour: _Colour
    tags: list[str]
    extra: dict[str, Any] | None
    labelled: Annotated[bool, Column("(w.label IS NOT NULL)")]
    note: Annotated[str, Column(sortable=False)]
    lines: list[_Line]
    main: _Line | None


def test_spec_of_a_model_declares_each_column_once() -> None:
    spec = QuerySpec.of(_Widget, "widgets w", default_sort="made_at:desc")
    assert spec.tenant_column == "w.tenant_id" and spec.table == "widgets w"
    assert spec.fields == (
        Field("id", FieldType.UUID, "w.id"),
        Field("name", FieldType.STR, "w.name"),
        Field("count", FieldType.INT, "w.count"),
        Field("price", FieldType.DECIMAL, "w.price"),
        Field("rush", FieldType.BOOL, "w.rush"),
        Field("made_at", FieldType.DATETIME, "w.made_at"),
        Field("colour", FieldType.ENUM, "w.colour", choices=("RED", "BLUE")),
        Field("tags", FieldType.STR, "w.tags", filterable=False, sortable=False),
        Field("extra", FieldType.STR, "w.extra", filterable=False, sortable=False),
        Field("labelled", FieldType.BOOL, "(w.label IS NOT NULL)"),
        Field("note", FieldType.STR, "w.note", sortable=False),
    )  # the embedded models (lines, main) are relations, not columns
    assert spec.sort_keys == (SortKey("made_at", descending=True),)
    where_sql = compile_query(spec, parse_params(spec, {"labelled": "true", "colour": "red"}),
                              TENANT).count_sql
    assert where_sql.endswith("AND ((w.label IS NOT NULL) = $2 AND w.colour = $3)")
    assert QuerySpec.of(_Line, "lines").by_name["id"].column == "id"
    assert QuerySpec.of(_Line, "lines").tenant_column == "tenant_id"


# --- set fields ---------------------------------------------------------------------------------

TAGGED = QuerySpec(table="jobs j", tenant_column="j.tenant_id", fields=(
    Field("id", FieldType.INT, "j.id"),
    Field("tag", column="SELECT lower(t) FROM unnest(j.tags) AS t", each=True, fold=True,
          sortable=False, permission="tags.read", description="one of the job's tags"),
))


def test_a_set_field_holds_when_any_value_meets_it_and_is_never_selected() -> None:
    query = parse_params(TAGGED, {"tag.in": "Rush,PLA", "id.gt": "3"})
    assert query.filtered_on() == frozenset({"tag", "id"})
    compiled = compile_query(TAGGED, query, TENANT)
    assert compiled.sql.startswith('SELECT j.id AS "id" FROM jobs j WHERE j.tenant_id = $1 AND (')
    assert ("EXISTS (SELECT 1 FROM (SELECT lower(t) FROM unnest(j.tags) AS t) AS each_(value)"
            " WHERE each_.value = ANY($2))") in compiled.sql
    assert compiled.params[1] == ["rush", "pla"]  # folded: the column lower-cases its side
    assert parse_params(TAGGED, {"tag.contains": "Ru"}).filter == Condition("tag", "contains", "ru")
    problems = {e["field"]: e["message"] for e in errors_of(TAGGED, {
        "tag.ne": "x", "fields": "tag", "sort": "tag"})}
    assert problems["tag"].startswith("operator ne does not apply to str field 'tag'; use eq, ")
    assert "fields: id" in problems["fields"] and "sortable: id" in problems["sort"]
    with pytest.raises(QueryError, match="does not apply"):
        compile_query(TAGGED, Query(filter=Condition("tag", "lt", "x")), TENANT)


def test_a_set_field_documents_only_the_operators_it_takes() -> None:
    params = {p["name"]: p for p in openapi_parameters(TAGGED)}
    assert {n for n in params if n.startswith("tag")} == {
        "tag", "tag.eq", "tag.in", "tag.contains", "tag.startsWith", "tag.endsWith"}
    assert params["tag.in"]["description"] == "one of the job's tags: tag in"
    assert params["fields"]["schema"]["items"]["enum"] == ["id"]


def errors_of(spec: QuerySpec, params: dict[str, str]) -> list[FieldError]:
    with pytest.raises(QueryError) as caught:
        parse_params(spec, params)
    return caught.value.errors
