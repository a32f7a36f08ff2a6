"""SimplyPrint client: upload gcode, run the print queue, read printers and jobs, act on printers.

SimplyPrint answers logical errors with HTTP 200 and `{"status": false, "message": ...}`; every call
checks the envelope and raises. Query-string fields (pid, job, id) and body fields are kept apart
as the backend ignores fields sent in the wrong place.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from types import MappingProxyType
from typing import Any, ClassVar

import httpx
from pydantic import Field

from forma3d.domain.printing.states import PrintJobStatus
from forma3d.integrations.errors import (
    AuthenticationError,
    IntegrationError,
    RejectedError,
    TransientError,
    UnexpectedResponseError,
)
from forma3d.integrations.http import DEFAULT_TIMEOUT, ApiModel, BaseClient, Params
from forma3d.integrations.retry import RetryPolicy, Sleep

DEFAULT_BASE_URL = "https://api.simplyprint.io"
DEFAULT_FILES_URL = "https://files.simplyprint.io"
API_KEY_HEADER = "X-API-KEY"
UPLOAD_CHUNK = 95 * 2**20  # parts stay under the 100 MB per-request limit
UPLOAD_TIMEOUT = 300.0  # a 95 MiB part needs more than the 10 s API default
_AUTH_HINTS = ("api key", "not logged in", "access to this account", "permission")


class CancelReason(IntEnum):
    """SimplyPrint's cancel reason codes for printers/actions/Cancel."""

    PRINT_FAILED = 1
    REGRETTED = 2
    NO_EXTRUSION = 3
    FELL_OFF_PLATE = 4
    NOT_ENOUGH_FILAMENT = 5
    OTHER = 6


class UploadedFile(ApiModel):
    """A file on the files host; `id` is the temporary API file id (`fileId` / `file_id`)."""

    id: str
    name: str = ""
    size: int | None = None


class QueueItem(ApiModel):
    id: int
    filename: str | None = None
    note: str | None = None
    left: int | None = None
    printed: int | None = None
    group: int | None = None
    filesystem_id: str | None = None
    assigned_to: dict[str, Any] | None = Field(default=None, alias="for")


class QueueGroup(ApiModel):
    id: int
    name: str = ""


@dataclass(frozen=True)
class QueueListing:
    items: list[QueueItem]
    done_items: list[QueueItem]
    fits: bool | None
    groups: list[QueueGroup]


class PrinterJob(ApiModel):
    id: int | None = None
    uid: str | None = None
    state: str | None = None
    file: str | None = None
    percentage: float | None = None


class PrinterInfo(ApiModel):
    name: str = ""
    state: str | None = None
    online: bool | None = None
    group: int | None = None
    model: dict[str, Any] | None = None
    out_of_order: bool | None = Field(default=None, alias="outOfOrder")


class Printer(ApiModel):
    """One row of printers/Get: the printer id, its `printer` block and its current `job`."""

    id: int
    printer: PrinterInfo = Field(default_factory=PrinterInfo)
    job: PrinterJob | None = None
    tags: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.printer.name

    @property
    def state(self) -> str | None:
        return self.printer.state

    @property
    def model_id(self) -> int | None:
        model_id = (self.printer.model or {}).get("id")
        return model_id if isinstance(model_id, int) else None


@dataclass(frozen=True)
class PrinterPage:
    printers: list[Printer]
    page_amount: int


# SimplyPrint's words for a job, mapped once onto our print-job lifecycle: the job history's
# `status` ("done" is also spelled "finished") and the job.* webhook events.
HISTORY_STATUS: Mapping[str, PrintJobStatus] = MappingProxyType({
    "ongoing": PrintJobStatus.PRINTING, "done": PrintJobStatus.COMPLETED,
    "finished": PrintJobStatus.COMPLETED, "failed": PrintJobStatus.FAILED,
    "cancelled": PrintJobStatus.CANCELLED})
# The webhook events the farm flow reads (job lifecycle, bed cleared, printer changes): what a
# connection subscribes to at SimplyPrint.
WEBHOOK_EVENTS = ("job.started", "job.paused", "job.resumed", "job.cancelled", "job.done",
                  "job.failed", "job.bed_cleared", "printer.autoprint_state_changed",
                  "printer.nozzle_size_changed", "printer.material_changed",
                  "printer.custom_tag_assigned", "printer.custom_tag_detached")
WEBHOOK_STATUS: Mapping[str, PrintJobStatus] = MappingProxyType({
    "job.started": PrintJobStatus.PRINTING, "job.done": PrintJobStatus.COMPLETED,
    "job.failed": PrintJobStatus.FAILED, "job.cancelled": PrintJobStatus.CANCELLED})


def webhook_job_status(event: str) -> PrintJobStatus | None:
    """Our status for a job.* webhook event; None for events that are not about a job's end or
    start (paused, bed cleared, printer events...)."""
    return WEBHOOK_STATUS.get(event)


class PrintJob(ApiModel):
    """A row of jobs/GetPaginatedPrintJobs. `status`: ongoing | cancelled | failed | done."""

    id: int
    uid: str
    status: str
    filename: str | None = None
    printer_id: int | None = Field(default=None, alias="printer")
    start_date: datetime | None = Field(default=None, alias="startDate")
    end_date: datetime | None = Field(default=None, alias="endDate")
    current_percentage: float | None = Field(default=None, alias="currentPercentage")
    cancel_reason_type: str | None = Field(default=None, alias="cancelReasonType")
    queue_item: dict[str, Any] | None = Field(default=None, alias="queueItem")

    @property
    def job_status(self) -> PrintJobStatus | None:
        """Our status for the farm's; None for a status we do not know."""
        return HISTORY_STATUS.get(self.status)

    @property
    def queue_item_id(self) -> int | None:
        item_id = (self.queue_item or {}).get("id")
        return item_id if isinstance(item_id, int) else None


@dataclass(frozen=True)
class PrintJobPage:
    jobs: list[PrintJob]
    page_amount: int


class JobDetails(ApiModel):
    """jobs/GetDetails `job` object."""

    id: int
    state: str | None = None
    file: str | None = None
    percentage: float | None = None
    failed_reason: str | None = Field(default=None, alias="failedReason")
    cancel_info: dict[str, Any] | None = Field(default=None, alias="cancelInfo")
    printer: dict[str, Any] | None = None
    started: int | None = None
    ended: int | None = None

    @property
    def printer_id(self) -> int | None:
        printer_id = (self.printer or {}).get("id")
        return printer_id if isinstance(printer_id, int) else None


class CreatedJobs(ApiModel):
    """printers/actions/CreateJob answer: one job id per printer started."""

    job_ids: list[int] = Field(default_factory=list, alias="jobIds")
    files: list[dict[str, Any]] = Field(default_factory=list)


def csv_ids(ids: int | Iterable[int]) -> str:
    """SimplyPrint's validators want id lists as "1,2,3" strings (vendor integrations note)."""
    if isinstance(ids, int):
        return str(ids)
    return ",".join(str(i) for i in ids)


class SimplyPrintClient(BaseClient):
    """One company's SimplyPrint API. Point `base_url`/`files_url` at the sandbox for local runs."""

    service: ClassVar[str] = "simplyprint"

    def __init__(
        self,
        company_id: int | str,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        files_url: str = DEFAULT_FILES_URL,
        timeout: float = DEFAULT_TIMEOUT,
        upload_timeout: float = UPLOAD_TIMEOUT,
        retry: RetryPolicy | None = None,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.company_id = company_id
        self.upload_url = f"{files_url.rstrip('/')}/{company_id}/files/Upload"
        self.upload_timeout = upload_timeout
        super().__init__(
            f"{base_url.rstrip('/')}/{company_id}/",
            headers={API_KEY_HEADER: api_key, "Accept": "application/json"},
            timeout=timeout,
            retry=retry,
            sleep=sleep,
            rng=rng,
            transport=transport,
        )

    # -- envelope

    def envelope(self, response: httpx.Response) -> dict[str, Any]:
        """The body if `status` is true; otherwise the typed error its message describes."""
        body = self.json_object(response)
        ok = body.get("status", body.get("success"))
        if ok is True:
            return body
        message = str(body.get("message") or "request refused without a message")
        if ok is None:
            raise UnexpectedResponseError(
                self.service, f"answer has no status field: {message}", body=body
            )
        error_type = (
            AuthenticationError
            if any(hint in message.lower() for hint in _AUTH_HINTS)
            else RejectedError
        )
        raise error_type(self.service, message, status=response.status_code, body=body)

    async def call(
        self,
        method: str,
        endpoint: str,
        *,
        params: Params | None = None,
        json: Any = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        response = await self.request(
            method, endpoint, params=params, json=json, idempotent=idempotent
        )
        return self.envelope(response)

    async def test_connection(self) -> str:
        """account/Test: proves key and company id; returns SimplyPrint's message."""
        body = await self.call("GET", "account/Test")
        return str(body.get("message") or "")

    # -- webhooks (connecting a farm)

    async def list_webhooks(self) -> list[dict[str, Any]]:
        body = await self.call("GET", "webhooks/Get")
        return [hook for hook in body.get("data") or [] if isinstance(hook, dict)]

    async def create_webhook(self, *, name: str, url: str, events: Sequence[str], secret: str,
                             webhook_id: int | None = None) -> int:
        """`webhooks/Create` (enabled: SimplyPrint's default is off); with `webhook_id`, an
        update of that webhook. Returns its id."""
        payload: dict[str, Any] = {"name": name, "url": url, "events": list(events),
                                   "secret": secret, "enabled": True}
        if webhook_id is not None:
            payload["id"] = webhook_id
        body = await self.call("POST", "webhooks/Create", json=payload, idempotent=False)
        hook = body.get("webhook")
        if not isinstance(hook, dict) or not isinstance(hook.get("id"), int):
            raise UnexpectedResponseError(self.service, "webhooks/Create without a webhook id",
                                          body=body)
        return int(hook["id"])

    async def delete_webhook(self, webhook_id: int) -> None:
        await self.call("POST", "webhooks/Delete", json={"id": webhook_id})

    # -- files

    async def upload_file(
        self, filename: str, content: bytes, *, chunk_size: int = UPLOAD_CHUNK
    ) -> UploadedFile:
        """Upload to the files host and return the API file id. The extension of `filename` sets
        the file type (SimplyPrint does not sniff). Large files go in parts with continueToken."""
        if len(content) <= chunk_size:
            body = await self._upload_part(filename, content, {}, idempotent=True)
            return self._uploaded(body)
        token: str | None = None
        for offset in range(0, len(content), chunk_size):
            part = content[offset : offset + chunk_size]
            fields = {"continueToken": token} if token else {"totalSize": str(len(content))}
            # A lost answer to a part cannot be resent blindly: the server may have taken it.
            body = await self._upload_part(filename, part, fields, idempotent=False)
            if "file" in body:
                return self._uploaded(body)
            token = body.get("continueToken")
            if not token:
                raise UnexpectedResponseError(
                    self.service, "upload part answered without file or continueToken", body=body
                )
        raise UnexpectedResponseError(self.service, "upload ended without a file object")

    async def _upload_part(
        self, filename: str, part: bytes, fields: Mapping[str, str], *, idempotent: bool
    ) -> dict[str, Any]:
        response = await self.request(
            "POST",
            self.upload_url,
            data=fields or None,
            files={"file": (filename, part, "application/octet-stream")},
            idempotent=idempotent,
            timeout=self.upload_timeout,
        )
        return self.envelope(response)

    def _uploaded(self, body: dict[str, Any]) -> UploadedFile:
        return self.parse(UploadedFile, body.get("file"))

    # -- queue

    async def add_queue_item(
        self,
        *,
        file_id: str | None = None,
        filesystem: str | None = None,
        amount: int = 1,
        group: int | None = None,
        for_printers: Sequence[int] | None = None,
        for_models: Sequence[int] | None = None,
        for_groups: Sequence[int] | None = None,
        note: str | None = None,
        tags: Mapping[str, Any] | None = None,
        custom_fields: Sequence[Mapping[str, Any]] | None = None,
        position: str | None = None,
    ) -> int:
        """queue/AddItem; returns the created queue item id.

        There is no idempotency key, so put our job key in `note`: after an ambiguous failure the
        queue is searched for an item with that note before adding again. Without a note an
        ambiguous failure is raised (TransientError, ambiguous=True) for the caller to check.
        """
        if (file_id is None) == (filesystem is None):
            raise ValueError("give exactly one of file_id (API file) or filesystem (user file)")
        body: dict[str, Any] = {"amount": amount}
        optional: dict[str, Any] = {
            "fileId": file_id,
            "filesystem": filesystem,
            "group": group,
            "for_printers": csv_ids(for_printers) if for_printers else None,
            "for_models": csv_ids(for_models) if for_models else None,
            "for_groups": csv_ids(for_groups) if for_groups else None,
            "note": note,
            "tags": dict(tags) if tags else None,
            "custom_fields": [dict(f) for f in custom_fields] if custom_fields else None,
            "position": position,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        maybe_added = False

        async def attempt() -> int:
            nonlocal maybe_added
            if maybe_added and note:
                existing = await self.find_queue_item_by_note(note, once=True)
                if existing is not None:
                    return existing.id
            try:
                response = await self.send_once("POST", "queue/AddItem", json=body)
            except TransientError as err:
                maybe_added = maybe_added or err.ambiguous
                raise
            created = self.envelope(response).get("created_id")
            if not isinstance(created, int):
                raise UnexpectedResponseError(
                    self.service, "AddItem answered without created_id", body=response.text
                )
            return created

        def decide(err: IntegrationError) -> bool:
            return err.retryable and (not err.ambiguous or bool(note))

        return await self.retrying(attempt, should_retry=decide)

    async def get_queue_item(self, item_id: int) -> QueueItem:
        body = await self.call("GET", "queue/GetItem", params={"id": item_id})
        return self.parse(QueueItem, body.get("queue"))

    async def get_queue_items(
        self, *, printer_id: int | None = None, include_groups: bool = False
    ) -> QueueListing:
        """queue/GetItems for one printer or the whole queue (`groups` takes no value)."""
        params: dict[str, str | int | None] = {"p": printer_id}
        if include_groups:
            params["groups"] = ""
        body = await self.call("GET", "queue/GetItems", params=params)
        return self._listing(body)

    def _listing(self, body: dict[str, Any]) -> QueueListing:
        queue = body.get("queue") or {}
        if not isinstance(queue, dict):
            raise UnexpectedResponseError(self.service, "queue is not an object", body=body)
        return QueueListing(
            items=[self.parse(QueueItem, i) for i in queue.get("items") or []],
            done_items=[self.parse(QueueItem, i) for i in queue.get("done_items") or []],
            fits=queue.get("fits"),
            groups=[self.parse(QueueGroup, g) for g in body.get("groups") or []],
        )

    async def find_queue_item_by_note(self, note: str, *, once: bool = False) -> QueueItem | None:
        """The open queue item we added with this note, if any (look-before-create)."""
        if once:
            listing = self._listing(self.envelope(await self.send_once("GET", "queue/GetItems")))
        else:
            listing = await self.get_queue_items()
        return next((item for item in listing.items if item.note == note), None)

    async def delete_queue_item(self, item_id: int) -> bool:
        """queue/DeleteItem: remove a not-yet-started item (`job` goes in the query string).

        Returns True if this call deleted it, False if it was already gone (our earlier call
        whose answer was lost, or a redelivered message). A refusal for an item that still
        exists (e.g. already printing) raises RejectedError.
        """

        async def attempt() -> bool:
            try:
                response = await self.send_once("POST", "queue/DeleteItem", params={"job": item_id})
                self.envelope(response)
            except RejectedError:
                if await self._queue_item_exists(item_id):
                    raise
                return False
            return True

        return await self.retrying(attempt)

    async def move_queue_item(self, item_id: int, *, start: int, end: int) -> None:
        """queue/SetOrder (GET; `job`, `from`, `to` in the query string): move a waiting item
        from its 0-based position in the queue (`start`, as a listing just showed it) to `end`.

        A move is not idempotent: after a lost answer the item may already be at `end`, so a
        retry looks first and counts that as done. A refusal (the item moved or started since
        the listing, or the key lacks `reorder_queue`) raises for the caller to look again.
        """
        params = {"job": item_id, "from": start, "to": end}
        maybe_moved = False

        async def attempt() -> None:
            nonlocal maybe_moved
            if maybe_moved and await self._queue_position(item_id) == end:
                return
            try:
                response = await self.send_once("GET", "queue/SetOrder", params=params)
            except TransientError as err:
                maybe_moved = maybe_moved or err.ambiguous
                raise
            self.envelope(response)

        await self.retrying(attempt)

    async def _queue_position(self, item_id: int) -> int | None:
        """The item's 0-based position among the waiting items, None if it is not waiting."""
        listing = self._listing(self.envelope(await self.send_once("GET", "queue/GetItems")))
        return next((n for n, item in enumerate(listing.items) if item.id == item_id), None)

    async def _queue_item_exists(self, item_id: int) -> bool:
        try:
            self.envelope(await self.send_once("GET", "queue/GetItem", params={"id": item_id}))
        except RejectedError:
            return False
        return True

    # -- printers

    async def get_printers(
        self, *, page: int = 1, page_size: int = 100, search: str | None = None
    ) -> PrinterPage:
        """printers/Get by POST (GET caps page_size at 25)."""
        body: dict[str, Any] = {"page": page, "page_size": page_size}
        if search:
            body["search"] = search
        answer = await self.call("POST", "printers/Get", json=body)
        rows = answer.get("data") or []
        if not isinstance(rows, list):
            raise UnexpectedResponseError(self.service, "printers/Get data is not a list")
        return PrinterPage(
            printers=[self.parse(Printer, row) for row in rows],
            page_amount=int(answer.get("page_amount") or 1),
        )

    async def all_printers(self, *, page_size: int = 100) -> list[Printer]:
        """Every printer of the company, page by page."""
        printers: list[Printer] = []
        page = 1
        while True:
            answer = await self.get_printers(page=page, page_size=page_size)
            printers.extend(answer.printers)
            if page >= answer.page_amount or not answer.printers:
                return printers
            page += 1

    async def get_printer(self, printer_id: int) -> Printer:
        """printers/Get?pid=: `data` is then one object."""
        answer = await self.call("POST", "printers/Get", params={"pid": printer_id}, json={})
        data = answer.get("data")
        if isinstance(data, list):  # tolerate a one-row list
            data = data[0] if data else None
        return self.parse(Printer, data)

    # -- jobs

    async def get_print_jobs(
        self,
        *,
        page: int = 1,
        page_size: int = 100,
        printer_ids: Sequence[int] | None = None,
        statuses: Sequence[str] | None = None,
        start_date: str | int | None = None,
        end_date: str | int | None = None,
    ) -> PrintJobPage:
        """jobs/GetPaginatedPrintJobs. Statuses: ongoing, cancelled, failed, finished."""
        body: dict[str, Any] = {"page": page, "page_size": page_size}
        if printer_ids:
            body["printer_ids"] = list(printer_ids)
        if statuses:
            # The docs' example calls the filter `status`, their table `accepted_statuses`.
            body["status"] = list(statuses)
            body["accepted_statuses"] = list(statuses)
        if start_date is not None:
            body["start_date"] = start_date
        if end_date is not None:
            body["end_date"] = end_date
        answer = await self.call("POST", "jobs/GetPaginatedPrintJobs", json=body)
        return PrintJobPage(
            jobs=[self.parse(PrintJob, row) for row in answer.get("data") or []],
            page_amount=int(answer.get("page_amount") or 1),
        )

    async def get_job_details(self, job_uid: str) -> JobDetails:
        """jobs/GetDetails takes the job UID (string), not the numeric id."""
        answer = await self.call("GET", "jobs/GetDetails", params={"id": job_uid})
        return self.parse(JobDetails, answer.get("job"))

    # -- printer actions

    async def create_job(
        self,
        printer_ids: int | Sequence[int],
        *,
        file_id: str | None = None,
        filesystem: str | None = None,
        queue_item_id: int | None = None,
        next_queue_item: bool = False,
        custom_fields: Sequence[Mapping[str, Any]] | None = None,
    ) -> CreatedJobs:
        """printers/actions/CreateJob on operational printers. `pid` goes in the body (the backend
        reads it there). Not retried after an ambiguous failure: check the printer first."""
        sources = [file_id is not None, filesystem is not None, queue_item_id is not None]
        if sum(sources) + int(next_queue_item) != 1:
            raise ValueError(
                "give exactly one of file_id, filesystem, queue_item_id, next_queue_item"
            )
        body: dict[str, Any] = {"pid": csv_ids(printer_ids)}
        if file_id is not None:
            body["file_id"] = file_id
        if filesystem is not None:
            body["filesystem"] = filesystem
        if queue_item_id is not None:
            body["queue_file"] = queue_item_id
        if next_queue_item:
            body["next_queue_item"] = True
        if custom_fields:
            body["custom_fields"] = [dict(f) for f in custom_fields]
        answer = await self.call("POST", "printers/actions/CreateJob", json=body, idempotent=False)
        return self.parse(CreatedJobs, answer)

    async def pause(self, printer_ids: int | Sequence[int]) -> None:
        await self.call(
            "POST", "printers/actions/Pause", params={"pid": csv_ids(printer_ids)}, idempotent=False
        )

    async def resume(self, printer_ids: int | Sequence[int]) -> None:
        await self.call(
            "POST",
            "printers/actions/Resume",
            params={"pid": csv_ids(printer_ids)},
            idempotent=False,
        )

    async def cancel(
        self,
        printer_ids: int | Sequence[int],
        *,
        reason: CancelReason | int | None = None,
        comment: str | None = None,
    ) -> None:
        """Cancel the running print; the org may require a reason and comment (≤500 chars)."""
        body: dict[str, Any] = {}
        if reason is not None:
            body["reason"] = int(reason)
        if comment is not None:
            body["comment"] = comment[:500]
        await self.call(
            "POST",
            "printers/actions/Cancel",
            params={"pid": csv_ids(printer_ids)},
            json=body,
            idempotent=False,
        )
