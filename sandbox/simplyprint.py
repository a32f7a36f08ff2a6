"""SimplyPrint simulator: the ``/{company_id}/...`` API over a simulated farm, plus webhooks.

Facts from shared/reference/external-apis.md section 2 and reference/simplyprint/*.md: the
``{"status": bool, "message": ...}`` envelope with logical errors as HTTP 200 and status false,
``X-API-KEY`` auth, query-string fields (pid, job, id) kept apart from body fields, and webhooks
that carry the shared secret verbatim in both X-SP-Secret and X-SP-Token.
"""

from __future__ import annotations

import itertools
import json
import math
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from forma3d.integrations.signatures import simplyprint_headers
from sandbox.clock import SimClock
from sandbox.control import control_routes, read_json
from sandbox.farm import (
    SYSTEM_USER,
    Farm,
    FarmError,
    Printer,
    PrinterSpec,
    default_farm,
    parse_ids,
)
from sandbox.multipart import parse_form
from sandbox.ratelimit import Limits, WindowLimit
from sandbox.webhooks import WebhookDispatcher

NOT_LOGGED_IN = "No API key provided, or not logged in"
NO_ACCESS = "You don't have access to this account"
TOO_MANY = "You're requesting too much - slow down"
NO_PERMISSION = "You don't have permission to do this"  # wording assumed; not documented
SET_ORDER_PERMISSIONS = ("print_queue", "reorder_queue", "queue_see_others")
MAX_PART = 100 * 2**20
# SimplyPrint documents no retry schedule; assumed like other services (simulated seconds).
SIMPLYPRINT_RETRY_DELAYS = [60.0, 300.0, 900.0, 3600.0]
WEBHOOK_EVENTS = (
    "job.started",
    "job.paused",
    "job.resumed",
    "job.cancelled",
    "job.done",
    "job.failed",
    "job.bed_cleared",
    "job.objects_skipped",
    "queue.add_item",
    "queue.delete_item",
    "queue.move_item",
    "queue.empty_queue",
    "printer.autoprint_state_changed",
    "printer.nozzle_size_changed",
    "printer.material_changed",
    "printer.custom_tag_assigned",
    "printer.custom_tag_detached",
    "company.autoprint_state_changed",
    "test",
)


class SimplyPrintConfig(BaseModel):
    """One simulated company and its farm."""

    company_id: int = 1234
    api_key: str = "sp_sandbox_key"
    webhook_secret: str = "simplyprint-sandbox-secret"
    webhook_targets: list[str] = Field(default_factory=list)
    webhook_events: list[str] | None = None  # None: every event
    loss_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    retry_delays: list[float] = Field(default_factory=lambda: list(SIMPLYPRINT_RETRY_DELAYS))
    failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    default_print_seconds: float = 3600.0
    bed_clear_seconds: float = 0.0
    auto_print: bool = True
    requeue_failed: bool = False
    printers: list[PrinterSpec] = Field(default_factory=default_farm)
    rate_limit_per_minute: int | None = None
    auth_error_status: int = 200  # SimplyPrint answers most refusals with HTTP 200
    # The API key's permissions; None: every one. Only endpoints that list several (SetOrder)
    # check them here.
    permissions: list[str] | None = None


@dataclass
class WebhookTarget:
    id: int
    url: str
    secret: str | None
    events: list[str] | None
    enabled: bool = True
    name: str = "Sandbox target"
    description: str = ""
    created_at: str = ""
    from_api: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_by": {k: SYSTEM_USER[k] for k in ("id", "first_name", "last_name", "avatar")},
            "name": self.name,
            "description": self.description,
            "url": self.url,
            "events": list(self.events or WEBHOOK_EVENTS),
            "secret": self.secret,
            "enabled": self.enabled,
            "oauth_client_id": None,
            "created_at": self.created_at,
            "updated_at": self.created_at,
        }


@dataclass
class Upload:
    name: str
    total: int
    parts: list[bytes] = field(default_factory=list)


class SimplyPrintSandbox:
    """The company: API key, farm, webhook subscriptions and in-progress chunked uploads."""

    def __init__(self, config: SimplyPrintConfig, clock: SimClock, seed: int = 0) -> None:
        self.config = config
        self.clock = clock
        self.dispatcher = WebhookDispatcher(
            "simplyprint",
            clock,
            loss_rate=config.loss_rate,
            seed=seed,
            retry_delays=config.retry_delays,
            timeout=10.0,
            connect_timeout=5.0,
        )
        self._webhook_ids = itertools.count(1)
        self.webhooks: list[WebhookTarget] = []
        self.set_targets(config.webhook_targets)
        self.farm = Farm(
            clock,
            self.emit,
            company_id=config.company_id,
            seed=seed,
            failure_rate=config.failure_rate,
            default_print_seconds=config.default_print_seconds,
            bed_clear_seconds=config.bed_clear_seconds,
            auto_print=config.auto_print,
            requeue_failed=config.requeue_failed,
        )
        for spec in config.printers:
            self.farm.add_printer(spec)
        self.uploads: dict[str, Upload] = {}
        self.limits = (
            Limits(WindowLimit(config.rate_limit_per_minute, 60.0))
            if config.rate_limit_per_minute
            else None
        )

    def targets(self) -> list[str]:
        return [w.url for w in self.webhooks if not w.from_api]

    def set_targets(self, urls: list[str]) -> None:
        """Sandbox-configured targets (config secret, every event); API-made webhooks stay."""
        self.webhooks = [w for w in self.webhooks if w.from_api]
        now = self.clock.now().isoformat()
        for url in urls:
            self.webhooks.append(
                WebhookTarget(
                    id=next(self._webhook_ids),
                    url=url,
                    secret=self.config.webhook_secret,
                    events=self.config.webhook_events,
                    created_at=now,
                )
            )

    def emit(self, event: str, data: dict[str, Any]) -> None:
        """Envelope ``{webhook_id, event, timestamp, data}``; secret sent verbatim, both headers."""
        for hook in self.webhooks:
            if not hook.enabled or (hook.events is not None and event not in hook.events):
                continue
            self._post(hook, event, data)

    def _post(self, hook: WebhookTarget, event: str, data: dict[str, Any]) -> None:
        envelope = {
            "webhook_id": hook.id,
            "event": event,
            "timestamp": int(self.clock.timestamp()),
            "data": data,
        }
        body = json.dumps(envelope, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "SimplyPrint-Webhooks"}
        if hook.secret:
            headers.update(simplyprint_headers(hook.secret))
        self.dispatcher.send(hook.url, body, headers, event)

    def printer_row(self, printer: Printer) -> dict[str, Any]:
        """A printers/Get row: id, sort_order, printer{...}, filament, job, tags."""
        farm = self.farm
        open_items = farm.open_items()
        matching = [i for i in open_items if farm.matches(printer, i)]
        job = printer.job
        return {
            "id": printer.id,
            "sort_order": printer.sort_order,
            "printer": {
                "name": printer.name,
                "state": printer.state,
                "group": printer.group,
                "position": printer.sort_order,
                "api": "SimplyPrint",
                "ui": "SimplyPrint",
                "ip": f"10.0.0.{printer.id % 250 + 2}",
                "public": 0,
                "machine": "Sandbox",
                "online": printer.online,
                "region": "sandbox",
                "firmware": "Sandbox Firmware 1.0",
                "spVersion": "4.0.0",
                "temps": {
                    "ambient": 22,
                    "current": {"tool": [215 if job else 25], "bed": 60 if job else 25},
                    "target": {"tool": [215 if job else 0], "bed": 60 if job else 0},
                },
                "hasPSU": 0,
                "psuOn": True,
                "hasFilSensor": False,
                "filSensor": False,
                "filamentRetraction": 0,
                "model": printer.model_info,
                "hasCam": 0,
                "hasQueue": {"items": len(matching), "fits": bool(matching)},
                "health": None,
                "unsupported": 0,
                "latency": None,
                "outOfOrder": 0,
                "autoprint": printer.autoprint,
            },
            "filament": None,
            "job": None
            if job is None
            else {
                "id": job.id,
                "uid": job.uid,
                "state": "paused" if job.state == "paused" else "printing",
                "file": job.file.name,
                "percentage": farm.percentage(job),
                "time": int(job.duration - farm.printed_seconds(job)),
                "canPreview": False,
                "layer": None,
            },
            "tags": printer.tags(),
        }

    async def aclose(self) -> None:
        await self.farm.aclose()
        await self.dispatcher.aclose()


def _iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp, UTC).replace(microsecond=0).isoformat()


def build_simplyprint_app(sandbox: SimplyPrintSandbox) -> Starlette:
    """API routes under ``/{company_id}/`` (files host upload included) and ``/_sandbox/``."""
    farm = sandbox.farm
    config = sandbox.config

    def ok(**payload: Any) -> Response:
        return JSONResponse({"status": True, "message": None, **payload})

    def refuse(message: str, status: int = 200) -> Response:
        return JSONResponse({"status": False, "message": message}, status_code=status)

    def guard(request: Request) -> Response | None:
        key = request.headers.get("X-API-KEY")
        bearer = request.headers.get("Authorization", "")
        if key is None and bearer.lower().startswith("bearer "):
            key = bearer[7:].strip()
        if key != config.api_key:
            return refuse(NOT_LOGGED_IN, config.auth_error_status)
        if request.path_params.get("company_id") != config.company_id:
            return refuse(NO_ACCESS, config.auth_error_status)
        if sandbox.limits is not None and not sandbox.limits.take():
            return refuse(TOO_MANY, 429)
        return None

    async def body_of(request: Request) -> dict[str, Any]:
        try:
            data = await read_json(request)
        except ValueError as exc:
            raise FarmError("Invalid JSON body") from exc
        if not isinstance(data, dict):
            raise FarmError("Invalid JSON body")
        return data

    def query_id(request: Request, name: str) -> int:
        value = request.query_params.get(name)
        if value is None or not value.strip().isdigit():
            raise FarmError(f"Missing or invalid {name}")
        return int(value)

    def endpoint(handler: Any) -> Any:
        """Auth, then the handler; a FarmError becomes SimplyPrint's HTTP 200 status false."""

        async def run(request: Request) -> Response:
            if (denied := guard(request)) is not None:
                return denied
            try:
                response: Response = await handler(request)
            except FarmError as exc:
                return refuse(str(exc))
            except (ValueError, TypeError, KeyError) as exc:
                return refuse(f"Invalid request: {exc}")
            return response

        return run

    async def account_test(request: Request) -> Response:
        return JSONResponse({"status": True, "message": "Your API key is valid!"})

    # -- files ----------------------------------------------------------------------------

    async def upload(request: Request) -> Response:
        raw = await request.body()
        form = parse_form(request.headers.get("content-type", ""), raw)
        if "fileId" in form.fields:  # api host: keep an API file in the user's library
            saved = farm.save_to_library(form.fields["fileId"])
            return ok(id=saved.id)
        part = form.files.get("file")
        if part is None:
            raise FarmError("No file uploaded")
        if len(part.content) > MAX_PART:
            return refuse("File part exceeds 100MB", 413)
        token = form.fields.get("continueToken")
        if token:
            pending = sandbox.uploads.get(token)
            if pending is None:
                raise FarmError("Invalid or expired continueToken")
            del sandbox.uploads[token]
        elif "totalSize" in form.fields:
            pending = Upload(name=part.filename, total=int(form.fields["totalSize"]))
        else:
            api_file = farm.add_file(part.filename, part.content)
            return ok(file={"id": api_file.id, "name": api_file.name, "size": api_file.size})
        pending.parts.append(part.content)
        received = sum(len(p) for p in pending.parts)
        if received < pending.total:
            token = secrets.token_urlsafe(48)
            sandbox.uploads[token] = pending
            return ok(continueToken=token)
        if received > pending.total:
            raise FarmError("Uploaded more bytes than totalSize")
        api_file = farm.add_file(pending.name, b"".join(pending.parts))
        return ok(file={"id": api_file.id, "name": api_file.name, "size": api_file.size})

    # -- queue ----------------------------------------------------------------------------

    async def add_item(request: Request) -> Response:
        item = farm.add_queue_item(await body_of(request))
        return ok(created_id=item.id)

    async def get_item(request: Request) -> Response:
        item = farm.queue.get(query_id(request, "id"))
        if item is None:
            raise FarmError("Queue item not found")
        return ok(queue=farm.queue_item_dict(item))

    async def get_items(request: Request) -> Response:
        printer_param = request.query_params.get("p")
        items = farm.open_items()
        fits = True
        if printer_param:
            printer = farm.printers.get(int(printer_param))
            if printer is None:
                raise FarmError("Printer not found")
            items = [i for i in items if farm.matches(printer, i)]
            fits = bool(items)
        payload: dict[str, Any] = {
            "queue": {
                "fits": fits,
                "items": [farm.queue_item_dict(i) for i in items],
            }
        }
        if "groups" in request.query_params:
            payload["queue"]["done_items"] = [
                {
                    **farm.queue_item_dict(i),
                    "ongoing": i.ongoing > 0,
                    "done": _iso(i.done_at),
                    "expires": None,
                }
                for i in farm.done_items()
            ]
            payload["groups"] = []
        return ok(**payload)

    async def delete_item(request: Request) -> Response:
        raw = request.query_params.get("jobs") or request.query_params.get("job")
        ids = parse_ids(raw)
        if not ids:
            raise FarmError("Missing or invalid job")
        for item_id in ids:
            farm.delete_queue_item(item_id)
        return ok()

    async def update_item(request: Request) -> Response:
        farm.update_queue_item(query_id(request, "job"), await body_of(request))
        return ok()

    async def next_items(request: Request) -> Response:
        printer_ids = parse_ids(request.query_params.get("p"))
        if not printer_ids:
            raise FarmError("Missing printer ids")
        matches: list[dict[str, Any]] = []
        for pid in printer_ids:
            printer = farm.printers.get(pid)
            if printer is None:
                raise FarmError(f"Printer {pid} not found")
            item, missed = farm.next_item_for(printer)
            if item is None:
                matches.append({"printer": pid, "match": False, "issues": [], "missed": missed})
            else:
                matches.append(
                    {
                        "id": item.id,
                        "index": farm.index_of(item),
                        "printer": pid,
                        "match": True,
                        "issues": [],
                        "missed": missed,
                        "name": item.filename,
                        "printed": item.printed,
                        "left": item.left,
                        "customFields": farm.queue_item_dict(item)["customFields"],
                    }
                )
        queue = {"total": len(farm.open_items()), "printers": printer_ids, "matches": matches}
        return ok(queue=queue)

    async def set_order(request: Request) -> Response:
        """queue/SetOrder answers `success` (not `status`), also when it refuses."""
        missing = [p for p in SET_ORDER_PERMISSIONS
                   if config.permissions is not None and p not in config.permissions]
        if missing:
            return JSONResponse({"success": False,
                                 "message": f"{NO_PERMISSION}: {', '.join(missing)}"},
                                status_code=config.auth_error_status)
        try:
            farm.move_queue_item(query_id(request, "job"), query_id(request, "from"),
                                 query_id(request, "to"))
        except FarmError as exc:
            return JSONResponse({"success": False, "message": str(exc)})
        return JSONResponse({"success": True, "message": None})

    async def empty_queue(request: Request) -> Response:
        for item in farm.open_items():
            farm.queue.pop(item.id, None)
        sandbox.emit("queue.empty_queue", {"user": SYSTEM_USER, "group": 0})
        return ok()

    async def queue_groups(request: Request) -> Response:
        return ok(list=[])

    # -- printers -------------------------------------------------------------------------

    async def printers_get(request: Request) -> Response:
        if "pid" in request.query_params:
            printer = farm.printers.get(query_id(request, "pid"))
            if printer is None:
                raise FarmError("Printer not found")
            return ok(page_amount=1, data=sandbox.printer_row(printer))
        if request.method == "POST":
            body = await body_of(request)
            limit = 100
        else:
            body = dict(request.query_params)
            limit = 25
        page = max(1, int(body.get("page") or 1))
        page_size = int(body.get("page_size") or 10)
        if not 1 <= page_size <= 100:
            raise FarmError("page_size must be between 1 and 100")
        page_size = min(page_size, limit)
        search = str(body.get("search") or "").lower()
        rows = sorted(farm.printers.values(), key=lambda p: p.sort_order)
        if search:
            rows = [p for p in rows if search in p.name.lower()]
        pages = max(1, math.ceil(len(rows) / page_size))
        chunk = rows[(page - 1) * page_size : page * page_size]
        return ok(page_amount=pages, data=[sandbox.printer_row(p) for p in chunk])

    async def create_job(request: Request) -> Response:
        body = await body_of(request)
        pids = parse_ids(body.get("pid")) or parse_ids(request.query_params.get("pid"))
        queue_file = body.get("queue_file", request.query_params.get("queue_file"))
        jobs = farm.create_jobs(
            pids,
            file_id=body.get("file_id"),
            filesystem=body.get("filesystem") or request.query_params.get("filesystem"),
            queue_file=int(queue_file) if queue_file not in (None, "") else None,
            next_queue_item=bool(body.get("next_queue_item", False)),
            custom_fields=body.get("custom_fields"),
        )
        files: dict[str, dict[str, Any]] = {}
        for job in jobs:
            entry = files.setdefault(
                job.file.id,
                {
                    "name": job.file.name,
                    "analysis": farm.analysis(job.file),
                    "printers": [],
                    "queued": job.queue_item_id is not None,
                    "cost": None,
                },
            )
            entry["printers"].append(job.printer_id)
        return ok(files=list(files.values()), jobIds=[job.id for job in jobs])

    def pids_of(request: Request) -> list[int]:
        pids = parse_ids(request.query_params.get("pid"))
        if not pids:
            raise FarmError("Missing or invalid pid")
        return pids

    async def pause(request: Request) -> Response:
        farm.pause(pids_of(request))
        return ok()

    async def resume(request: Request) -> Response:
        farm.resume(pids_of(request))
        return ok()

    async def cancel(request: Request) -> Response:
        body = await body_of(request)
        farm.cancel(pids_of(request), body.get("reason"), body.get("comment"))
        return ok()

    async def clear_bed(request: Request) -> Response:
        for pid in pids_of(request):
            farm.clear_bed(pid)
        return ok()

    async def autoprint_enabled(request: Request) -> Response:
        body = await body_of(request)
        farm.auto_print = bool(body.get("on"))
        sandbox.emit(
            "company.autoprint_state_changed", {"enabled": farm.auto_print, "user": SYSTEM_USER}
        )
        farm.dispatch()
        return ok()

    # -- jobs -----------------------------------------------------------------------------

    async def job_details(request: Request) -> Response:
        uid = request.query_params.get("id")
        if uid is None and request.method == "POST":
            uid = str((await body_of(request)).get("id") or "")
        job = farm.job_by_uid(uid or "")
        if job is None:
            raise FarmError("Print job not found")
        now = sandbox.clock.timestamp()
        printer = farm.printers.get(job.printer_id)
        details = {
            "id": job.id,
            "uid": job.uid,
            "filament": [],
            "pauses": [],
            "currentTime": int(now),
            "pictures": [],
            "notificationsSent": [],
            "cost": round(job.duration / 3600 * 0.35, 2),
            "customFields": {
                str(f.get("customFieldId")): f.get("value") for f in job.custom_fields
            },
            "ended": int(now - job.ended) if job.ended is not None else None,
            "failedReason": job.failed_reason,
            "cancelInfo": job.cancel_info,
            "analysis": farm.analysis(job.file),
            "notifications": {},
            "outsideSystem": False,
            "rating": None,
            "started": int(now - job.started),
            "created": int(now - job.created),
            "state": farm.job_webhook(job)["state"],
            "file": job.file.name,
            "percentage": farm.percentage(job),
            "time": int(job.duration - farm.printed_seconds(job))
            if job.ended is None
            else int(now - job.ended),
            "canPreview": False,
            "layer": None,
            "ai": [],
            "printer": {
                "id": job.printer_id,
                "name": printer.name if printer else None,
                "extruders": len(printer.materials) if printer else 1,
                "image": None,
                "deleted": 0 if printer else 1,
            },
            "spools": [],
        }
        return ok(job=details)

    async def paginated_jobs(request: Request) -> Response:
        body = await body_of(request)
        page = max(1, int(body.get("page") or 1))
        page_size = int(body.get("page_size") or 10)
        if not 1 <= page_size <= 100:
            raise FarmError("page_size must be between 1 and 100")
        printer_ids = parse_ids(body.get("printer_ids") or body.get("printer_ids[]"))
        statuses = (
            body.get("status") or body.get("accepted_statuses") or body.get("accepted_statuses[]")
        )
        wanted = {("done" if s == "finished" else str(s)) for s in statuses or []}
        start = body.get("start_date")
        end = body.get("end_date")

        def stamp(value: Any) -> float:
            text = str(value)
            if text.isdigit():
                return float(text)
            return (
                datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=UTC).timestamp()
            )

        rows = sorted(farm.jobs.values(), key=lambda j: j.id, reverse=True)
        if printer_ids:
            rows = [j for j in rows if j.printer_id in printer_ids]
        if wanted:
            rows = [j for j in rows if farm.job_status(j) in wanted]
        if start not in (None, ""):
            rows = [j for j in rows if j.started >= stamp(start)]
        if end not in (None, ""):
            rows = [j for j in rows if j.started <= stamp(end)]
        pages = max(1, math.ceil(len(rows) / page_size))
        chunk = rows[(page - 1) * page_size : page * page_size]
        data = []
        for job in chunk:
            item = farm.queue.get(job.queue_item_id) if job.queue_item_id else None
            data.append(
                {
                    "id": job.id,
                    "uid": job.uid,
                    "status": farm.job_status(job),
                    "cancelReasonType": (job.cancel_info or {}).get("reason") or None,
                    "rating": None,
                    "filename": job.file.name,
                    "startDate": _iso(job.started),
                    "endDate": _iso(job.ended),
                    "user": SYSTEM_USER["id"],
                    "autoprint": job.autoprint,
                    "outsideSystem": False,
                    "printer": job.printer_id,
                    "filament": "{}",
                    "filUsage": 0,
                    "filUsageGram": 0,
                    "currentPercentage": farm.percentage(job),
                    "printTime": int(farm.printed_seconds(job)),
                    "cost": None,
                    "queueItem": None
                    if job.queue_item_id is None
                    else {
                        "id": job.queue_item_id,
                        "user": SYSTEM_USER["id"],
                        "queueNum": job.queue_num or (farm.index_of(item) if item else 0),
                    },
                    "customFields": [
                        {"id": f.get("customFieldId"), "value": f.get("value")}
                        for f in job.custom_fields
                    ],
                }
            )
        return ok(data=data, page_amount=pages)

    # -- webhooks management --------------------------------------------------------------

    async def webhooks_get(request: Request) -> Response:
        return ok(data=[w.as_dict() for w in sandbox.webhooks])

    async def webhooks_create(request: Request) -> Response:
        body = await body_of(request)
        events = body.get("events")
        if not isinstance(events, list) or not events:
            raise FarmError("events: At least one event is required")
        for index, event in enumerate(events):
            if event not in WEBHOOK_EVENTS:
                raise FarmError(f"events.{index}: Invalid enum value specified!")
        if not body.get("name") or not str(body.get("url", "")).startswith(("http://", "https://")):
            raise FarmError("name and a valid url are required")
        secret = body.get("secret")
        if secret is not None and len(str(secret)) > 128:
            raise FarmError("secret: At most 128 characters")
        existing = next((w for w in sandbox.webhooks if w.id == body.get("id")), None)
        hook = existing or WebhookTarget(
            id=next(sandbox._webhook_ids),
            url="",
            secret=None,
            events=None,
            from_api=True,
            created_at=sandbox.clock.now().isoformat(),
        )
        hook.name = str(body["name"])
        hook.description = str(body.get("description") or "")
        hook.url = str(body["url"])
        hook.secret = str(secret) if secret is not None else None
        hook.enabled = bool(body.get("enabled", False))
        hook.events = [str(e) for e in events]
        if existing is None:
            sandbox.webhooks.append(hook)
        data = hook.as_dict()
        data["created_by"] = "Sandbox Operator"
        data["company"] = "Forma3D Sandbox"
        return ok(webhook=data)

    def hook_of(body: dict[str, Any]) -> WebhookTarget:
        hook = next((w for w in sandbox.webhooks if w.id == body.get("id")), None)
        if hook is None:
            raise FarmError("Webhook not found")
        return hook

    async def webhooks_delete(request: Request) -> Response:
        hook = hook_of(await body_of(request))
        sandbox.webhooks.remove(hook)
        return ok()

    async def webhooks_enabled(request: Request) -> Response:
        body = await body_of(request)
        hook_of(body).enabled = bool(body.get("enabled"))
        return ok()

    async def webhooks_test(request: Request) -> Response:
        hook = hook_of(await body_of(request))
        sandbox._post(hook, "test", {"message": "This is a test webhook from SimplyPrint"})
        return ok()

    async def not_found(request: Request) -> Response:
        return refuse("Endpoint not found", 404)

    # -- sandbox controls -----------------------------------------------------------------

    async def sb_printers(request: Request) -> Response:
        if request.method == "POST":
            try:
                spec = PrinterSpec.model_validate(await read_json(request))
                printer = farm.add_printer(spec)
            except (ValueError, FarmError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse({"printer": sandbox.printer_row(printer)}, status_code=201)
        rows = [sandbox.printer_row(p) for p in sorted(farm.printers.values(), key=lambda p: p.id)]
        return JSONResponse({"printers": rows})

    async def sb_printer(request: Request) -> Response:
        pid = int(request.path_params["printer_id"])
        try:
            if request.method == "DELETE":
                farm.remove_printer(pid)
                return JSONResponse({"deleted": pid})
            if request.method == "POST":
                farm.update_printer(pid, await read_json(request))
            printer = farm.printers.get(pid)
            if printer is None:
                raise FarmError(f"Printer {pid} not found")
        except FarmError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"printer": sandbox.printer_row(printer)})

    async def sb_farm(request: Request) -> Response:
        if request.method == "POST":
            body = await read_json(request)
            if "failure_rate" in body:
                rate = float(body["failure_rate"])
                if not 0.0 <= rate <= 1.0:
                    return JSONResponse({"error": "failure_rate must be in [0, 1]"}, 400)
                farm.failure_rate = rate
            if "default_print_seconds" in body:
                farm.default_print_seconds = float(body["default_print_seconds"])
            if "bed_clear_seconds" in body:
                farm.bed_clear_seconds = float(body["bed_clear_seconds"])
            if "requeue_failed" in body:
                farm.requeue_failed = bool(body["requeue_failed"])
            if "auto_print" in body:
                farm.auto_print = bool(body["auto_print"])
                farm.dispatch()
        return JSONResponse(
            {
                "failure_rate": farm.failure_rate,
                "default_print_seconds": farm.default_print_seconds,
                "bed_clear_seconds": farm.bed_clear_seconds,
                "requeue_failed": farm.requeue_failed,
                "auto_print": farm.auto_print,
                "printers": len(farm.printers),
                "open_queue_items": len(farm.open_items()),
            }
        )

    async def sb_jobs(request: Request) -> Response:
        rows = [
            {**farm.job_webhook(j), "queue_item_id": j.queue_item_id}
            for j in sorted(farm.jobs.values(), key=lambda j: j.id)
        ]
        return JSONResponse({"jobs": rows})

    async def sb_fail_job(request: Request) -> Response:
        job = farm.job_by_uid(request.path_params["uid"])
        if job is None:
            return JSONResponse({"error": "job not found"}, status_code=404)
        try:
            farm.fail(job)
        except FarmError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        return JSONResponse({"job": farm.job_webhook(job)})

    cid = "/{company_id:int}"
    any_method = ["GET", "POST"]
    api = [
        ("account/Test", account_test),
        ("files/Upload", upload),
        ("queue/AddItem", add_item),
        ("queue/GetItem", get_item),
        ("queue/GetItems", get_items),
        ("queue/DeleteItem", delete_item),
        ("queue/UpdateItem", update_item),
        ("queue/GetNextItems", next_items),
        ("queue/SetOrder", set_order),
        ("queue/EmptyQueue", empty_queue),
        ("queue/groups/Get", queue_groups),
        ("printers/Get", printers_get),
        ("printers/actions/CreateJob", create_job),
        ("printers/actions/Pause", pause),
        ("printers/actions/Resume", resume),
        ("printers/actions/Cancel", cancel),
        ("printers/actions/ClearBed", clear_bed),
        ("printers/autoprint/SetEnabled", autoprint_enabled),
        ("jobs/GetDetails", job_details),
        ("jobs/GetPaginatedPrintJobs", paginated_jobs),
        ("webhooks/Get", webhooks_get),
        ("webhooks/Create", webhooks_create),
        ("webhooks/Delete", webhooks_delete),
        ("webhooks/SetEnabled", webhooks_enabled),
        ("webhooks/TriggerTestWebhook", webhooks_test),
    ]
    routes = [
        Route(f"{cid}/{path}", endpoint(handler), methods=any_method) for path, handler in api
    ]
    routes += [
        Route("/_sandbox/printers", sb_printers, methods=["GET", "POST"]),
        Route("/_sandbox/printers/{printer_id:int}", sb_printer, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/farm", sb_farm, methods=["GET", "POST"]),
        Route("/_sandbox/jobs", sb_jobs, methods=["GET"]),
        Route("/_sandbox/jobs/{uid}/fail", sb_fail_job, methods=["POST"]),
        *control_routes(sandbox.clock, sandbox.dispatcher,
                        lambda: [w.url for w in sandbox.webhooks if w.enabled]),
        Route(f"{cid}/{{rest:path}}", endpoint(not_found), methods=any_method),
    ]
    app = Starlette(routes=routes)
    app.state.sandbox = sandbox
    return app
