"""Point a tenant at running sandboxes: integration settings, webhook targets and a catalog of
product mappings for the Shopify sandbox's SKUs (single-part, multi-part and assemblies)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Literal

import httpx

from forma3d.db.pool import Connection, Pool
from forma3d.integrations.settings import SendcloudSettings, ShopifySettings, SimplyPrintSettings
from forma3d.store import files, mappings
from forma3d.store.integrations import save_integration
from forma3d.store.mappings import MappingSpec, PartSpec
from sandbox.server import SandboxConfig

# SKU -> parts (name, grams, print minutes, copies per unit). Mirrors the Shopify sandbox catalog.
CATALOG: dict[str, list[tuple[str, int, int, int]]] = {
    "BENCHY-PLA-RED": [("benchy", 35, 60, 1)],
    "VASE-SPIRAL-PLA-WHITE": [("vase", 160, 180, 1), ("base", 20, 30, 1)],
    "GRID-BIN-2X3-PETG-BLACK": [("bin", 60, 90, 1)],
    "PLANTER-HEX-PLA-GREEN": [("pot", 110, 150, 1), ("saucer", 15, 20, 1), ("foot", 5, 10, 3)],
}


def fake_gcode(name: str, minutes: int, grams: int) -> bytes:
    """A small gcode file with the slicer's estimate lines the farm and we both read."""
    hours, mins = divmod(minutes, 60)
    return (f"; {name}\nG28\nG1 X10 Y10 Z0.2 F3000\n"
            f"; filament used [g] = {grams:.2f}\n"
            f"; estimated printing time (normal mode) = {hours}h {mins}m 0s\n").encode()


async def seed_catalog(conn: Connection, tenant_id: uuid.UUID) -> dict[str, int]:
    """Create print files and product mappings for CATALOG; returns parts per unit by SKU."""
    parts_per_unit: dict[str, int] = {}
    for sku, parts in CATALOG.items():
        specs = []
        for name, grams, minutes, copies in parts:
            stored = await files.add_print_file(
                conn, tenant_id, f"{sku.lower()}-{name}.gcode",
                fake_gcode(f"{sku}/{name}", minutes, grams), estimated_seconds=minutes * 60,
                grams=Decimal(grams))
            specs.append(PartSpec(name, stored.id, copies, Decimal(grams)))
        await mappings.put_mapping(conn, tenant_id, MappingSpec(sku), specs)
        parts_per_unit[sku] = sum(p[3] for p in parts)
    return parts_per_unit


def webhook_url(base: str, tenant_id: uuid.UUID | str, source: str) -> str:
    """Where a service delivers a tenant's webhooks: the product's public address scheme
    (README, "Webhook URLs"), as a shop owner would paste it into the service."""
    return f"{base.rstrip('/')}/webhooks/{tenant_id}/{source}"


async def connect_tenant(db: Pool | Connection, tenant_id: uuid.UUID, urls: dict[str, str],
                         config: SandboxConfig, api_base: str,
                         sendcloud_api: Literal["v2", "v3"] = "v3",
                         dispatch_mode: Literal["simplyprint_queue", "smart"] = (
                             "simplyprint_queue")) -> None:
    """Save sandbox credentials for the tenant and aim each sandbox's webhooks at our ingress;
    Sendcloud is connected in `sendcloud_api` (v3, as any new connection, unless asked).
    Jobs reach the farm through SimplyPrint's queue unless `dispatch_mode` says smart (the
    product's default, which the sandbox stack and the demo run on): tests that drive queue
    items themselves keep the queue."""
    shop, sp, sc = config.shopify, config.simplyprint, config.sendcloud
    await save_integration(db, tenant_id, ShopifySettings(
        shop_domain=shop.shop_domain, access_token=shop.access_token,
        webhook_secret=shop.webhook_secret, base_url=urls["shopify"]))
    await save_integration(db, tenant_id, SimplyPrintSettings(
        company_id=sp.company_id, api_key=sp.api_key, webhook_secret=sp.webhook_secret,
        base_url=urls["simplyprint"], files_url=urls["simplyprint"],
        dispatch_mode=dispatch_mode))
    await save_integration(db, tenant_id, SendcloudSettings(
        public_key=sc.public_key, secret_key=sc.secret_key,
        webhook_secret=sc.webhook_signature_key, base_url=urls["sendcloud"],
        api_version=sendcloud_api))
    async with httpx.AsyncClient(timeout=10) as client:
        for source, base in urls.items():
            response = await client.post(f"{base}/_sandbox/webhooks", json={
                "targets": [webhook_url(api_base, tenant_id, source)]})
            response.raise_for_status()
