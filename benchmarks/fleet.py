"""A simulated farm of thousands of printers on the printer entities: telemetry, dispatch, lag.

    .venv/bin/python benchmarks/fleet.py [--printers 5000] [--tenants 200] [--seconds 90]
                                         [--hosts 2] [--repeat 1] [--json]

One SimplyPrint sandbox (on loopback, real HTTP) holds every printer; each tenant owns an equal
share of them in smart-dispatch mode, with a backlog of queued jobs plus a steady stream of new
ones. Telemetry: every printer reports its printers/Get row every 5 s (0.2 Hz, 1,000 frames/s
for 5,000 printers), stamped when the sandbox produced it and delivered to the printer entities
in one Ray call per host per 100 ms tick, as a webhook relay would. Farm job events (started,
done) reach the printers the same way; the HTTP ingress and inbox in front of them have their
own figures. The printers claim jobs in PostgreSQL and start them with CreateJob on the sandbox.

Figures, all over the measured window only (warm-up frames still in flight are awaited before
it starts and never counted): telemetry frames sent, applied by the entities, and superseded
(a printer's observation replaced in its latest-wins mailbox by a newer one before it was
applied: dropped, by design), so applied + superseded + refused = sent; the dropped share;
p50/p99 lag from a frame's creation to the entity applying it, over applied frames (measured in
the entity); the age of the state an operator sees, sampled every second on random printers by
asking the entity (time since the frame it holds was produced, which includes the 5 s between
two frames) and how far that state is behind the newest frame produced for the printer by the
time the answer arrives; dispatch
decisions/s (jobs claimed and started); p99 from a printer finishing a print (ready again) to
its next job starting, from the sandbox's own job timestamps; RSS of this run's Ray processes.
`--repeat N` runs it all N times and reports the median, min and max of each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import os
import random
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import ray
from cryptography.fernet import Fernet

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))

from actors.router import EntityRouter, rendezvous
from actors.runtime import start_runtime, stop_runtime
from benchmarks._common import own_ray_rss_mb, percentile, repeated, services, show
from forma3d.db.pool import Pool, create_pool
from forma3d.domain.printing.fleet import observe_row
from forma3d.handlers.printer import observation
from forma3d.integrations.settings import SimplyPrintSettings
from forma3d.messaging.envelope import Envelope
from forma3d.messaging.fleet import HostObservations
from forma3d.messaging.printer import FarmEvent, GetPrinter
from forma3d.stack import RAY_START_ENVIRONMENT, start_ray
from forma3d.store.integrations import save_integration
from sandbox.farm import MaterialSpec, PrinterSpec
from sandbox.server import RunningSandboxes, SandboxConfig, serve_sandboxes
from sandbox.tenant import fake_gcode

SPEEDUP = 180.0  # simulated seconds per real second
TELEMETRY_PERIOD = 5.0  # seconds between two frames of one printer (0.2 Hz)
TICK = 0.1
STATE_SAMPLES = 100  # printers asked for their state per second
STATE_ASK_TIMEOUT = 30.0  # seconds; a slower answer is counted in state_ask_timeouts
# Printer kinds and the jobs that fit them: (model, nozzle, material, colour).
KINDS = [("MK4", 0.4, "PLA", "Black"), ("MK4", 0.6, "PLA", "White"),
         ("X1C", 0.4, "PETG", "Black"), ("X1C", 0.4, "PLA", "Red")]
MODEL_NAMES = {"MK4": "Original Prusa MK4", "X1C": "X1 Carbon"}


def job_tags(kind: int) -> list[str]:
    model, nozzle, material, colour = KINDS[kind]
    return [f"model:{MODEL_NAMES[model]}", f"nozzle:{nozzle}", f"filament:{material}/{colour}"]


class Bench:
    def __init__(self, args: argparse.Namespace, database_url: str) -> None:
        self.args = args
        self.database_url = database_url
        self.rng = random.Random(11)
        self.tenants = [uuid.uuid4() for _ in range(args.tenants)]
        self.printers: dict[int, tuple[str, str]] = {}  # farm id -> (tenant, printer uuid)
        self.events: list[Envelope] = []
        self.refusals: dict[str, int] = {}
        self.inflight: set[asyncio.Task[None]] = set()
        self.counts: dict[str, int] = defaultdict(int)  # of the measured window only
        self.measuring = False
        self.last_sent: dict[str, float] = {}  # printer uuid -> production time of its newest

    def kind(self, i: int) -> tuple[str, float, str, str]:
        """Printer i belongs to tenant i % tenants; kinds vary within every tenant."""
        return KINDS[(i // len(self.tenants)) % len(KINDS)]

    def farm_config(self) -> SandboxConfig:
        config = SandboxConfig(seed=3, speedup=SPEEDUP)
        sp = config.simplyprint
        sp.auto_print = False
        sp.default_print_seconds = 3600
        sp.printers = [PrinterSpec(id=1001 + i, name=f"P{i:05d}", model=self.kind(i)[0],
                                   nozzle=self.kind(i)[1],
                                   materials=[MaterialSpec(type=self.kind(i)[2],
                                                           color=self.kind(i)[3])])
                       for i in range(self.args.printers)]
        return config

    async def seed(self, pool: Pool, url: str, config: SandboxConfig) -> None:
        run = uuid.uuid4().hex[:8]
        await pool.executemany("INSERT INTO tenants (id, slug, name) VALUES ($1, $2, $2)",
                               [(t, f"fleet-{run}-{i}") for i, t in enumerate(self.tenants)])
        sp = config.simplyprint
        for tenant in self.tenants:
            await save_integration(pool, tenant, SimplyPrintSettings(
                company_id=sp.company_id, api_key=sp.api_key, webhook_secret=sp.webhook_secret,
                base_url=url, files_url=url, dispatch_mode="smart"))
        rows = []
        for i in range(self.args.printers):
            tenant = self.tenants[i % len(self.tenants)]
            printer_id = uuid.uuid4()
            model, nozzle, material, colour = self.kind(i)
            rows.append((printer_id, tenant, f"P{i:05d}", str(1001 + i), 1001 + i,
                         MODEL_NAMES[model], Decimal(str(nozzle)), "operational", True, True,
                         True, True, [{"slot": 0, "type": material, "color": colour}]))
            self.printers[1001 + i] = (str(tenant), str(printer_id))
        await pool.executemany(
            """INSERT INTO printers (id, tenant_id, name, external_id, farm_printer_id, model,
                                    nozzle_diameter, state, online, enabled, ready, auto_ready,
                                    materials)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""", rows)
        self.files: dict[uuid.UUID, list[uuid.UUID]] = {}
        for tenant in self.tenants:
            ids = []
            for minutes in (180, 360, 720, 1440):  # 1 to 8 real minutes at SPEEDUP
                content = fake_gcode(f"{tenant}-{minutes}", minutes, 20)
                file_id = uuid.uuid4()
                await pool.execute(
                    """INSERT INTO print_files (id, tenant_id, filename, content_hash, size_bytes,
                                                content, estimated_seconds)
                       VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                    file_id, tenant, f"part-{minutes}.gcode",
                    hashlib.sha256(content).hexdigest(), len(content), content, minutes * 60)
                ids.append(file_id)
            self.files[tenant] = ids

    async def add_jobs(self, pool: Pool, count: int) -> None:
        """Queued STOCK jobs spread over tenants and printer kinds (best first: priority)."""
        rows = []
        for _ in range(count):
            tenant = self.rng.choice(self.tenants)
            kind = self.rng.randrange(4)
            rows.append((uuid.uuid4(), tenant, f"bench:{uuid.uuid4().hex}", "STOCK", 1,
                         self.rng.choice(self.files[tenant]), "QUEUED",
                         self.rng.choice((0, 0, 0, 1)), self.rng.randrange(1000),
                         job_tags(kind)))
        await pool.executemany(
            """INSERT INTO print_jobs (id, tenant_id, job_key, purpose, copy_number, file_id,
                                       status, priority, position, required_tags)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""", rows)

    def on_farm_event(self, original: Any) -> Any:
        """The sandbox's webhook emitter, teed to the printer entities (job.* only)."""

        def emit(event: str, data: dict[str, Any]) -> None:
            original(event, data)
            job = data.get("job") or {}
            owner = self.printers.get(int(job.get("printer_id") or 0))
            if owner and event.startswith("job."):
                self.events.append(FarmEvent(
                    tenant_id=uuid.UUID(owner[0]), printer_id=uuid.UUID(owner[1]), event=event,
                    job=job, at=time.time()).envelope())

        return emit

    async def feed(self, running: RunningSandboxes, router: EntityRouter,
                   until: float) -> int:
        """Telemetry at 0.2 Hz per printer plus the farm's job events, every TICK seconds."""
        sandbox = running.sandboxes.simplyprint
        ids = list(self.printers)
        self.rng.shuffle(ids)
        per_tick = len(ids) * TICK / TELEMETRY_PERIOD
        sent, cursor, carry = 0, 0, 0.0
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while loop.time() < until:
            carry += per_tick
            batch = []
            now = time.time()
            while carry >= 1:
                farm_id = ids[cursor % len(ids)]
                cursor, carry = cursor + 1, carry - 1
                tenant, printer = self.printers[farm_id]
                row = sandbox.printer_row(sandbox.farm.printers[farm_id])
                self.last_sent[printer] = now
                batch.append(observation(uuid.UUID(tenant), uuid.UUID(printer),
                                         observe_row(row, now)).envelope())
            events, self.events = self.events, []
            # Fire and collect later, as a relay with many requests in flight would: a printer
            # busy starting a job delays its own frame, never the next tick.
            task = asyncio.create_task(self.deliver(router, batch + events, self.measuring))
            self.inflight.add(task)
            task.add_done_callback(self.inflight.discard)
            sent += len(batch)
            if self.measuring:
                self.counts["frames_sent"] += len(batch)
                self.counts["farm_events_sent"] += len(events)
            next_tick += TICK
            await asyncio.sleep(max(0.0, next_tick - loop.time()))
        return sent

    async def deliver(self, router: EntityRouter, envelopes: list[Envelope],
                      counted: bool) -> None:
        """One Ray call per host. A frame's reply says what became of it: applied, or
        "superseded" (a newer frame of the printer took its place before it was applied);
        refusals are counted by error (none is expected). `counted`: sent while measuring."""
        groups: dict[int, list[Envelope]] = defaultdict(list)
        for envelope in envelopes:
            groups[rendezvous(envelope.address, len(router.hosts))].append(envelope)
        replies = await asyncio.gather(*(router.hosts[i].deliver_many.remote(batch)
                                         for i, batch in groups.items()))
        sent = itertools.chain.from_iterable(groups.values())
        for envelope, reply in zip(sent, itertools.chain.from_iterable(replies), strict=True):
            if not counted:
                continue
            frame = envelope.type == "printer.observe"
            if reply.error:
                key = f"{reply.error_type}: {reply.error[:80]}"
                self.refusals[key] = self.refusals.get(key, 0) + 1
                self.counts["frames_refused" if frame else "farm_events_refused"] += 1
            elif frame and reply.value == "superseded":
                self.counts["frames_superseded"] += 1
            else:
                self.counts["frames_applied" if frame else "farm_events_applied"] += 1

    async def sample_state(self, router: EntityRouter, until: float) -> tuple[
            list[float], list[float]]:
        """Every second, ask random printers for their state as an operator would: its age (now
        minus the production time of the frame it holds) and how far it is behind the newest
        frame sent for that printer."""
        ages: list[float] = []
        behind: list[float] = []
        self.state_asks: list[float] = []
        owners = list(self.printers.values())
        loop = asyncio.get_running_loop()

        async def one(tenant: str, printer: str) -> None:
            asked = time.time()
            try:
                state = await router.call(GetPrinter(tenant_id=uuid.UUID(tenant),
                                                     printer_id=uuid.UUID(printer)),
                                          timeout=STATE_ASK_TIMEOUT)
            except TimeoutError:  # an operator would have given up: counted, not hidden
                self.counts["state_ask_timeouts"] += 1
                return
            now = time.time()
            sent_at = self.last_sent.get(printer)  # the newest frame produced by the answer
            self.state_asks.append(now - asked)
            at = (state.get("telemetry") or {}).get("at")
            if at is None or sent_at is None:
                return
            ages.append(now - at)
            behind.append(max(0.0, sent_at - at))

        while loop.time() < until:
            tick = loop.time()
            picked = self.rng.sample(owners, min(STATE_SAMPLES, len(owners)))
            await asyncio.gather(*(one(t, p) for t, p in picked))
            await asyncio.sleep(max(0.0, tick + 1.0 - loop.time()))
        return ages, behind


    async def stream_jobs(self, pool: Pool, until: float, per_second: float) -> None:
        loop = asyncio.get_running_loop()
        while loop.time() < until:
            await self.add_jobs(pool, max(1, int(per_second)))
            await asyncio.sleep(1.0)

    async def host_observations(self, router: EntityRouter) -> list[float]:
        """Every host's lag samples (taken and reset there), asked through a fleet entity key
        that hashes to that host."""
        lags: list[float] = []
        for index in range(len(router.hosts)):
            key = next(k for k in (str(uuid.UUID(int=n)) for n in range(1, 10_000))
                       if rendezvous(f"fleet:{k}", len(router.hosts)) == index)
            stats = await router.call(HostObservations(tenant_id=uuid.UUID(key)))
            lags += stats["lags"]
        return lags

    async def warm_up(self, pool: Pool, running: RunningSandboxes,
                      router: EntityRouter) -> float:
        """Feed telemetry while every idle printer takes its first job (a cold-start burst of
        one dispatch per printer); returns how long that took."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while loop.time() - started < self.args.warmup:
            await self.feed(running, router, loop.time() + 2.0)
            busy = await pool.fetchval(
                "SELECT count(*) FROM print_jobs WHERE tenant_id = ANY($1)"
                " AND status = 'PRINTING'", self.tenants)
            if busy >= 0.98 * self.args.printers:
                break
        return loop.time() - started

    async def run(self, router: EntityRouter) -> dict[str, Any]:
        config = self.farm_config()
        running = await serve_sandboxes(config)
        farm = running.sandboxes.simplyprint.farm
        farm.emit = self.on_farm_event(farm.emit)
        pool = await create_pool(self.database_url, max_size=4)
        try:
            await self.seed(pool, running.urls["simplyprint"], config)
            await self.add_jobs(pool, self.args.printers * 4)  # the backlog
            warmup = await self.warm_up(pool, running, router)
            await asyncio.gather(*self.inflight)  # warm-up frames land before the window
            await self.host_observations(router)  # measure the steady state only
            self.measuring = True
            loop = asyncio.get_running_loop()
            started, start_wall = loop.time(), time.time()
            until = started + self.args.seconds
            streamer = asyncio.create_task(self.stream_jobs(pool, until, self.args.printers / 200))
            sampler = asyncio.create_task(self.sample_state(router, until))
            await self.feed(running, router, until)
            feeding = loop.time() - started
            await asyncio.gather(*self.inflight)
            ages, behind = await sampler
            streamer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await streamer
            lags = await self.host_observations(router)
            dispatched = await pool.fetchval(
                "SELECT count(*) FROM print_jobs WHERE tenant_id = ANY($1)"
                " AND assigned_at >= to_timestamp($2)", self.tenants, start_wall)
            rss, processes = own_ray_rss_mb()
            statuses = {r[0]: r[1] for r in await pool.fetch(
                "SELECT status, count(*) FROM print_jobs WHERE tenant_id = ANY($1)"
                " GROUP BY status", self.tenants)}
            errors = {r[0]: r[1] for r in await pool.fetch(
                "SELECT left(error, 60), count(*) FROM print_jobs WHERE error IS NOT NULL"
                " AND tenant_id = ANY($1) GROUP BY 1", self.tenants)}
        finally:
            await pool.close()
            await running.stop()
        gaps = ready_to_start(farm.jobs.values())
        counts = self.counts
        sent = counts["frames_sent"]
        return {
            "printers": self.args.printers, "tenants": self.args.tenants,
            "ray_rss_mb": rss, "ray_processes_mb": processes,
            "frames_sent": sent, "frames_applied": counts["frames_applied"],
            "frames_superseded": counts["frames_superseded"],
            "frames_refused": counts["frames_refused"],
            "dropped_share": round(counts["frames_superseded"] / sent, 4) if sent else None,
            "frames_sent_per_s": round(sent / feeding, 1),
            "frames_applied_per_s": round(counts["frames_applied"] / feeding, 1),
            "lag_samples": len(lags),
            "lag_p50_ms": round(percentile(lags, 50) * 1000, 1),
            "lag_p99_ms": round(percentile(lags, 99) * 1000, 1),
            "state_samples": len(ages),
            "state_age_p50_ms": round(percentile(ages, 50) * 1000, 1),
            "state_age_p99_ms": round(percentile(ages, 99) * 1000, 1),
            "state_ask_timeouts": counts["state_ask_timeouts"],
            "state_ask_p50_ms": round(percentile(self.state_asks, 50) * 1000, 1),
            "state_ask_p99_ms": round(percentile(self.state_asks, 99) * 1000, 1),
            "state_behind_newest_p50_ms": round(percentile(behind, 50) * 1000, 1),
            "state_behind_newest_p99_ms": round(percentile(behind, 99) * 1000, 1),
            "dispatch_per_s": round(dispatched / feeding, 1),
            "ready_to_start_p99_ms": round(percentile(gaps, 99) * 1000, 1),
            "ready_to_start_p50_ms": round(percentile(gaps, 50) * 1000, 1),
            "farm_events_sent": counts["farm_events_sent"],
            "farm_events_applied": counts["farm_events_applied"],
            "jobs_started_on_farm": len(farm.jobs),
            "farm_jobs_done": sum(j.state == "done" for j in farm.jobs.values()),
            "restarts_measured": len(gaps),
            "job_statuses": statuses, "errors": errors,
            "refusals": self.refusals,
            "seconds": round(feeding, 1), "warmup_s": round(warmup, 1),
            "hosts": self.args.hosts,
        }


def ready_to_start(jobs: Any) -> list[float]:
    """Real seconds from a print ending to the same printer's next print starting."""
    by_printer: dict[int, list[Any]] = defaultdict(list)
    for job in jobs:
        by_printer[job.printer_id].append(job)
    gaps = []
    for runs in by_printer.values():
        runs.sort(key=lambda j: j.started)
        for prev, nxt in itertools.pairwise(runs):
            if prev.ended is not None:
                gaps.append(max(0.0, (nxt.started - prev.ended) / SPEEDUP))
    return gaps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--printers", type=int, default=5000)
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=180.0,
                        help="at most this long for every printer to take its first job")
    parser.add_argument("--repeat", type=int, default=1, help="runs; figures are their median")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.printers < args.tenants or args.tenants < 1:
        parser.error("need at least one printer per tenant")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    show(repeated(lambda: once(args), args.repeat), args.json)


def once(args: argparse.Namespace) -> dict[str, Any]:
    """One run on a fresh local Ray cluster and, unless DATABASE_URL names a server, a fresh
    embedded PostgreSQL: an earlier run's printers, tenants and queued jobs would otherwise stay
    beside this one's and weigh on it."""
    with tempfile.TemporaryDirectory(prefix="forma3d-fleet-") as data, \
            services(Path(data)) as svc:
        os.environ["REDIS_URL"] = svc.redis_url  # entities publish telemetry to live channels
        secret = os.environ.setdefault("FORMA3D_SECRET_KEY", Fernet.generate_key().decode())
        # As `scripts/up` starts Ray: a node start that misses Ray's 30 s registration window
        # on a loaded machine is cleaned up and tried again instead of ending the run.
        for name, value in RAY_START_ENVIRONMENT.items():
            os.environ.setdefault(name, value)
        start_ray(lambda: ray.init(address="local", num_cpus=2, include_dashboard=False,
                                   namespace="forma3d", object_store_memory=200 * 2**20,
                                   log_to_driver=False))
        try:
            runtime = start_runtime(svc.database_url, args.hosts, fleet_sync_seconds=0,
                                    fleet_wake_seconds=2.0, ask_timeout=60,
                                    env={"FORMA3D_SECRET_KEY": secret})
            result = asyncio.run(Bench(args, svc.database_url).run(runtime.router))
        finally:
            stop_runtime(args.hosts)
            ray.shutdown()
    return result


if __name__ == "__main__":
    main()
