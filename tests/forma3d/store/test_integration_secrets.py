"""Integration secrets are sealed at rest: the stored row holds no secret in the clear, only
the configured key opens it, and loading gives the settings back whole."""

from __future__ import annotations

import uuid

import pytest
from cryptography.fernet import Fernet

from forma3d.db.pool import Pool
from forma3d.integrations.settings import SendcloudSettings, ShopifySettings, SimplyPrintSettings
from forma3d.platform import secrets
from forma3d.store.integrations import load_integration, save_integration

pytestmark = pytest.mark.db


async def test_secrets_are_sealed_at_rest_and_loaded_whole(
        db_pool: Pool, tenant_id: uuid.UUID, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = uuid.uuid4().hex
    saved = [
        ShopifySettings(shop_domain="s.myshopify.com", access_token=f"shpat-{marker}",
                        webhook_secret=f"whsec-{marker}"),
        SimplyPrintSettings(company_id=7, api_key=f"spkey-{marker}",
                            webhook_secret=f"spsec-{marker}"),
        SendcloudSettings(public_key=f"pub-{marker}", secret_key=f"sec-{marker}"),
    ]
    for settings in saved:
        await save_integration(db_pool, tenant_id, settings)

    rows = await db_pool.fetch("SELECT service, config::text AS config, secrets"
                               " FROM integrations WHERE tenant_id = $1", tenant_id)
    assert len(rows) == 3
    for row in rows:
        stored = f"{row['config']} {row['secrets']!r}"
        assert marker not in stored, f"{row['service']} keeps a secret in the clear"
    shopify = next(r for r in rows if r["service"] == "shopify")
    assert "s.myshopify.com" in shopify["config"]  # public configuration stays readable

    for settings in saved:
        assert await load_integration(db_pool, tenant_id, type(settings)) == settings

    # Another key cannot open them: the rows are useless without the deployment's key.
    monkeypatch.setenv(secrets.KEY_ENV, Fernet.generate_key().decode())
    with pytest.raises(secrets.SecretError, match="cannot be decrypted"):
        await load_integration(db_pool, tenant_id, ShopifySettings)
