"""EntityHostCore without Ray: mailbox semantics and the handled-message guard."""

from __future__ import annotations

import asyncio
import uuid
from typing import ClassVar

from actors.host import EntityHostCore
from forma3d.db.pool import Pool
from forma3d.messaging.envelope import Envelope
from forma3d.messaging.stock import AdjustStock
from forma3d.messaging.tenant import GetTenant
from tests.forma3d.store.stock_fixtures import product
from tests.polling import eventually

PRODUCTS: dict[uuid.UUID, uuid.UUID] = {}  # tenant -> its stocked product mapping


async def stocked(pool: Pool, tenant: uuid.UUID) -> uuid.UUID:
    if tenant not in PRODUCTS:
        PRODUCTS[tenant] = await product(pool, tenant)
    return PRODUCTS[tenant]


def adjust(tenant: uuid.UUID, quantity: int, *, durable: bool = False) -> Envelope:
    return AdjustStock(tenant_id=tenant, mapping_id=PRODUCTS[tenant], quantity=quantity,
                       reason="counted").envelope(durable=durable)


async def level(pool: Pool, tenant: uuid.UUID) -> int | None:
    value: int | None = await pool.fetchval(
        "SELECT on_hand FROM stock_levels WHERE tenant_id = $1", tenant)
    return value


async def test_durable_redelivery_changes_nothing(database_url: str, db_pool: Pool,
                                                  tenant_id: uuid.UUID) -> None:
    await stocked(db_pool, tenant_id)
    host = EntityHostCore(0, 1, database_url)
    try:
        message = adjust(tenant_id, 3, durable=True)
        first = await host.deliver(message)
        again = await host.deliver(message)
        assert first.ok and first.value["on_hand"] == 3 and not first.duplicate
        assert again.ok and again.duplicate
        assert await level(db_pool, tenant_id) == 3
        ledger = await db_pool.fetch(
            "SELECT message_id FROM stock_ledger WHERE tenant_id = $1", tenant_id)
        # One entry, naming the message that caused it.
        assert [str(r["message_id"]) for r in ledger] == [message.message_id]
    finally:
        await host.close()


async def test_refused_message_rolls_back_and_reloads(database_url: str, db_pool: Pool,
                                                      tenant_id: uuid.UUID) -> None:
    await stocked(db_pool, tenant_id)
    host = EntityHostCore(0, 1, database_url)
    try:
        assert (await host.deliver(adjust(tenant_id, 2))).ok
        refused = await host.deliver(adjust(tenant_id, -5, durable=True))
        assert not refused.ok and not refused.retryable
        assert "2 available" in (refused.error or "")
        assert await level(db_pool, tenant_id) == 2
        # The refused message was not recorded as handled: nothing of it was committed.
        handled = await db_pool.fetchval(
            "SELECT count(*) FROM handled_messages WHERE tenant_id = $1", tenant_id)
        assert handled == 0
        unknown = await host.deliver(Envelope("tenant", str(tenant_id), "tenant.nope",
                                              str(tenant_id)))
        assert not unknown.ok and "no handler" in (unknown.error or "")
    finally:
        await host.close()


async def test_one_message_at_a_time_per_entity(database_url: str, db_pool: Pool,
                                                tenant_id: uuid.UUID) -> None:
    """Concurrent read-modify-write through one entity never loses an update."""
    await stocked(db_pool, tenant_id)
    host = EntityHostCore(0, 1, database_url, pool_size=8)
    try:
        replies = await asyncio.gather(*(host.deliver(adjust(tenant_id, 1)) for _ in range(50)))
        assert all(r.ok for r in replies)
        assert sorted(r.value["on_hand"] for r in replies) == list(range(1, 51))
        assert await level(db_pool, tenant_id) == 50
    finally:
        await host.close()


async def test_idle_entities_passivate(database_url: str, tenant_id: uuid.UUID) -> None:
    host = EntityHostCore(0, 1, database_url, idle_seconds=0.2)
    try:
        assert (await host.deliver(GetTenant(tenant_id=tenant_id).envelope())).ok
        assert f"tenant:{tenant_id}" in host.slots
        for _ in range(40):
            await asyncio.sleep(0.05)
            if not host.slots:
                break
        assert host.slots == {}
        again = await host.deliver(GetTenant(tenant_id=tenant_id).envelope())
        assert again.ok and host.activations == 2
    finally:
        await host.close()


async def test_dispatcher_gives_up_on_a_message_that_keeps_failing(
        database_url: str, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    """A retryable failure older than the give-up age becomes a visible dead letter."""
    from datetime import timedelta

    from actors.outbox import Dispatcher
    from forma3d.messaging.envelope import Reply
    from forma3d.store.outbox import enqueue

    class Unreachable:
        ask_timeout = 30.0

        def send(self, envelope: Envelope) -> asyncio.Future[Reply]:
            refused: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
            refused.set_result(Reply(error="host unavailable", retryable=True))
            return refused

    await stocked(db_pool, tenant_id)
    async with db_pool.acquire() as conn, conn.transaction():
        await enqueue(conn, adjust(tenant_id, 1, durable=True))
    dispatcher = Dispatcher(db_pool, Unreachable(), give_up_after=timedelta(hours=1))
    while await dispatcher.dispatch_once():
        pass
    row = await db_pool.fetchrow("SELECT * FROM outbox WHERE tenant_id = $1", tenant_id)
    assert row["done_at"] is None and row["last_error"] == "host unavailable"  # will retry

    await db_pool.execute("UPDATE outbox SET created_at = now() - interval '2 hours',"
                          " available_at = now() WHERE tenant_id = $1", tenant_id)
    while await dispatcher.dispatch_once():
        pass
    row = await db_pool.fetchrow("SELECT * FROM outbox WHERE tenant_id = $1", tenant_id)
    assert row["done_at"] is not None and row["last_error"].startswith("gave up after")
    assert dispatcher.dead == 1


async def test_a_delivery_that_overruns_the_ask_timeout_is_not_sent_again(
        database_url: str, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    """The dispatcher retries a message whose delivery overran the ask timeout by waiting for
    that delivery again: the entity's mailbox holds one copy however often the timeout passes,
    and the message is handled once and ends delivered."""
    from actors.entities import ENTITIES
    from actors.local import LocalEntities
    from actors.outbox import Dispatcher
    from forma3d.handlers.registry import EntitySpec, Handlers
    from forma3d.messaging.message import Message
    from forma3d.store.outbox import send

    class Hold(Message):
        kind: ClassVar[str] = "test-hold"
        type: ClassVar[str] = "hold.until_released"
        label: str

        @property
        def key(self) -> str:
            return self.label

    release = asyncio.Event()
    handled: list[str] = []
    holder: Handlers[None] = Handlers()

    @holder.step(Hold)
    async def hold(state: None, message: Hold) -> str:
        handled.append(message.label)
        await release.wait()  # a handler far slower than the ask timeout
        return message.label

    async def load(services: object, key: str) -> None:
        return None

    # The real entity kinds too: rows other tests left pending are delivered as the cluster's
    # dispatcher would deliver them, not refused as unknown.
    entities = LocalEntities(database_url, specs=[*ENTITIES, EntitySpec("test-hold", load, holder)],
                             ask_timeout=0.2)
    dispatcher = Dispatcher(db_pool, entities)
    message_id = uuid.uuid4()
    try:
        async with db_pool.acquire() as conn, conn.transaction():
            await send(conn, Hold(tenant_id=tenant_id, label="h1"), message_id=message_id)

        async def attempts() -> int:
            value: int = await db_pool.fetchval(
                "SELECT attempts FROM outbox WHERE message_id = $1", message_id)
            return value

        async def retried_twice() -> bool:
            await dispatcher.dispatch_once()
            return await attempts() >= 3

        await eventually(retried_twice, what="two retries of the held message")
        assert handled == ["h1"]
        assert entities.core.in_flight == 1  # one copy in the host, not one per attempt
        assert dispatcher.carried_over == await attempts() - 1
        assert set(dispatcher.in_flight) == {str(message_id)}

        release.set()

        async def done() -> bool:
            await dispatcher.dispatch_once()
            row = await db_pool.fetchrow(
                "SELECT done_at, last_error FROM outbox WHERE message_id = $1", message_id)
            return row["done_at"] is not None

        await eventually(done, what="the held message delivered")
        row = await db_pool.fetchrow("SELECT * FROM outbox WHERE message_id = $1", message_id)
        assert row["last_error"] is None  # delivered, not a dead letter
        assert handled == ["h1"]
        assert entities.core.handled == 1 and entities.core.in_flight == 0
        assert str(message_id) not in dispatcher.in_flight  # forgotten once it resolved
    finally:
        release.set()
        await entities.close()


async def test_latest_wins_messages_never_queue_up(database_url: str,
                                                   tenant_id: uuid.UUID) -> None:
    """While an entity is busy, newer snapshots replace the waiting one: no backlog builds,
    and the last snapshot is the one applied."""
    from forma3d.handlers.registry import EntitySpec, Handlers
    from forma3d.messaging.message import Message

    class Observe(Message):
        kind: ClassVar[str] = "test-gauge"
        type: ClassVar[str] = "gauge.observe"
        value: int

        @property
        def key(self) -> str:
            return "g1"

    seen: list[int] = []
    gauge: Handlers[None] = Handlers()

    @gauge.step(Observe, latest_wins=True)
    async def observe(state: None, message: Observe) -> int:
        await asyncio.sleep(0.05)  # a busy entity (e.g. a printer starting a job)
        seen.append(message.value)
        return message.value

    async def load(services: object, key: str) -> None:
        return None

    host = EntityHostCore(0, 1, database_url, specs=[EntitySpec("test-gauge", load, gauge)])
    try:
        def frame(value: int) -> Envelope:
            return Observe(tenant_id=tenant_id, value=value).envelope()

        first = asyncio.create_task(host.deliver(frame(0)))
        await asyncio.sleep(0.01)  # the first frame holds the entity
        replies = await asyncio.gather(*(host.deliver(frame(v)) for v in range(1, 21)))
        await first
        superseded = [r for r in replies if r.value == "superseded"]
        assert len(superseded) == 19  # only one frame waited behind the busy entity
        assert seen == [0, 20]  # ... and it was the newest
    finally:
        await host.close()
