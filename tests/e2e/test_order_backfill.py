"""Orders Shopify created while its webhooks were lost are pulled in by the backfill."""

from __future__ import annotations

import pytest

from actors.runtime import Runtime
from forma3d.messaging.tenant import BackfillOrders
from tests.e2e.conftest import Farm

pytestmark = pytest.mark.ray


async def test_backfill_ingests_orders_whose_webhooks_were_lost(
    farm: Farm, ray_runtime: Runtime
) -> None:
    await farm.control("shopify", "webhooks", {"loss_rate": 1.0})
    missed = [
        farm.send_order([("BENCHY-PLA-RED", 1)]),
        farm.send_order([("GRID-BIN-2X3-PETG-BLACK", 2)]),
    ]
    assert await farm.statuses() == {}
    created = await ray_runtime.router.call(BackfillOrders(tenant_id=farm.tenant_id))
    assert created == 2
    again = await ray_runtime.router.call(BackfillOrders(tenant_id=farm.tenant_id))
    assert again == 0  # known orders are not ingested twice
    assert set((await farm.wait(missed, {"FULFILLED", "FAILED", "ON_HOLD"})).values()) == {
        "FULFILLED"
    }
    assert (
        await farm.pool.fetchval("SELECT count(*) FROM orders WHERE tenant_id = $1", farm.tenant_id)
        == 2
    )
