"""Metrics for cluster admins: after orders flow (webhooks, printing, shipping), a plate in the
slicer pool, a printer asked to dispatch, a message waiting for its retry and one refused for
good, Ray's Prometheus endpoint serves every metric of forma3d.platform.metrics with a non-zero
sample; the refused message is an outbox dead letter an operator lists and requeues."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable

import httpx
import pytest
import ray
from prometheus_client.parser import text_string_to_metric_families

from actors.runtime import Runtime
from actors.slicer_pool import get_pool
from forma3d.domain.gridflock import PlanOptions, get_profile, plan_plates
from forma3d.integrations.errors import AuthenticationError
from forma3d.integrations.shopify import ShopifyClient
from forma3d.integrations.signatures import SHOPIFY_HMAC_HEADER
from forma3d.messaging.fleet import SyncFleet
from forma3d.messaging.order import CancelOrder
from forma3d.messaging.printer import DispatchPrinter
from forma3d.platform.metrics import SPECS, prometheus_name
from forma3d.store import outbox
from tests.e2e.conftest import Farm
from tests.polling import eventually

pytestmark = pytest.mark.ray
Samples = dict[str, list[tuple[dict[str, str], float]]]


def metrics_url() -> str:
    """This node's Prometheus endpoint, from Ray's node info (its `metrics_export_port`)."""
    node = next(n for n in ray.nodes() if n["Alive"])
    return f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get(metrics_url())
    response.raise_for_status()
    samples: Samples = defaultdict(list)
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name].append((dict(sample.labels), float(sample.value)))
    return samples


def nonzero(samples: Samples, name: str, **labels: str) -> bool:
    return any(value > 0 and all(found.get(k) == v for k, v in labels.items())
               for found, value in samples.get(name, []))


BACKLOG = ("ray_forma3d_outbox_backlog", "ray_forma3d_outbox_oldest_pending_seconds")


def missing(samples: Samples, seen: tuple[str, ...] = ()) -> list[str]:
    """The metrics (and the webhook outcomes) with no non-zero sample yet, but for `seen`."""
    gone = []
    for spec in SPECS:
        name = prometheus_name(spec)
        wanted = f"{name}_count" if spec.kind == "histogram" else name
        if wanted not in seen and not nonzero(samples, wanted):
            gone.append(wanted)
    for outcome in ("accepted", "duplicate", "refused"):
        if not nonzero(samples, "ray_forma3d_webhooks_total", outcome=outcome):
            gone.append(f"webhooks {outcome}")
    return gone


async def test_every_metric_has_a_sample_and_a_dead_letter_can_be_requeued(
        farm: Farm, ray_runtime: Runtime) -> None:
    order = farm.send_order([("BENCHY-PLA-RED", 1)])
    final = await farm.wait([order], {"FULFILLED", "FAILED", "CANCELLED", "ON_HOLD"})
    assert final == {order: "FULFILLED"}

    async with httpx.AsyncClient(timeout=10) as client:
        # A duplicate (Shopify's own redelivery of the order) and a refusal (a bad signature).
        deliveries = (await client.get(
            f"{farm.sandboxes.urls['shopify']}/_sandbox/webhooks/deliveries",
            params={"topic": "orders/create"})).json()["deliveries"]
        replay = await client.post(f"{farm.sandboxes.urls['shopify']}/_sandbox/webhooks/"
                                   f"deliveries/{deliveries[0]['id']}/replay", json={})
        replay.raise_for_status()
        refused = await client.post(f"{farm.ingress}/webhooks/{farm.tenant_id}/shopify",
                                    content=b"{}", headers={SHOPIFY_HMAC_HEADER: "forged"})
        assert refused.status_code == 401

    # A Shopify call with a revoked token (as after the app was uninstalled): refused, 401.
    shopify = ShopifyClient("sandbox.myshopify.com", "revoked",
                            base_url=farm.sandboxes.urls["shopify"])
    async with shopify:
        with pytest.raises(AuthenticationError):
            await shopify.get_order(order)

    # A plate through the slicer pool, and every printer asked to take work.
    profile = get_profile("bambu-a1")
    plate = plan_plates(100, 100, profile, PlanOptions()).plates[0]
    [made] = await get_pool().run.remote("stl", [plate], None, "manifold")
    assert made.failed_step is None
    await ray_runtime.router.call(SyncFleet(tenant_id=farm.tenant_id))
    for printer_id in await farm.pool.fetch(
            "SELECT id FROM printers WHERE tenant_id = $1", farm.tenant_id):
        await ray_runtime.router.call(DispatchPrinter(tenant_id=farm.tenant_id,
                                                      printer_id=printer_id["id"]))

    # A message waiting an hour for its retry (the backlog, empty again once the message is
    # due), to an order that does not exist: when due, the order entity refuses it for good.
    doomed = CancelOrder(tenant_id=farm.tenant_id, order_id=uuid.uuid4(), reason="metrics test")
    message_id = uuid.uuid4()
    async with farm.pool.acquire() as conn, conn.transaction():
        await outbox.send(conn, doomed, message_id=message_id)
        await conn.execute("UPDATE outbox SET available_at = now() + interval '1 hour'"
                           " WHERE message_id = $1", message_id)

    last: list[str] = []

    async def showing(left: Callable[[Samples], list[str]]) -> Samples | None:
        async with httpx.AsyncClient(timeout=10) as client:
            samples = await scrape(client)
        last[:] = left(samples)
        return None if last else samples

    def backlog(samples: Samples) -> list[str]:
        return [m for m in BACKLOG if not nonzero(samples, m)]

    await eventually(lambda: showing(backlog), interval=1, what="the outbox backlog")
    await farm.pool.execute("UPDATE outbox SET available_at = now() WHERE message_id = $1",
                            message_id)
    try:
        samples = await eventually(lambda: showing(lambda s: missing(s, BACKLOG)), interval=1,
                                   what="every metric with a non-zero sample")
    except AssertionError as error:
        raise AssertionError(f"{error}; still without one: {last}") from None
    assert nonzero(samples, "ray_forma3d_orders", status="FULFILLED")
    assert nonzero(samples, "ray_forma3d_print_jobs", status="COMPLETED")

    # The dead letter, as an operator sees it, and its requeue (refused again: still dead).
    listed = await farm.api("GET", "/dead-letters")
    assert listed.status_code == 200, listed.text
    [letter] = [d for d in listed.json() if d["message_id"] == str(message_id)]
    assert letter["message_type"] == "order.cancel" and letter["reason"]
    assert letter["target_kind"] == "order" and letter["attempts"] == 1
    one = await farm.api("GET", f"/dead-letters/{letter['id']}")
    assert one.status_code == 200 and one.json()["failed_at"] == letter["failed_at"]
    requeued = await farm.api("POST", f"/dead-letters/{letter['id']}/requeue")
    assert requeued.status_code == 202, requeued.text
    assert requeued.json() == {"id": letter["id"], "status": "requeued"}

    async def dead_again() -> bool:
        row = await farm.pool.fetchrow("SELECT done_at, attempts FROM outbox WHERE id = $1",
                                       letter["id"])
        return row is not None and row["done_at"] is not None and row["attempts"] == 1

    await eventually(dead_again, what="the requeued letter delivered and refused again")
    again = (await farm.api("GET", f"/dead-letters/{letter['id']}")).json()
    assert again["failed_at"] > letter["failed_at"]  # delivered anew, refused anew
    assert (await farm.api("POST", "/dead-letters/99999999999/requeue")).status_code == 404
    assert (await farm.api("GET", "/dead-letters/x")).status_code == 404
