"""Runs the three simulators: in-process apps for tests, or loopback servers for demo mode.

One clock and one seed drive all three, so a whole order-to-parcel run is reproducible and its
hours of printing and shipping compress by the same speed-up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from pydantic import BaseModel, Field
from starlette.applications import Starlette

from sandbox.clock import SimClock
from sandbox.sendcloud import SendcloudConfig, SendcloudSandbox, build_sendcloud_app
from sandbox.sendcloud_v3 import v3_routes
from sandbox.shopify import ShopifyConfig, ShopifySandbox, build_shopify_app
from sandbox.simplyprint import (
    SimplyPrintConfig,
    SimplyPrintSandbox,
    build_simplyprint_app,
)


class SandboxConfig(BaseModel):
    """Everything the sandbox needs; every field has a working default."""

    seed: int = 0
    speedup: float = Field(default=60.0, gt=0)  # simulated seconds per real second
    host: str = "127.0.0.1"
    shopify_port: int = 0  # 0: any free port
    simplyprint_port: int = 0
    sendcloud_port: int = 0
    shopify: ShopifyConfig = Field(default_factory=ShopifyConfig)
    simplyprint: SimplyPrintConfig = Field(default_factory=SimplyPrintConfig)
    sendcloud: SendcloudConfig = Field(default_factory=SendcloudConfig)


@dataclass
class Sandboxes:
    """The three simulators' state, sharing one clock."""

    clock: SimClock
    shopify: ShopifySandbox
    simplyprint: SimplyPrintSandbox
    sendcloud: SendcloudSandbox

    async def aclose(self) -> None:
        """Stops journeys, prints and webhook loops."""
        await self.simplyprint.aclose()
        await self.sendcloud.aclose()
        await self.shopify.aclose()


def build_sandboxes(config: SandboxConfig) -> Sandboxes:
    clock = SimClock(config.speedup)
    return Sandboxes(
        clock=clock,
        shopify=ShopifySandbox(config.shopify, clock, config.seed),
        simplyprint=SimplyPrintSandbox(config.simplyprint, clock, config.seed),
        sendcloud=SendcloudSandbox(config.sendcloud, clock, config.seed),
    )


def apps_for(sandboxes: Sandboxes) -> tuple[Starlette, Starlette, Starlette]:
    return (
        build_shopify_app(sandboxes.shopify),
        build_simplyprint_app(sandboxes.simplyprint),
        build_sendcloud_app(sandboxes.sendcloud, v3_routes(sandboxes.sendcloud)),
    )


def build_apps(config: SandboxConfig) -> tuple[Starlette, Starlette, Starlette]:
    """(shopify, simplyprint, sendcloud) ASGI apps for httpx.ASGITransport, no ports needed.

    Each app's state is at ``app.state.sandbox`` (its ``.clock`` is shared by all three).
    """
    return apps_for(build_sandboxes(config))


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals alone: three share one process and one Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class RunningSandboxes:
    """Servers on loopback ports; ``urls`` maps shopify/simplyprint/sendcloud to base URLs."""

    sandboxes: Sandboxes
    urls: dict[str, str]
    _servers: list[_Server] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self) -> None:
        for server in self._servers:
            server.should_exit = True
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.sandboxes.aclose()


async def serve_sandboxes(config: SandboxConfig) -> RunningSandboxes:
    """Starts the three apps with uvicorn in the running loop; returns once they listen."""
    sandboxes = build_sandboxes(config)
    apps = apps_for(sandboxes)
    names = ("shopify", "simplyprint", "sendcloud")
    ports = (config.shopify_port, config.simplyprint_port, config.sendcloud_port)
    running = RunningSandboxes(sandboxes=sandboxes, urls={})
    try:
        for name, app, port in zip(names, apps, ports, strict=True):
            server = _Server(
                uvicorn.Config(
                    app,
                    host=config.host,
                    port=port,
                    log_level="warning",
                    lifespan="off",
                    access_log=False,
                )
            )
            task = asyncio.create_task(server.serve(), name=f"sandbox-{name}")
            running._servers.append(server)
            running._tasks.append(task)
            while not server.started:
                if task.done():
                    task.result()  # raises the bind error
                    raise RuntimeError(f"sandbox {name} server stopped during start-up")
                await asyncio.sleep(0.01)
            bound = server.servers[0].sockets[0].getsockname()
            running.urls[name] = f"http://{config.host}:{bound[1]}"
    except BaseException:
        await running.stop()
        raise
    sandboxes.shopify.set_order_rate(config.shopify.orders_per_hour)
    return running


def describe(running: RunningSandboxes, config: SandboxConfig) -> str:
    """What an operator needs to point the system at the sandbox."""
    sp = config.simplyprint
    sc = config.sendcloud
    sh = config.shopify
    return "\n".join(
        [
            f"Shopify      {running.urls['shopify']}/admin/api/2024-07/  "
            f"token={sh.access_token} webhook secret={sh.webhook_secret}",
            f"SimplyPrint  {running.urls['simplyprint']}/{sp.company_id}/  "
            f"X-API-KEY={sp.api_key} webhook secret={sp.webhook_secret} "
            f"(files host: same URL)",
            f"Sendcloud    {running.urls['sendcloud']}/api/v3/ and /api/v2/  "
            f"public={sc.public_key} secret={sc.secret_key}",
            f"Clock speed-up {config.speedup}x, seed {config.seed}; controls under /_sandbox/",
        ]
    )


async def _serve_until_stopped(config: SandboxConfig) -> None:
    running = await serve_sandboxes(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    print(describe(running, config), flush=True)
    try:
        await stop.wait()
    finally:
        await running.stop()


def run(config: SandboxConfig) -> None:
    """Serves all three simulators until Ctrl-C (the ``forma3d sandbox`` command)."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_until_stopped(config))


def main(argv: Sequence[str] | None = None) -> None:
    """Stand-alone entry: ``python -m sandbox.server --speedup 600``."""
    parser = argparse.ArgumentParser(description="Run the Shopify/SimplyPrint/Sendcloud sandbox")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--speedup", type=float)
    parser.add_argument("--host")
    parser.add_argument("--shopify-port", type=int)
    parser.add_argument("--simplyprint-port", type=int)
    parser.add_argument("--sendcloud-port", type=int)
    parser.add_argument("--config", help="JSON file with a SandboxConfig (flags override it)")
    args = parser.parse_args(argv)
    base = (
        SandboxConfig.model_validate_json(Path(args.config).read_text(encoding="utf-8"))
        if args.config
        else SandboxConfig()
    )
    flags = ("seed", "speedup", "host", "shopify_port", "simplyprint_port", "sendcloud_port")
    given = {name: getattr(args, name) for name in flags if getattr(args, name) is not None}
    config = SandboxConfig.model_validate({**base.model_dump(), **given})
    run(config)


if __name__ == "__main__":
    main()
