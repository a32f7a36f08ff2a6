"""Point a tenant at running sandboxes (through the product's REST API, as a shop owner would)
and a catalog of product mappings for the Shopify sandbox's SKUs (single-part, multi-part and
assemblies)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any, Literal

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


Dispatch = Literal["simplyprint_queue", "smart"]


def sandbox_settings(urls: dict[str, str], config: SandboxConfig,
                     sendcloud_api: Literal["v2", "v3"] = "v3",
                     dispatch_mode: Dispatch = "simplyprint_queue") -> dict[str, dict[str, Any]]:
    """The body of `PUT /api/v1/integrations/<service>` that connects each simulator, as a shop
    owner would fill it in (plus the simulator's address instead of the real service's).

    Jobs reach the farm through SimplyPrint's queue unless `dispatch_mode` says smart (the
    product's default): tests that drive queue items themselves keep the queue."""
    shop, sp, sc = config.shopify, config.simplyprint, config.sendcloud
    return {
        "shopify": {"shop_domain": shop.shop_domain, "access_token": shop.access_token,
                    "webhook_secret": shop.webhook_secret, "base_url": urls["shopify"]},
        "simplyprint": {"company_id": sp.company_id, "api_key": sp.api_key,
                        "webhook_secret": sp.webhook_secret, "base_url": urls["simplyprint"],
                        "files_url": urls["simplyprint"], "dispatch_mode": dispatch_mode},
        "sendcloud": {"public_key": sc.public_key, "secret_key": sc.secret_key,
                      "webhook_secret": sc.webhook_signature_key, "base_url": urls["sendcloud"],
                      "api_version": sendcloud_api},
    }


FLAGS = {"shop_domain": "--shop", "access_token": "--token", "company_id": "--company-id",
         "secret_key": "--secret-key", "public_key": "--public-key", "api_key": "--api-key",
         "webhook_secret": "--webhook-secret", "base_url": "--base-url",
         "files_url": "--files-url", "api_version": "--api-version",
         "dispatch_mode": "--dispatch-mode"}


def connect_commands(urls: dict[str, str], config: SandboxConfig, tenant: str = "default"
                     ) -> list[str]:
    """The `forma3d integration set` commands that connect a tenant to these simulators."""
    lines = []
    for service, body in sandbox_settings(urls, config).items():
        flags = " ".join(f"{FLAGS[k]} {v}" for k, v in body.items() if v is not None)
        lines.append(f"forma3d integration set {service} --tenant {tenant} {flags}")
    return lines


async def connect_tenant(api_base: str, api_key: str, urls: dict[str, str],
                         config: SandboxConfig, sendcloud_api: Literal["v2", "v3"] = "v3",
                         dispatch_mode: Dispatch = "simplyprint_queue") -> dict[str, Any]:
    """Connect the key's tenant to the running simulators through the product's REST API, as a
    shop owner does: each PUT registers our webhooks at that simulator, which from then on
    delivers to them (and only to them). Returns the answers by service."""
    answers: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=30, headers={
            "Authorization": f"Bearer {api_key}"}) as client:
        for service, body in sandbox_settings(urls, config, sendcloud_api,
                                              dispatch_mode).items():
            response = await client.put(f"{api_base.rstrip('/')}/api/v1/integrations/{service}",
                                        json=body)
            if response.status_code != 200:
                raise RuntimeError(f"connecting {service} failed: {response.status_code} "
                                   f"{response.text}")
            answers[service] = response.json()
    return answers


async def save_credentials(db: Pool | Connection, tenant_id: uuid.UUID, urls: dict[str, str],
                           config: SandboxConfig, sendcloud_api: Literal["v2", "v3"] = "v3",
                           dispatch_mode: Dispatch = "simplyprint_queue") -> None:
    """Store the simulators' credentials for a tenant without connecting (no webhooks are
    registered, so the simulators deliver none): for tests that drive the handlers directly."""
    bodies = sandbox_settings(urls, config, sendcloud_api, dispatch_mode)
    for model in (ShopifySettings, SimplyPrintSettings, SendcloudSettings):
        await save_integration(db, tenant_id, model.model_validate(bodies[model.service]))
