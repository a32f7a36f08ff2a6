"""The stack on a real two-node Ray cluster (two raylets, each with its own object store and
workers, through Ray's own multi-node test utility), with shared PostgreSQL and Redis: entity
hosts and Serve replicas on both nodes by the placement rule (docs/architecture.md), a
demo of a dozen orders, and one node's processes killed (SIGKILL) mid-run. Every order is
fulfilled, nothing is doubled, and the lost node's hosts answer again from the survivor."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import ray
from ray import serve
from ray.cluster_utils import Cluster

from actors.router import NAMESPACE, host_name
from actors.runtime import PLACEMENT_MEMORY
from forma3d.db.pool import Pool
from forma3d.platform.embedded import Services
from forma3d.serving import app_builder
from forma3d.stack import RAY_START_ENVIRONMENT, start_ray
from forma3d.store.apikeys import create_api_key
from forma3d.store.tenants import create_tenant
from sandbox.farm import PrinterSpec
from sandbox.server import RunningSandboxes, SandboxConfig, serve_sandboxes
from sandbox.shopify import LineItemSpec, OrderSpec
from sandbox.tenant import connect_tenant, seed_catalog
from tests.e2e.test_demo import free_port_block
from tests.polling import eventually

pytestmark = pytest.mark.timeout(900)

HOSTS = 4
REPLICAS = 2
ORDERS = 12
RECOVERY_LIMIT = 60.0  # the bound for the lost node's hosts to serve again
MIX = [[("BENCHY-PLA-RED", 1)], [("VASE-SPIRAL-PLA-WHITE", 1), ("BENCHY-PLA-RED", 1)],
       [("PLANTER-HEX-PLA-GREEN", 2)]]


def say(text: str) -> None:
    print(f"[cluster] {text}", flush=True)


@pytest.fixture(scope="module")
def cluster(services: Services) -> Iterator[tuple[Cluster, Any, int]]:
    """A head and a worker node (1 CPU each), the driver attached to the head; the Serve proxy
    on the head (both nodes share 127.0.0.1 here, so one proxy port), replicas anywhere."""
    os.environ.update({"DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url,
                       **RAY_START_ENVIRONMENT})
    small = {"num_cpus": 1, "object_store_memory": 150 * 2**20}
    made: list[tuple[Cluster, Any]] = []

    def start() -> None:
        cluster = Cluster(initialize_head=True, head_node_args={
            **small, **agent_ports(), "include_dashboard": False})
        try:
            made.append((cluster, cluster.add_node(**small, **agent_ports())))
            cluster.wait_for_nodes()
        except BaseException:
            cluster.shutdown()
            made.clear()
            raise

    start_ray(start)  # the product's own retry of a node that missed Ray's 30 s to register
    cluster, worker = made[0]
    ray.init(address=cluster.address, namespace="forma3d", log_to_driver=False)
    schedulable(worker.node_id)
    port = free_port_block()
    os.environ["FORMA3D_PUBLIC_URL"] = f"http://127.0.0.1:{port}"  # where simulators deliver
    serve.start(proxy_location="HeadOnly", http_options={"host": "127.0.0.1", "port": port})
    serve.run(app_builder({"entity_hosts": str(HOSTS), "replicas": str(REPLICAS),
                           "max_replicas_per_node": "1"}),
              name="forma3d", route_prefix="/", blocking=False)
    yield cluster, worker, port
    serve.shutdown()
    ray.shutdown()
    cluster.shutdown()
    for name in ("DATABASE_URL", "REDIS_URL", "FORMA3D_PUBLIC_URL"):
        os.environ.pop(name, None)


@ray.remote(num_cpus=0)
class Probe:
    def node(self) -> str:
        return str(ray.get_runtime_context().get_node_id())


def schedulable(node_id: str, timeout: float = 120.0) -> None:
    """Wait until a soft affinity to `node_id` lands there. The GCS lists a node as alive
    (`wait_for_nodes`) before the head's scheduler has its resources; until then a soft
    affinity to it counts as "no such node" and falls back to the head, which would put every
    entity host there."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    async def landed_there() -> bool:
        probe = Probe.options(  # type: ignore[attr-defined]
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node_id, soft=True),
            memory=PLACEMENT_MEMORY).remote()
        try:
            return bool(await asyncio.wait_for(probe.node.remote(), 60) == node_id)
        finally:
            ray.kill(probe)

    asyncio.run(eventually(landed_there, timeout=timeout, interval=0.5,
                           what=f"a soft affinity to node {node_id}"))


def agent_ports() -> dict[str, int]:
    """Fixed ports for a node's agents: with dynamic ones its raylet waits (about 16 s) for the
    agents to write them to files and aborts the node when they are late, as on a busy
    machine."""
    ports = []
    for _ in range(4):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(int(probe.getsockname()[1]))
    names = ("metrics_agent_port", "metrics_export_port", "dashboard_agent_listen_port",
             "runtime_env_agent_port")
    return dict(zip(names, ports, strict=True))


def actors_by_node() -> dict[str, list[str]]:
    """Alive actors (named ones by name, Serve replicas by class) per node id, from the GCS."""
    from ray._private import state

    found: dict[str, list[str]] = {}
    for info in state.actors().values():
        if info["State"] != "ALIVE":
            continue
        label = info["Name"] or info["ActorClassName"]
        if info["ActorClassName"].startswith("ServeReplica"):
            label = "replica"
        found.setdefault(info["Address"]["NodeID"], []).append(label)
    return found


async def host_nodes() -> dict[int, str]:
    hosts = [ray.get_actor(host_name(i), namespace=NAMESPACE) for i in range(HOSTS)]
    statuses = await asyncio.gather(*(h.status.remote() for h in hosts))
    return {i: s["node_id"] for i, s in enumerate(statuses)}


async def ready(port: int) -> bool:
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            return (await client.get(f"http://127.0.0.1:{port}/health/ready")).status_code == 200
    except httpx.HTTPError:
        return False


async def farm_duplicates(running: RunningSandboxes, keys: set[str]) -> int:
    """Queue items on the farm repeating one job attempt (same `job_key#attempt` note)."""
    sp = SandboxConfig().simplyprint
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(
            f"{running.urls['simplyprint']}/{sp.company_id}/queue/GetItems",
            params={"groups": ""}, headers={"X-API-KEY": sp.api_key})
    response.raise_for_status()
    queue = response.json().get("queue") or {}
    notes = Counter(str(i.get("note")) for i in [*queue.get("items", []),
                                                  *queue.get("done_items", [])]
                    if str(i.get("note") or "").split("#")[0] in keys)
    return sum(n - 1 for n in notes.values() if n > 1)


async def test_two_nodes_lose_one_mid_run_and_fulfil_every_order_once(
        cluster: tuple[Cluster, Any, int], db_pool: Pool) -> None:
    nodes, worker, port = cluster
    head_id, worker_id = nodes.head_node.node_id, worker.node_id
    say(f"nodes: head {head_id}, worker {worker_id}")
    assert head_id != worker_id
    await eventually(lambda: ready(port), timeout=240, interval=1, what="/health/ready")

    placed = await host_nodes()
    ordered = sorted((head_id, worker_id))
    say(f"entity hosts by node: {placed}")
    assert placed == {i: ordered[i % 2] for i in range(HOSTS)}, "host i on the i-th node"
    on_worker = sorted(i for i, node in placed.items() if node == worker_id)

    async def replicas_on_both() -> bool:
        by_node = actors_by_node()
        return all("replica" in by_node.get(n, []) for n in (head_id, worker_id))
    await eventually(replicas_on_both, timeout=120, interval=1, what="replicas on both nodes")
    say(f"actors by node: { {n[:12]: sorted(a) for n, a in actors_by_node().items()} }")

    config = SandboxConfig(seed=11, speedup=3600.0)
    config.sendcloud.status_interval = 600
    config.simplyprint.printers = [PrinterSpec(name=f"MK4 #{i}", model="MK4") for i in range(6)]
    running = await serve_sandboxes(config)
    try:
        tenant_id = await create_tenant(db_pool, f"cluster-{uuid.uuid4().hex[:8]}")
        async with db_pool.acquire() as conn:
            await seed_catalog(conn, tenant_id)
        key = (await create_api_key(db_pool, tenant_id, "cluster")).key
        await connect_tenant(f"http://127.0.0.1:{port}", key, running.urls, config)
        shopify = running.sandboxes.shopify
        orders = [int(shopify.create_order(OrderSpec(line_items=[
            LineItemSpec(sku=sku, quantity=qty) for sku, qty in MIX[i % len(MIX)]]))["id"])
            for i in range(ORDERS)]

        async def some_in_progress() -> int:
            return int(await db_pool.fetchval(
                "SELECT count(*) FROM orders WHERE tenant_id = $1", tenant_id))
        await eventually(some_in_progress, timeout=180, interval=0.2, what="orders created")

        killed = time.monotonic()
        nodes.remove_node(worker, allow_graceful=False)  # SIGKILL: raylet, store, its workers
        say(f"killed node {worker_id} (its hosts {on_worker}) with "
            f"{await some_in_progress()}/{ORDERS} orders in")

        async def served_from_survivor() -> bool:
            try:
                now = await asyncio.wait_for(host_nodes(), 10)
            except Exception:
                return False
            return all(now[i] == head_id for i in on_worker)
        await eventually(served_from_survivor, timeout=RECOVERY_LIMIT, interval=0.5,
                         what="lost node's entity hosts answering from the survivor")
        recovery = time.monotonic() - killed
        say(f"recovery: hosts {on_worker} serve again from {head_id} after {recovery:.1f} s")
        assert recovery <= RECOVERY_LIMIT

        async def all_done() -> dict[str, str] | None:
            rows = await db_pool.fetch(
                "SELECT shopify_order_id, status FROM orders WHERE tenant_id = $1", tenant_id)
            statuses = {str(r["shopify_order_id"]): str(r["status"]) for r in rows}
            finished = {"FULFILLED", "FAILED", "CANCELLED", "ON_HOLD"}
            if len(statuses) == ORDERS and set(statuses.values()) <= finished:
                return statuses
            return None
        final = await eventually(all_done, timeout=420, interval=1, what="every order finished")
        assert set(final.values()) == {"FULFILLED"}, final

        jobs = await db_pool.fetchrow(
            "SELECT count(*) AS total, count(DISTINCT job_key) AS distinct_keys"
            " FROM print_jobs WHERE tenant_id = $1", tenant_id)
        assert jobs["total"] == jobs["distinct_keys"] > ORDERS
        keys = {str(r["job_key"]) for r in await db_pool.fetch(
            "SELECT job_key FROM print_jobs WHERE tenant_id = $1", tenant_id)}
        assert await farm_duplicates(running, keys) == 0
        ours = [o for o in shopify.orders.values() if int(o["id"]) in set(orders)]
        fulfilments = Counter(int(o["id"]) for o in ours for f in o.get("fulfillments", [])
                              if f.get("status") == "success")
        assert fulfilments == dict.fromkeys(orders, 1)
        shipments = await db_pool.fetchval(
            "SELECT count(*) FROM shipments WHERE tenant_id = $1 AND parcel_id IS NOT NULL",
            tenant_id)
        assert shipments == ORDERS
        assert len(running.sandboxes.sendcloud.parcels) == ORDERS
        say(f"{ORDERS}/{ORDERS} fulfilled; {jobs['total']} print jobs, 0 duplicates; "
            f"{shipments} parcels; 1 fulfilment each")
    finally:
        await db_pool.execute("UPDATE integrations SET enabled = false WHERE tenant_id = $1",
                              tenant_id)
        await running.stop()
