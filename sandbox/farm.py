"""The simulated print farm behind the SimplyPrint sandbox: printers, files, queue and jobs.

Printers take queue items that match them (auto-print) or jobs started on them, print for the
gcode's estimated time on the simulated clock, and finish or fail (seeded). Every state change
is reported through ``emit(event, data)`` in SimplyPrint's webhook vocabulary; this module has
no HTTP in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from forma3d.domain.printing.gcode import estimated_seconds
from sandbox.clock import SimClock

Emit = Callable[[str, dict[str, Any]], None]

# id, name, brand, bed size (mm), max height, default nozzle
PRINTER_MODELS: dict[str, tuple[int, str, str, tuple[int, int], int, float]] = {
    "MK4": (10, "Original Prusa MK4", "Prusa Research", (250, 210), 220, 0.4),
    "MK3S": (5, "Original Prusa i3 MK3S", "Prusa Research", (250, 210), 210, 0.4),
    "MINI": (12, "Original Prusa MINI", "Prusa Research", (180, 180), 180, 0.4),
    "XL": (14, "Original Prusa XL", "Prusa Research", (360, 360), 360, 0.4),
    "X1C": (400, "X1 Carbon", "Bambu Lab", (256, 256), 256, 0.4),
    "P1S": (401, "P1S", "Bambu Lab", (256, 256), 256, 0.4),
    "A1": (402, "A1", "Bambu Lab", (256, 256), 256, 0.4),
}
SYSTEM_USER: dict[str, Any] = {
    "id": 1,
    "sso": False,
    "first_name": "Sandbox",
    "last_name": "Operator",
    "avatar": None,
}


class MaterialSpec(BaseModel):
    """Filament loaded in one extruder slot (``ext``)."""

    type: str | int = "PLA"
    color: str = "Black"
    hex: str = "#000000"
    ext: int = 0


class PrinterSpec(BaseModel):
    name: str
    model: str = "MK4"
    nozzle: float | None = None  # None: the model's default
    materials: list[MaterialSpec] = Field(default_factory=lambda: [MaterialSpec()])
    online: bool = True
    custom_tags: list[int] = Field(default_factory=list)
    group: int = 0
    autoprint: bool = True
    id: int | None = None


def default_farm() -> list[PrinterSpec]:
    return [
        PrinterSpec(name="MK4 #1", model="MK4", materials=[MaterialSpec(color="Black")]),
        PrinterSpec(
            name="MK4 #2",
            model="MK4",
            materials=[MaterialSpec(color="White", hex="#FFFFFF")],
        ),
        PrinterSpec(
            name="X1C #1",
            model="X1C",
            materials=[MaterialSpec(type="PETG", color="Black")],
        ),
        PrinterSpec(
            name="MINI #1",
            model="MINI",
            nozzle=0.6,
            materials=[MaterialSpec(color="Red", hex="#F44336")],
        ),
    ]


def _same(a: Any, b: Any) -> bool:
    return str(a).strip().lower() == str(b).strip().lower()


@dataclass
class ApiFile:
    id: str
    name: str
    size: int
    estimate: int | None


@dataclass
class Printer:
    id: int
    name: str
    model: str
    nozzle: float
    materials: list[MaterialSpec]
    online: bool
    custom_tags: list[int]
    group: int
    autoprint: bool
    sort_order: int
    busy: bool = False  # bed not cleared yet after a print
    job: Job | None = None

    @property
    def state(self) -> str:
        if not self.online:
            return "offline"
        if self.job is not None:
            return "paused" if self.job.state == "paused" else "printing"
        return "operational"

    @property
    def model_info(self) -> dict[str, Any]:
        model_id, name, brand, bed, height, _ = PRINTER_MODELS.get(
            self.model, (0, self.model, "Generic", (200, 200), 200, 0.4)
        )
        return {
            "id": model_id,
            "name": name,
            "brand": brand,
            "bedSize": list(bed),
            "bedType": "square",
            "maxHeight": height,
            "hasHeatedBed": True,
            "extruders": max(1, len(self.materials)),
            "nozzleDia": self.nozzle,
            "filamentWidth": 1.75,
        }

    def tags(self) -> dict[str, Any]:
        return {
            "nozzle": self.nozzle,
            "material": [m.model_dump() for m in self.materials],
            "custom": list(self.custom_tags),
        }


@dataclass
class QueueItem:
    id: int
    filename: str
    file: ApiFile
    left: int
    group: int
    note: str | None
    for_printers: list[int]
    for_models: list[int]
    for_groups: list[int]
    tags: dict[str, Any] | None
    custom_fields: list[dict[str, Any]]
    added: float
    sort_order: int
    printed: int = 0
    ongoing: int = 0
    done_at: float | None = None


@dataclass
class Job:
    id: int
    uid: str
    printer_id: int
    file: ApiFile
    queue_item_id: int | None
    queue_num: int | None
    autoprint: bool
    created: float
    duration: float
    fail_at: float | None  # simulated seconds of printing after which it fails
    custom_fields: list[dict[str, Any]]
    state: str = "printing"  # printing | paused | done | failed | cancelled
    started: float = 0.0
    ended: float | None = None
    progress: float = 0.0  # printed seconds banked before the current segment
    segment_start: float | None = None  # clock.elapsed() when the current segment began
    failed_reason: str | None = None
    cancel_info: dict[str, Any] | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class FarmError(Exception):
    """A refused action; the message is what SimplyPrint would answer with status false."""


def parse_ids(value: Any) -> list[int]:
    """Ids sent as an int, a list, or a "1,2,3" string (docs and backend disagree)."""
    if value is None or value == "":
        return []
    if isinstance(value, bool):
        raise FarmError("Invalid id list")
    if isinstance(value, int):
        return [value]
    if isinstance(value, list):
        return [int(v) for v in value]
    try:
        return [int(part) for part in str(value).split(",") if part.strip()]
    except ValueError as exc:
        raise FarmError(f"Invalid id list: {value}") from exc


class Farm:
    """All farm state and behaviour; ``emit`` receives SimplyPrint webhook events."""

    def __init__(
        self,
        clock: SimClock,
        emit: Emit,
        *,
        company_id: int,
        seed: int = 0,
        failure_rate: float = 0.0,
        default_print_seconds: float = 3600.0,
        bed_clear_seconds: float = 0.0,
        auto_print: bool = True,
        requeue_failed: bool = False,
    ) -> None:
        self.clock = clock
        self.emit = emit
        self.company_id = company_id
        self.failure_rate = failure_rate
        self.default_print_seconds = default_print_seconds
        self.bed_clear_seconds = bed_clear_seconds
        self.auto_print = auto_print
        self.requeue_failed = requeue_failed
        self._ids_rng = random.Random(f"{seed}:simplyprint:ids")
        self._fail_rng = random.Random(f"{seed}:simplyprint:failures")
        self.printers: dict[int, Printer] = {}
        self.files: dict[str, ApiFile] = {}
        self.library: dict[str, ApiFile] = {}
        self.queue: dict[int, QueueItem] = {}
        self.jobs: dict[int, Job] = {}
        self._printer_ids = itertools.count(1001)
        self._queue_ids = itertools.count(50001)
        self._job_ids = itertools.count(500001)
        self._sort = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    # -- printers -------------------------------------------------------------------------

    def add_printer(self, spec: PrinterSpec) -> Printer:
        printer_id = spec.id or next(self._printer_ids)
        if printer_id in self.printers:
            raise FarmError(f"Printer {printer_id} already exists")
        default_nozzle = PRINTER_MODELS.get(spec.model, (0, "", "", (0, 0), 0, 0.4))[5]
        printer = Printer(
            id=printer_id,
            name=spec.name,
            model=spec.model,
            nozzle=spec.nozzle if spec.nozzle is not None else default_nozzle,
            materials=[m.model_copy() for m in spec.materials],
            online=spec.online,
            custom_tags=list(spec.custom_tags),
            group=spec.group,
            autoprint=spec.autoprint,
            sort_order=len(self.printers) + 1,
        )
        self.printers[printer_id] = printer
        self.dispatch()
        return printer

    def remove_printer(self, printer_id: int) -> None:
        printer = self._printer(printer_id)
        if printer.job is not None:
            self._end(printer.job, "cancelled", cancel={"reason": 6, "comment": "Printer removed"})
        del self.printers[printer_id]

    def update_printer(self, printer_id: int, changes: dict[str, Any]) -> Printer:
        """Operator changes; each posts the matching ``printer.*`` webhook."""
        printer = self._printer(printer_id)
        if "name" in changes:
            printer.name = str(changes["name"])
        if "nozzle" in changes and float(changes["nozzle"]) != printer.nozzle:
            printer.nozzle = float(changes["nozzle"])
            self.emit("printer.nozzle_size_changed", self._printer_event(printer))
        if "materials" in changes:
            printer.materials = [MaterialSpec.model_validate(m) for m in changes["materials"]]
            self.emit("printer.material_changed", self._printer_event(printer))
        if "custom_tags" in changes:
            new = [int(t) for t in changes["custom_tags"]]
            added = [t for t in new if t not in printer.custom_tags]
            removed = [t for t in printer.custom_tags if t not in new]
            printer.custom_tags = new
            for tag in added:
                self.emit(
                    "printer.custom_tag_assigned", {**self._printer_event(printer), "tag": tag}
                )
            for tag in removed:
                self.emit(
                    "printer.custom_tag_detached", {**self._printer_event(printer), "tag": tag}
                )
        if "autoprint" in changes and bool(changes["autoprint"]) != printer.autoprint:
            printer.autoprint = bool(changes["autoprint"])
            self.emit("printer.autoprint_state_changed", self._printer_event(printer))
        if "online" in changes:
            self.set_online(printer_id, bool(changes["online"]))
        self.dispatch()
        return printer

    def set_online(self, printer_id: int, online: bool) -> None:
        """Going offline mid-print loses the print, as a disconnected printer does."""
        printer = self._printer(printer_id)
        printer.online = online
        if not online and printer.job is not None:
            self._end(printer.job, "failed", reason="Printer went offline during the print")
        if online:
            self.dispatch()

    def _printer(self, printer_id: int) -> Printer:
        printer = self.printers.get(printer_id)
        if printer is None:
            raise FarmError(f"Printer {printer_id} not found")
        return printer

    def _printer_event(self, printer: Printer) -> dict[str, Any]:
        return {"printer": self._printer_brief(printer), "user": SYSTEM_USER}

    def _printer_brief(self, printer: Printer) -> dict[str, Any]:
        return {
            "id": printer.id,
            "name": printer.name,
            "group": {"id": printer.group, "name": f"Group {printer.group}"},
        }

    # -- files ----------------------------------------------------------------------------

    def add_file(self, name: str, content: bytes) -> ApiFile:
        """A files-host upload: 64-hex API file id, print time from the gcode's comments."""
        digest = hashlib.sha256(content + name.encode() + str(len(self.files)).encode())
        api_file = ApiFile(
            id=digest.hexdigest(), name=name, size=len(content), estimate=estimated_seconds(content)
        )
        self.files[api_file.id] = api_file
        return api_file

    def save_to_library(self, file_id: str) -> ApiFile:
        """files/Upload with ``fileId``: keeps the file under a 32-hex user-file id."""
        api_file = self.files.get(file_id)
        if api_file is None:
            raise FarmError("File not found")
        uid = uuid.UUID(int=self._ids_rng.getrandbits(128)).hex
        self.library[uid] = ApiFile(uid, api_file.name, api_file.size, api_file.estimate)
        return self.library[uid]

    def resolve_file(self, file_id: str | None, filesystem: str | None) -> ApiFile:
        if file_id:
            found = self.files.get(str(file_id))
            if found is None:
                raise FarmError("File not found or has expired")
            return found
        if filesystem:
            found = self.library.get(str(filesystem))
            if found is None:
                raise FarmError("File not found")
            return found
        raise FarmError("No file specified")

    # -- queue ----------------------------------------------------------------------------

    def add_queue_item(self, body: dict[str, Any]) -> QueueItem:
        api_file = self.resolve_file(body.get("fileId"), body.get("filesystem"))
        amount = int(body.get("amount", 1) or 1)
        if amount < 1:
            raise FarmError("Amount must be at least 1")
        tags = body.get("tags")
        if tags is not None and not isinstance(tags, dict):
            raise FarmError("Invalid tags")
        item = QueueItem(
            id=next(self._queue_ids),
            filename=api_file.name,
            file=api_file,
            left=amount,
            group=int(body.get("group", 0) or 0),
            note=body.get("note"),
            for_printers=parse_ids(body.get("for_printers")),
            for_models=parse_ids(body.get("for_models")),
            for_groups=parse_ids(body.get("for_groups")),
            tags=tags,
            custom_fields=list(body.get("custom_fields") or []),
            added=self.clock.timestamp(),
            sort_order=next(self._sort),
        )
        if body.get("position") == "top":
            item.sort_order = -item.sort_order
        self.queue[item.id] = item
        self.emit("queue.add_item", {"queue_item": self.queue_item_dict(item), "user": SYSTEM_USER})
        self.dispatch()
        return item

    def update_queue_item(self, item_id: int, body: dict[str, Any]) -> QueueItem:
        item = self._item(item_id)
        if "for_printers" in body:
            item.for_printers = parse_ids(body["for_printers"])
        if "for_models" in body:
            item.for_models = parse_ids(body["for_models"])
        if "for_groups" in body:
            item.for_groups = parse_ids(body["for_groups"])
        if "amount" in body:
            item.left = max(0, int(body["amount"]) - item.printed - item.ongoing)
        if "note" in body:
            item.note = body["note"]
        self.dispatch()
        return item

    def delete_queue_item(self, item_id: int) -> None:
        item = self._item(item_id)
        del self.queue[item_id]
        self.emit(
            "queue.delete_item", {"queue_item": self.queue_item_dict(item), "user": SYSTEM_USER}
        )

    def move_queue_item(self, item_id: int, start: int, end: int) -> QueueItem:
        """queue/SetOrder: move a waiting item from its 0-based position in the open queue to
        another; the items between shift by one. `start` must be where the item is now, so a
        caller working from a stale listing is refused instead of moving the wrong way."""
        items = self.open_items()
        item = next((i for i in items if i.id == item_id), None)
        if item is None:
            raise FarmError("Queue item not found")
        if items.index(item) != start:
            raise FarmError(f"Queue item is not at position {start}")
        if not 0 <= end < len(items):
            raise FarmError(f"Invalid position {end}")
        slots = [i.sort_order for i in items]
        items.remove(item)
        items.insert(end, item)
        for moved, slot in zip(items, slots, strict=True):
            moved.sort_order = slot
        self.emit("queue.move_item", {"queue_item": self.queue_item_dict(item),
                                      "from": start, "to": end, "user": SYSTEM_USER})
        return item

    def _item(self, item_id: int) -> QueueItem:
        item = self.queue.get(item_id)
        if item is None:
            raise FarmError("Queue item not found")
        return item

    def open_items(self) -> list[QueueItem]:
        return sorted((i for i in self.queue.values() if i.left > 0), key=lambda i: i.sort_order)

    def done_items(self) -> list[QueueItem]:
        return sorted((i for i in self.queue.values() if i.left == 0), key=lambda i: i.sort_order)

    def index_of(self, item: QueueItem) -> int:
        items = self.open_items()
        return items.index(item) + 1 if item in items else 0

    def matches(self, printer: Printer, item: QueueItem) -> bool:
        """Assignment (printers/models/groups) and tags (nozzle, material per slot, custom)."""
        if item.for_printers and printer.id not in item.for_printers:
            return False
        if item.for_models and printer.model_info["id"] not in item.for_models:
            return False
        if item.for_groups and printer.group not in item.for_groups:
            return False
        tags = item.tags or {}
        nozzle = tags.get("nozzle")
        if nozzle not in (None, "") and abs(float(nozzle) - printer.nozzle) > 1e-6:
            return False
        for wanted in tags.get("material") or []:
            slot = next(
                (m for m in printer.materials if m.ext == int(wanted.get("ext", 0) or 0)), None
            )
            if slot is None:
                return False
            if wanted.get("type") not in (None, "") and not _same(wanted["type"], slot.type):
                return False
            color_ok = wanted.get("color") in (None, "") or _same(wanted["color"], slot.color)
            hex_ok = wanted.get("hex") in (None, "") or _same(wanted["hex"], slot.hex)
            if not (color_ok or (wanted.get("hex") and hex_ok)):
                return False
        custom = [int(t) for t in tags.get("custom") or []]
        return all(tag in printer.custom_tags for tag in custom)

    def next_item_for(self, printer: Printer) -> tuple[QueueItem | None, int]:
        """The first open item this printer can take, and how many were skipped."""
        missed = 0
        for item in self.open_items():
            if self.matches(printer, item):
                return item, missed
            missed += 1
        return None, missed

    def ready(self, printer: Printer) -> bool:
        return printer.online and printer.job is None and not printer.busy

    def dispatch(self) -> None:
        """Auto-print: every ready printer with auto-print on takes its next matching item."""
        if not self.auto_print:
            return
        for printer in sorted(self.printers.values(), key=lambda p: p.sort_order):
            if printer.autoprint and self.ready(printer):
                item, _ = self.next_item_for(printer)
                if item is not None:
                    self.start(printer, item.file, item=item, autoprint=True)

    # -- jobs -----------------------------------------------------------------------------

    def create_jobs(
        self,
        printer_ids: list[int],
        *,
        file_id: str | None = None,
        filesystem: str | None = None,
        queue_file: int | None = None,
        next_queue_item: bool = False,
        custom_fields: list[dict[str, Any]] | None = None,
    ) -> list[Job]:
        """printers/actions/CreateJob: every printer must be operational, else nothing starts."""
        if not printer_ids:
            raise FarmError("No printers specified")
        printers = [self._printer(pid) for pid in printer_ids]
        for printer in printers:
            if not self.ready(printer):
                raise FarmError(f"Printer {printer.name} is not operational ({printer.state})")
        plan: list[tuple[Printer, ApiFile, QueueItem | None]] = []
        if queue_file is not None:
            item = self._item(int(queue_file))
            if item.left < len(printers):
                raise FarmError("Not enough prints left on this queue item")
            plan = [(p, item.file, item) for p in printers]
        elif next_queue_item:
            picks = [self.next_item_for(printer)[0] for printer in printers]
            if any(pick is None for pick in picks):
                raise FarmError("No matching queue item for every printer")
            started: list[Job] = []
            for printer in printers:
                # Picked one at a time: an item with one copy left must not start twice.
                pick, _ = self.next_item_for(printer)
                if pick is not None:
                    started.append(
                        self.start(printer, pick.file, item=pick, custom_fields=custom_fields)
                    )
            return started
        else:
            api_file = self.resolve_file(file_id, filesystem)
            plan = [(p, api_file, None) for p in printers]
        return [
            self.start(printer, api_file, item=item, custom_fields=custom_fields)
            for printer, api_file, item in plan
        ]

    def start(
        self,
        printer: Printer,
        api_file: ApiFile,
        *,
        item: QueueItem | None = None,
        autoprint: bool = False,
        custom_fields: list[dict[str, Any]] | None = None,
    ) -> Job:
        duration = float(api_file.estimate or self.default_print_seconds)
        fail_at = None
        if self.failure_rate > 0 and self._fail_rng.random() < self.failure_rate:
            fail_at = duration * self._fail_rng.uniform(0.05, 0.95)
        now = self.clock.elapsed()
        job = Job(
            id=next(self._job_ids),
            uid=str(uuid.UUID(int=self._ids_rng.getrandbits(128), version=4)),
            printer_id=printer.id,
            file=api_file,
            queue_item_id=item.id if item else None,
            queue_num=self.index_of(item) if item else None,
            autoprint=autoprint,
            created=self.clock.timestamp(),
            duration=duration,
            fail_at=fail_at,
            custom_fields=list(custom_fields or (item.custom_fields if item else [])),
            started=self.clock.timestamp(),
            segment_start=now,
        )
        if item is not None:
            item.left -= 1
            item.ongoing += 1
        self.jobs[job.id] = job
        printer.job = job
        job.task = self._spawn(self._run(job, now))
        self.emit(
            "job.started",
            {"job": self.job_webhook(job), "user": SYSTEM_USER, "started_by": SYSTEM_USER},
        )
        return job

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _run(self, job: Job, segment_start: float) -> None:
        """Prints from ``segment_start``, fixed when scheduled, so a late task start is harmless."""
        target = job.fail_at if job.fail_at is not None else job.duration
        await self.clock.sleep_until(segment_start + (target - job.progress))
        job.task = None
        if job.fail_at is not None:
            self._end(job, "failed", reason="Print failed (simulated)")
        else:
            self._end(job, "done")

    def printed_seconds(self, job: Job) -> float:
        extra = 0.0
        if job.state == "printing" and job.segment_start is not None:
            extra = self.clock.elapsed() - job.segment_start
        return min(job.duration, job.progress + extra)

    def percentage(self, job: Job) -> int:
        if job.state == "done":
            return 100
        return min(99, int(100 * self.printed_seconds(job) / job.duration)) if job.duration else 0

    def _end(
        self,
        job: Job,
        state: str,
        *,
        reason: str | None = None,
        cancel: dict[str, Any] | None = None,
    ) -> None:
        if job.task is not None and job.task is not asyncio.current_task():
            job.task.cancel()
        job.task = None
        job.progress = self.printed_seconds(job) if state != "done" else job.duration
        job.segment_start = None
        job.state = state
        job.ended = self.clock.timestamp()
        job.failed_reason = reason
        if cancel is not None:
            job.cancel_info = {
                "reason": str(cancel.get("reason") or ""),
                "comment": cancel.get("comment") or "",
                "by": f"{SYSTEM_USER['first_name']} {SYSTEM_USER['last_name']}",
                "byOther": 0,
            }
        item = self.queue.get(job.queue_item_id) if job.queue_item_id else None
        if item is not None:
            item.ongoing = max(0, item.ongoing - 1)
            if state == "done":
                item.printed += 1
            elif self.requeue_failed:
                item.left += 1
            if item.left == 0 and item.ongoing == 0:
                item.done_at = self.clock.timestamp()
        printer = self.printers.get(job.printer_id)
        if printer is not None and printer.job is job:
            printer.job = None
            if self.bed_clear_seconds > 0:
                printer.busy = True
                self._spawn(self._clear_bed_later(printer, self.clock.elapsed()))
        event = {"done": "job.done", "failed": "job.failed", "cancelled": "job.cancelled"}[state]
        data: dict[str, Any] = {"job": self.job_webhook(job)}
        if state == "cancelled":
            data["user"] = SYSTEM_USER
        self.emit(event, data)
        self.dispatch()

    async def _clear_bed_later(self, printer: Printer, since: float) -> None:
        await self.clock.sleep_until(since + self.bed_clear_seconds)
        self.clear_bed(printer.id)

    def clear_bed(self, printer_id: int) -> None:
        printer = self._printer(printer_id)
        if printer.job is not None:
            raise FarmError("Printer must be operational or offline to clear the bed")
        was_busy = printer.busy
        printer.busy = False
        last = max(
            (j for j in self.jobs.values() if j.printer_id == printer_id),
            key=lambda j: j.id,
            default=None,
        )
        if was_busy and last is not None:
            self.emit("job.bed_cleared", {"job": self.job_webhook(last), "user": SYSTEM_USER})
        self.dispatch()

    def pause(self, printer_ids: list[int]) -> None:
        printers = [self._printer(pid) for pid in printer_ids]
        for printer in printers:
            if printer.state != "printing":
                raise FarmError(f"Printer {printer.name} is not printing")
        for printer in printers:
            job = printer.job
            assert job is not None
            job.progress = self.printed_seconds(job)
            job.segment_start = None
            job.state = "paused"
            if job.task is not None:
                job.task.cancel()
                job.task = None
            self.emit("job.paused", {"job": self.job_webhook(job)})

    def resume(self, printer_ids: list[int]) -> None:
        printers = [self._printer(pid) for pid in printer_ids]
        for printer in printers:
            if printer.state != "paused":
                raise FarmError(f"Printer {printer.name} is not paused")
        for printer in printers:
            job = printer.job
            assert job is not None
            now = self.clock.elapsed()
            job.state = "printing"
            job.segment_start = now
            job.task = self._spawn(self._run(job, now))
            self.emit("job.resumed", {"job": self.job_webhook(job)})

    def cancel(self, printer_ids: list[int], reason: Any = None, comment: Any = None) -> None:
        printers = [self._printer(pid) for pid in printer_ids]
        for printer in printers:
            if printer.state not in ("printing", "paused"):
                raise FarmError(f"Printer {printer.name} is not printing")
        if comment is not None and len(str(comment)) > 500:
            raise FarmError("Comment must be at most 500 characters")
        for printer in printers:
            assert printer.job is not None
            self._end(printer.job, "cancelled", cancel={"reason": reason, "comment": comment})

    def fail(self, job: Job, reason: str = "Print failed (forced)") -> None:
        if job.state not in ("printing", "paused"):
            raise FarmError("Job is not running")
        self._end(job, "failed", reason=reason)

    def job_by_uid(self, uid: str) -> Job | None:
        return next((j for j in self.jobs.values() if j.uid == uid), None)

    # -- shapes ---------------------------------------------------------------------------

    def analysis(self, api_file: ApiFile) -> dict[str, Any]:
        estimate = int(api_file.estimate or self.default_print_seconds)
        return {"estimate": estimate, "totalLayers": max(1, estimate // 30)}

    def job_webhook(self, job: Job) -> dict[str, Any]:
        """PrintJob::getFormattedData, the ``job`` object of ``job.*`` webhooks."""
        printer = self.printers.get(job.printer_id)
        analysis = self.analysis(job.file)
        total_layers = analysis["totalLayers"]
        pct = self.percentage(job)
        state = {"done": "completed"}.get(job.state, job.state)
        return {
            "id": job.id,
            "uid": job.uid,
            "panel_url": f"https://simplyprint.io/panel/{self.company_id}/jobs/{job.id}",
            "printer_id": job.printer_id,
            "state": state,
            "file": job.file.name,
            "percentage": pct,
            "time_left": None
            if job.state in ("done", "failed", "cancelled")
            else int(job.duration - self.printed_seconds(job)),
            "current_layer": int(total_layers * pct / 100),
            "analysis": analysis,
            "started": int(job.started),
            "ended": int(job.ended) if job.ended is not None else None,
            "ai": None,
            "autoprint": job.autoprint,
            "printer": self._printer_brief(printer)
            if printer
            else {"id": job.printer_id, "name": None, "group": None},
            "cost": round(job.duration / 3600 * 0.35, 2),
            "duration": int(self.printed_seconds(job)),
            "skippedObjects": None,
        }

    def job_status(self, job: Job) -> str:
        """GetPaginatedPrintJobs vocabulary: ongoing | cancelled | failed | done."""
        return {"printing": "ongoing", "paused": "ongoing"}.get(job.state, job.state)

    def queue_item_dict(self, item: QueueItem) -> dict[str, Any]:
        return {
            "id": item.id,
            "index": self.index_of(item),
            "filename": item.filename,
            "note": item.note,
            "model": False,
            "printable": True,
            "type": "printable",
            "zipPrintable": False,
            "zipNoModel": False,
            "left": item.left,
            "printed": item.printed,
            "filesystem_id": item.file.id if len(item.file.id) == 32 else None,
            "group": item.group,
            "for": {
                "printers": list(item.for_printers),
                "models": list(item.for_models),
                "groups": list(item.for_groups),
            },
            "analysis": {**self.analysis(item.file), "slicer": "Sandbox"},
            "tags": item.tags,
            "added": datetime.fromtimestamp(item.added, UTC).isoformat(),
            "size": item.file.size,
            "sort_order": item.sort_order,
            "user": f"{SYSTEM_USER['first_name']} {SYSTEM_USER['last_name']}",
            "user_id": SYSTEM_USER["id"],
            "customFields": [
                {"id": f.get("customFieldId"), "value": f.get("value")} for f in item.custom_fields
            ],
        }

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
