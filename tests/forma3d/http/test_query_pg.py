"""The compiled SQL against real PostgreSQL: every operator's result is checked against the same
predicate evaluated in Python over a TEMP table with two tenants' rows."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from forma3d.http.query import (
    Field,
    FieldType,
    QueryError,
    QuerySpec,
    fetch_page,
    parse_body,
    parse_params,
)

pytestmark = pytest.mark.db

STATES = ("PENDING", "PROCESSING", "FULFILLED", "CANCELLED")
SPEC = QuerySpec(
    table="q_orders o",
    fields=(
        Field("id", FieldType.UUID, "o.id"),
        Field("name", column="o.name"),
        Field("quantity", FieldType.INT, "o.quantity"),
        Field("price", FieldType.DECIMAL, "o.price"),
        Field("rush", FieldType.BOOL, "o.rush"),
        Field("created_at", FieldType.DATETIME, "o.created_at"),
        Field("printer_id", FieldType.UUID, "o.printer_id"),
        Field("status", FieldType.ENUM, "o.status", choices=STATES),
    ),
    default_sort="created_at:desc",
    tenant_column="o.tenant_id",
    max_limit=100,
)
TENANT, OTHER = uuid.uuid4(), uuid.uuid4()
PRINTER = uuid.UUID("6f1c2b3a-0000-4000-8000-000000000001")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
NAMES = ["Benchy", "benchy XL", "50% off", "a_b", "axb", "back\\slash", "PLA hook", "cube.3mf"]


def make_rows(tenant: uuid.UUID) -> list[dict[str, Any]]:
    return [
        {
            "id": uuid.UUID(int=i + (0 if tenant == TENANT else 1000)),
            "tenant_id": tenant,
            "name": NAMES[i % len(NAMES)] if i % 11 else None,
            "quantity": i % 7,
            "price": Decimal(i) / 4 if i % 5 else None,
            "rush": i % 3 == 0,
            "created_at": T0 + timedelta(hours=i % 9),  # ties, so the key must break them
            "printer_id": PRINTER if i % 4 == 0 else None,
            "status": STATES[i % 4],
        }
        for i in range(40)
    ]


ROWS = make_rows(TENANT)


@pytest.fixture
async def conn(db_pool: asyncpg.Pool) -> AsyncIterator[Any]:
    """One connection in a rolled-back transaction: the TEMP table never outlives the test."""
    async with db_pool.acquire() as connection:
        tx = connection.transaction()
        await tx.start()
        await connection.execute(
            """CREATE TEMP TABLE q_orders (
                id uuid PRIMARY KEY, tenant_id uuid NOT NULL, name text, quantity integer NOT NULL,
                price numeric(10, 2), rush boolean NOT NULL, created_at timestamptz NOT NULL,
                printer_id uuid, status text NOT NULL
            ) ON COMMIT DROP"""
        )
        rows = ROWS + make_rows(OTHER)
        await connection.executemany(
            "INSERT INTO q_orders VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            [tuple(r.values()) for r in rows],
        )
        try:
            yield connection
        finally:
            await tx.rollback()


def ci(value: str | None) -> str:
    return (value or "").lower()


Predicate = Callable[[dict[str, Any]], bool]

CASES: list[tuple[dict[str, str], Predicate]] = [
    ({"name": "Benchy"}, lambda r: r["name"] == "Benchy"),
    ({"name.ne": "Benchy"}, lambda r: r["name"] != "Benchy"),  # NULL names included
    ({"quantity.gt": "3"}, lambda r: r["quantity"] > 3),
    ({"quantity.gte": "3"}, lambda r: r["quantity"] >= 3),
    ({"quantity.lt": "3"}, lambda r: r["quantity"] < 3),
    ({"quantity.lte": "3"}, lambda r: r["quantity"] <= 3),
    ({"name.contains": "BENCHY"}, lambda r: "benchy" in ci(r["name"])),
    ({"name.contains": "%"}, lambda r: "%" in ci(r["name"])),
    ({"name.contains": "_"}, lambda r: "_" in ci(r["name"])),
    ({"name.contains": "\\"}, lambda r: "\\" in ci(r["name"])),
    ({"name.startsWith": "pla"}, lambda r: ci(r["name"]).startswith("pla")),
    ({"name.endsWith": ".3MF"}, lambda r: ci(r["name"]).endswith(".3mf")),
    ({"status.in": "pending,fulfilled"}, lambda r: r["status"] in ("PENDING", "FULFILLED")),
    ({"status.notIn": "pending,fulfilled"}, lambda r: r["status"] not in ("PENDING", "FULFILLED")),
    ({"name.notIn": "Benchy,axb"}, lambda r: r["name"] not in ("Benchy", "axb")),
    ({"printer_id.isNull": "true"}, lambda r: r["printer_id"] is None),
    ({"printer_id.isNull": "false"}, lambda r: r["printer_id"] is not None),
    ({"printer_id": str(PRINTER)}, lambda r: r["printer_id"] == PRINTER),
    ({"id.in": f"{uuid.UUID(int=3)},{uuid.UUID(int=5)}"}, lambda r: r["id"].int in (3, 5)),
    ({"quantity.between": "2,4"}, lambda r: 2 <= r["quantity"] <= 4),
    # beyond int4: the bigint cast keeps this a comparison instead of a driver error
    ({"quantity.lt": str(2**40)}, lambda r: True),
    ({"quantity.notIn": f"{2**62},-{2**62},3"}, lambda r: r["quantity"] != 3),
    (
        {"price.between": "1.5,4.75"},
        lambda r: r["price"] is not None and Decimal("1.5") <= r["price"] <= Decimal("4.75"),
    ),
    ({"rush": "true"}, lambda r: r["rush"]),
    ({"rush.ne": "true"}, lambda r: not r["rush"]),
    (
        {"created_at.gte": "2026-01-01T05:00:00Z"},
        lambda r: r["created_at"] >= T0 + timedelta(hours=5),
    ),
    (
        {"created_at.lt": "2026-01-01T05:00:00+02:00"},
        lambda r: r["created_at"] < T0 + timedelta(hours=3),
    ),
    (
        {"quantity.gte": "2", "status": "pending", "name.isNull": "false"},
        lambda r: r["quantity"] >= 2 and r["status"] == "PENDING" and r["name"] is not None,
    ),
]


@pytest.mark.parametrize(("params", "predicate"), CASES)
async def test_operator_matches_python(
    conn: Any, params: dict[str, str], predicate: Predicate
) -> None:
    query = parse_params(SPEC, {**params, "limit": "100", "sort": "id"})
    page = await fetch_page(conn, SPEC, query, TENANT)
    expected = [r["id"] for r in sorted(ROWS, key=lambda r: r["id"]) if predicate(r)]
    assert [r["id"] for r in page.data] == expected
    assert expected, "every case should match something"


async def test_search_with_nested_or(conn: Any) -> None:
    body = {
        "filter": {
            "OR": [
                {"AND": [{"status": "processing"}, {"quantity": {"gte": 5}}]},
                {"name": {"contains": "%"}, "rush": True},
            ]
        },
        "sort": "id:desc",
        "limit": 100,
    }
    page = await fetch_page(conn, SPEC, parse_body(SPEC, body), TENANT)
    expected = [
        r["id"]
        for r in sorted(ROWS, key=lambda r: r["id"], reverse=True)
        if (r["status"] == "PROCESSING" and r["quantity"] >= 5)
        or ("%" in ci(r["name"]) and r["rush"])
    ]
    assert expected
    assert [r["id"] for r in page.data] == expected


async def test_tenant_scoping_cannot_be_escaped(conn: Any) -> None:
    page = await fetch_page(conn, SPEC, parse_params(SPEC, {"limit": "100"}), TENANT)
    assert len(page.data) == len(ROWS)
    with pytest.raises(QueryError):
        parse_params(SPEC, {"tenant_id": str(OTHER)})
    exposed = QuerySpec(
        "q_orders o",
        (Field("id", FieldType.UUID, "o.id"), Field("tenant_id", FieldType.UUID, "o.tenant_id")),
        tenant_column="o.tenant_id",
    )
    other = parse_body(
        exposed, {"filter": {"OR": [{"tenant_id": str(OTHER)}, {"id": {"ne": None}}]}}
    )
    rows = (await fetch_page(conn, exposed, other, TENANT)).data
    assert rows and {r["tenant_id"] for r in rows} == {TENANT}


async def test_pages_partition_the_result_with_ties(conn: Any) -> None:
    """created_at has many ties; the appended key makes offset pages disjoint and complete."""
    seen: list[uuid.UUID] = []
    for offset in range(0, 40, 7):
        query = parse_params(SPEC, {"limit": "7", "offset": str(offset), "meta": "true"})
        page = await fetch_page(conn, SPEC, query, TENANT)
        assert page.total == 40
        seen += [r["id"] for r in page.data]
    expected = sorted(ROWS, key=lambda r: r["id"])
    expected.sort(key=lambda r: r["created_at"], reverse=True)
    assert seen == [r["id"] for r in expected]


@pytest.mark.parametrize(
    ("params", "count", "total"),
    [
        ({"limit": "100"}, 40, 40),  # short first page: total without a count query
        ({"limit": "10"}, 10, 40),
        ({"limit": "10", "offset": "30"}, 10, 40),  # full last page: counted
        ({"limit": "10", "offset": "35"}, 5, 40),
        ({"limit": "10", "offset": "40"}, 0, 40),  # past the end: counted
        ({"limit": "10", "offset": "400"}, 0, 40),
        ({"status": "pending", "limit": "3"}, 3, 10),
        ({"name": "nobody"}, 0, 0),
    ],
)
async def test_meta_total(conn: Any, params: dict[str, str], count: int, total: int) -> None:
    page = await fetch_page(conn, SPEC, parse_params(SPEC, {**params, "meta": "true"}), TENANT)
    assert (len(page.data), page.total) == (count, total)
    body = page.to_json()
    assert isinstance(body, dict)
    assert body["total"] == total
    assert body["limit"] == int(params["limit"]) if "limit" in params else 50


async def test_projection_and_json(conn: Any) -> None:
    query = parse_params(SPEC, {"fields": "price,created_at", "id": str(uuid.UUID(int=6))})
    page = await fetch_page(conn, SPEC, query, TENANT)
    assert page.total is None
    assert page.to_json() == [
        {"id": str(uuid.UUID(int=6)), "price": "1.50", "created_at": "2026-01-01T06:00:00Z"}
    ]
