"""The `forma3d` command: one-line errors with exit status 2, and the sandbox controls against
a Shopify sandbox on loopback."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from forma3d.cli import main
from forma3d.demo import MIX, order_lines, percentiles
from sandbox.runner import SandboxThread, stack_config
from sandbox.server import RunningSandboxes, serve_sandboxes
from sandbox.tenant import CATALOG


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_bad_environment_variable_is_one_line_naming_it(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FORMA3D_HTTP_PORT", "eighty")
    assert main(["migrate"]) == 2
    err = error_line(capsys)
    assert err.startswith("forma3d: error: invalid configuration: FORMA3D_HTTP_PORT")
    assert "'eighty'" in err


def test_bad_sandbox_switch_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FORMA3D_SANDBOX", "perhaps")
    assert main(["demo", "--orders", "1"]) == 2
    assert "FORMA3D_SANDBOX" in error_line(capsys)


@pytest.mark.db
def test_unknown_tenant_is_one_line(database_url: str, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["apikey", "create", "--tenant", f"nobody-{uuid.uuid4().hex[:8]}"]) == 2
    err = error_line(capsys)
    assert err.startswith("forma3d: error: no tenant 'nobody-")


def test_rate_outside_zero_to_one_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--failure-rate", "1.5"])
    assert exit_.value.code == 2
    assert "must be between 0 and 1" in capsys.readouterr().err


def test_send_order_without_a_sandbox_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "shopify", "send-order", "--url", "http://127.0.0.1:9"]) == 2
    assert "no Shopify sandbox answers at http://127.0.0.1:9" in error_line(capsys)


def test_demo_mix_covers_single_multi_part_and_quantities() -> None:
    lines = [line for i in range(len(MIX)) for line in order_lines(i)]
    assert {line["sku"] for line in lines} == set(CATALOG)
    assert any(line["quantity"] > 1 for line in lines)
    assert any(len(order_lines(i)) > 1 for i in range(len(MIX)))
    assert percentiles([]) == {"p50": None, "p99": None}
    assert percentiles([float(v) for v in range(1, 101)]) == {"p50": 50.0, "p99": 99.0}


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandboxes]:
    config = stack_config(65000, seed=11)
    config.shopify_port = config.simplyprint_port = config.sendcloud_port = 0
    running = await serve_sandboxes(config)
    yield running
    await running.stop()


async def test_send_and_cancel_order_through_the_control_endpoints(
        sandbox: RunningSandboxes, capsys: pytest.CaptureFixture[str]) -> None:
    url = sandbox.urls["shopify"]
    code = await asyncio.to_thread(main, [
        "sandbox", "shopify", "send-order", "--sku", "BENCHY-PLA-RED", "--quantity", "3",
        "--sku", "VASE-SPIRAL-PLA-WHITE", "--url", url])
    assert code == 0
    order_id = int(capsys.readouterr().out.split()[0])
    order = sandbox.sandboxes.shopify.orders[order_id]
    assert [(li["sku"], li["quantity"]) for li in order["line_items"]] == [
        ("BENCHY-PLA-RED", 3), ("VASE-SPIRAL-PLA-WHITE", 1)]

    assert await asyncio.to_thread(main, [
        "sandbox", "shopify", "cancel-order", str(order_id), "--url", url]) == 0
    assert sandbox.sandboxes.shopify.orders[order_id]["cancelled_at"]
    capsys.readouterr()

    assert await asyncio.to_thread(main, [
        "sandbox", "shopify", "cancel-order", "424242", "--url", url]) == 2
    assert error_line(capsys) == ("forma3d: error: Shopify sandbox refused (404): "
                                  "order not found")


@pytest.mark.db
def test_integration_verbs_connect_test_show_and_remove(
        database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    config = stack_config(65000, seed=12)
    config.shopify_port = config.simplyprint_port = config.sendcloud_port = 0
    thread = SandboxThread(config)
    urls = thread.start()
    try:
        shop = thread.running.sandboxes.shopify if thread.running else None
        assert shop is not None
        monkeypatch.setenv("DATABASE_URL", database_url)
        monkeypatch.setenv("FORMA3D_DATA_DIR", str(tmp_path))
        monkeypatch.setenv("FORMA3D_PUBLIC_URL", "https://farm.example")
        slug = f"cli-{uuid.uuid4().hex[:8]}"
        assert main(["tenant", "create", slug]) == 0
        capsys.readouterr()
        connect = ["integration", "set", "shopify", "--tenant", slug,
                   "--shop", config.shopify.shop_domain, "--token", config.shopify.access_token,
                   "--webhook-secret", "whsec_cli_1234", "--base-url", urls["shopify"]]
        assert main(connect) == 0
        assert main(connect) == 0  # again: nothing more registered
        out = capsys.readouterr().out
        assert "shopify connected (forma3d-sandbox.myshopify.com)" in out
        assert "webhooks registered at https://farm.example/webhooks/" in out
        assert len(shop.subscriptions) == 5
        assert main(["integration", "test", "shopify", "--tenant", slug]) == 0
        assert capsys.readouterr().out.startswith("shopify: shop Forma3D Sandbox")
        assert main(["integration", "show", "--tenant", slug]) == 0
        shown = capsys.readouterr().out
        assert "whsec_cli_1234" not in shown and config.shopify.access_token not in shown
        assert '"webhook_secret": "…1234"' in shown and '"state": "disconnected"' in shown
        assert main(["integration", "set", "shopify", "--tenant", slug, "--token", "bad"]) == 2
        assert error_line(capsys).startswith("forma3d: error: shopify refused: [API] Invalid")
        assert main(["integration", "remove", "shopify", "--tenant", slug]) == 0
        assert shop.subscriptions == {}
        assert main(["integration", "test", "shopify", "--tenant", slug]) == 2
        assert "shopify is not connected" in error_line(capsys)
    finally:
        thread.stop()


def test_the_sandbox_prints_integration_commands_the_cli_accepts() -> None:
    from forma3d.cli import cmd_integration_set, parser
    from sandbox.tenant import connect_commands

    config = stack_config(8000, seed=1)
    urls = {s: f"http://127.0.0.1:{8001 + i}"
            for i, s in enumerate(("shopify", "simplyprint", "sendcloud"))}
    lines = connect_commands(urls, config)
    assert [line.split()[3] for line in lines] == ["shopify", "simplyprint", "sendcloud"]
    for line in lines:
        args = parser().parse_args(line.split()[1:])
        assert args.run is cmd_integration_set and args.base_url == urls[args.service]
