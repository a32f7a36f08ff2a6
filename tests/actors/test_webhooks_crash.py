"""Outgoing webhooks survive the death of the process sending them: 1,000 events reach a real
receiver with valid Standard Webhooks signatures, none lost and each subject in order, although
the outbox dispatcher (whose loop sends them) is killed with SIGKILL mid-delivery."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections import defaultdict

import pytest

from actors.runtime import Runtime
from forma3d.db.pool import Pool
from forma3d.store import webhooks
from tests.actors.hook_receiver import HookReceiver, serve
from tests.actors.test_webhook_deliveries import printer_events, private_tenant
from tests.polling import eventually

pytestmark = [pytest.mark.ray, pytest.mark.slow]  # 1,000 deliveries: the slow tier
SUBJECTS, PER_SUBJECT = 10, 100  # 1,000 events


async def test_sigkill_of_the_sender_loses_nothing_and_keeps_each_subject_in_order(
        ray_runtime: Runtime, db_pool: Pool) -> None:
    tenant_id = await private_tenant(db_pool)
    receiver = HookReceiver()
    # Hold one delivery open at the receiver: the sender is caught mid-send when it dies.
    receiver.hold = lambda p: p["subject"]["id"] == "p3" and p["data"]["after"]["n"] == 20
    async with serve(receiver) as url:
        subscription, receiver.secret = await webhooks.create_subscription(
            db_pool, tenant_id, url, ["printer.changed"])
        producer = asyncio.create_task(
            printer_events(db_pool, tenant_id, subjects=SUBJECTS, per_subject=PER_SUBJECT))
        await asyncio.wait_for(receiver.holding.wait(), 120)
        pid = (await ray_runtime.dispatcher.status.remote())["pid"]
        os.kill(pid, signal.SIGKILL)
        receiver.release.set()  # the held delivery arrives, but its sender never hears so
        await producer

        async def all_delivered() -> bool:
            delivered = await db_pool.fetchval(
                "SELECT count(*) FROM webhook_deliveries WHERE subscription_id = $1"
                " AND status = 'DELIVERED'", subscription.id)
            return bool(delivered == SUBJECTS * PER_SUBJECT)

        await eventually(all_delivered, timeout=180, interval=0.2, what="1,000 deliveries")
        await webhooks.update_subscription(db_pool, tenant_id, subscription.id,
                                           {"enabled": False})

    assert (await ray_runtime.dispatcher.status.remote())["pid"] != pid, "it was restarted"
    assert receiver.bad_signatures == 0
    firsts = receiver.firsts()
    assert len(firsts) == SUBJECTS * PER_SUBJECT  # none lost
    order: dict[str, list[int]] = defaultdict(list)
    for item in firsts:
        order[item.payload["subject"]["id"]].append(item.payload["data"]["after"]["n"])
    assert order == {f"p{s}": list(range(PER_SUBJECT)) for s in range(SUBJECTS)}
    # The delivery in flight at the kill was sent again (at least once, same webhook-id).
    assert len(receiver.received) > len(firsts), "nothing was resent: the kill tested nothing"
    ids = {uuid.UUID(item.webhook_id) for item in firsts}
    assert len(ids) == SUBJECTS * PER_SUBJECT
