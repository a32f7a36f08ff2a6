"""SimplyPrintClient against a small Starlette app answering with the documented payloads."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from forma3d.integrations.errors import (
    AuthenticationError,
    RejectedError,
    TransientError,
    UnexpectedResponseError,
)
from forma3d.integrations.retry import RetryPolicy
from forma3d.integrations.simplyprint import CancelReason, SimplyPrintClient, csv_ids
from tests.forma3d.integrations.transports import DropAnswer

KEY = "sp-key"
CO = 123
FILE_ID = "f568ead4bbc2d881efc8a9a05f3bd585334cd8c662347ba2dfad7250176b0abd"

QUEUE_ITEM: dict[str, Any] = {
    "id": 51293,
    "index": 1,
    "filename": "benchy.gcode",
    "note": None,
    "model": False,
    "printable": True,
    "left": 1,
    "printed": 0,
    "filesystem_id": "c00489ef361771ac098b5a60e6740757",
    "group": 123,
    "for": {"printers": [1234], "models": [1234], "groups": [1234]},
    "analysis": {"slicer": "Simplify3D", "estimate": 240},
    "user": "John Doe",
    "user_id": 1234,
    "tags": {"nozzle": 0.6, "material": [], "custom": [1, 2, 3]},
    "customFields": [{"id": "student_id", "value": {"string": "1234567890"}}],
}

PRINTER_ROW: dict[str, Any] = {
    "id": 385,
    "sort_order": 6,
    "printer": {
        "name": "Mini Printer 1",
        "state": "printing",
        "group": 99,
        "api": "OctoPrint",
        "public": 1,
        "online": True,
        "model": {"id": 91, "name": "Fabrikator Mini", "brand": "Turnigy", "bedSize": [80, 80]},
        "hasQueue": {"items": 6, "fits": True},
        "outOfOrder": 0,
    },
    "filament": None,
    "job": {
        "id": 552252,
        "uid": "da69d2a4-e07e-48ff-128a-f88fab1b8f20",
        "state": "printing",
        "file": "Benchy.15mm_PLA_MK3S_7h40m.gcode",
        "percentage": 50,
        "time": 12627,
        "canPreview": True,
        "layer": None,
    },
    "tags": {"nozzle": 0.6, "material": [], "custom": [1, 2, 3]},
}

PRINT_JOB: dict[str, Any] = {
    "id": 549145,
    "uid": "7df103aa-b12c-4b33-8305-b55f91c11a4d",
    "status": "cancelled",
    "cancelReasonType": "5",
    "rating": -2,
    "filename": "Benchy.gcode",
    "startDate": "2023-02-28T21:05:50+00:00",
    "endDate": "2023-02-28T21:06:07+00:00",
    "user": 5933,
    "autoprint": False,
    "outsideSystem": False,
    "printer": 385,
    "filament": '{"e0": {"usage": 60}}',
    "filUsage": 60,
    "filUsageGram": 0,
    "currentPercentage": 48,
    "printTime": 17,
    "cost": {"estimate": False, "total_cost": 150, "lines": []},
    "queueItem": {"id": 1234, "user": 51, "queueNum": 3},
    "customFields": [],
}

JOB_DETAILS: dict[str, Any] = {
    "id": 123,
    "cost": 12.34,
    "ended": 3600,
    "failedReason": "string",
    "cancelInfo": {"reason": "string", "comment": "string", "by": "string", "byOther": 1},
    "outsideSystem": True,
    "rating": 5,
    "started": 7200,
    "created": 10800,
    "state": "string",
    "file": "filename.gcode",
    "percentage": 50,
    "time": 1800,
    "canPreview": True,
    "layer": 10,
    "printer": {"id": 456, "name": "Printer Name", "extruders": 2, "deleted": 1},
}


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class FakeSimplyPrint:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, str], Any]] = []
        self.queue: list[dict[str, Any]] = [dict(QUEUE_ITEM)]
        self.next_id = 1337
        self.rate_limit_next = 0
        self.uploads: list[bytes] = []
        self.refuse_delete = False

    def app(self) -> Starlette:
        p = f"/{CO}"
        return Starlette(
            routes=[
                Route(f"{p}/account/Test", self.account_test),
                Route(f"{p}/files/Upload", self.upload, methods=["POST"]),
                Route(f"{p}/queue/AddItem", self.add_item, methods=["POST"]),
                Route(f"{p}/queue/GetItem", self.get_item),
                Route(f"{p}/queue/GetItems", self.get_items),
                Route(f"{p}/queue/DeleteItem", self.delete_item, methods=["GET", "POST"]),
                Route(f"{p}/printers/Get", self.printers, methods=["GET", "POST"]),
                Route(f"{p}/jobs/GetPaginatedPrintJobs", self.jobs, methods=["POST"]),
                Route(f"{p}/jobs/GetDetails", self.job_details),
                Route(f"{p}/printers/actions/{{action}}", self.action, methods=["POST"]),
            ]
        )

    async def record(self, request: Request) -> Response | None:
        raw = await request.body()
        body: Any = None
        if raw and request.headers.get("content-type", "").startswith("application/json"):
            body = json.loads(raw)
        elif raw:
            body = raw
        self.calls.append(
            (
                request.method,
                request.url.path.removeprefix(f"/{CO}/"),
                dict(request.query_params),
                body,
            )
        )
        if self.rate_limit_next:
            self.rate_limit_next -= 1
            return JSONResponse(
                {"status": False, "message": "You're requesting too much - slow down"}, 429
            )
        if request.headers.get("X-API-KEY") != KEY:
            return JSONResponse(
                {"status": False, "message": "No API key provided, or not logged in"}
            )
        return None

    @staticmethod
    def ok(**payload: Any) -> Response:
        return JSONResponse({"status": True, "message": None, **payload})

    async def account_test(self, request: Request) -> Response:
        if (denied := await self.record(request)) is not None:
            return denied
        return JSONResponse({"status": True, "message": "Your API key is valid!"})

    async def upload(self, request: Request) -> Response:
        if (denied := await self.record(request)) is not None:
            return denied
        raw = self.calls[-1][3]
        assert b'name="file"; filename="benchy.gcode"' in raw
        self.uploads.append(raw)
        if b'name="totalSize"' in raw or (b'name="continueToken"' in raw and len(self.uploads) < 3):
            return self.ok(continueToken=f"token-{len(self.uploads)}")
        return self.ok(file={"id": FILE_ID, "name": "benchy.gcode", "size": 13439})

    async def add_item(self, request: Request) -> Response:
        if (denied := await self.record(request)) is not None:
            return denied
        body = self.calls[-1][3]
        if not (body.get("fileId") or body.get("filesystem")):
            return JSONResponse({"status": False, "message": "No file specified"})
        item = {**QUEUE_ITEM, "id": self.next_id, "note": body.get("note")}
        self.queue.append(item)
        self.next_id += 1
        return self.ok(created_id=item["id"])

    async def get_item(self, request: Request) -> Response:
        if (denied := await self.record(request)) is not None:
            return denied
        wanted = int(request.query_params["id"])
        for item in self.queue:
            if item["id"] == wanted:
                return self.ok(queue=item)
        return JSONResponse({"status": False, "message": "Queue item not found"})

    async def get_items(self, request: Request) -> Response:
        if (denied := await self.record(request)) is not None:
            return denied
        extra = {}
        if "groups" in request.query_params:
            extra["groups"] = [
                {"id": 123, "name": "Group 1", "virtual": False, "extensions": ["gcode"]}
            ]
        return self.ok(queue={"fits": True, "items": self.queue, "done_items": []}, **extra)

    async def delete_item(self, request: Request) -> Response:
        if (denied := await self.record(request)) is not None:
            return denied
        job = int(request.query_params["job"])
        if self.refuse_delete:
            return JSONResponse({"status": False, "message": "Item is currently printing"})
        before = len(self.queue)
        self.queue = [i for i in self.queue if i["id"] != job]
        if len(self.queue) == before:
            return JSONResponse({"status": False, "message": "Queue item not found"})
        return self.ok()

    async def printers(self, request: Request) -> Response:
        if (denied := await self.record(request)) is not None:
            return denied
        if "pid" in request.query_params:
            return self.ok(data=PRINTER_ROW)
        return self.ok(page_amount=1, data=[PRINTER_ROW])

    async def jobs(self, request: Request) -> Response:
        if (denied := await self.record(request)) is not None:
            return denied
        return self.ok(data=[PRINT_JOB], page_amount=3)

    async def job_details(self, request: Request) -> Response:
        if (denied := await self.record(request)) is not None:
            return denied
        return self.ok(job=JOB_DETAILS)

    async def action(self, request: Request) -> Response:
        if (denied := await self.record(request)) is not None:
            return denied
        action = request.path_params["action"]
        if action == "CreateJob":
            body = self.calls[-1][3]
            if body["pid"] == "999":
                return JSONResponse({"status": False, "message": "Printer is not operational"})
            pids = [int(p) for p in str(body["pid"]).split(",")]
            files = [{"name": "Benchy.gcode", "printers": pids, "queued": False, "cost": None}]
            return self.ok(files=files, jobIds=[495462 + n for n in range(len(pids))])
        return self.ok()


@pytest.fixture
def fake() -> FakeSimplyPrint:
    return FakeSimplyPrint()


def client_for(
    fake: FakeSimplyPrint, sleep: FakeSleep | None = None, key: str = KEY
) -> tuple[SimplyPrintClient, DropAnswer]:
    transport = DropAnswer(httpx.ASGITransport(app=fake.app()))
    client = SimplyPrintClient(
        CO,
        key,
        base_url="http://api.sp.test",
        files_url="http://files.sp.test",
        transport=transport,
        sleep=sleep or FakeSleep(),
        rng=random.Random(3),
        retry=RetryPolicy(max_attempts=4),
    )
    return client, transport


async def test_test_connection(fake: FakeSimplyPrint) -> None:
    client, _ = client_for(fake)
    async with client:
        assert await client.test_connection() == "Your API key is valid!"


async def test_status_false_with_http_200_raises(fake: FakeSimplyPrint) -> None:
    client, _ = client_for(fake, key="wrong")
    async with client:
        with pytest.raises(AuthenticationError) as info:
            await client.get_queue_items()
    assert info.value.status == 200
    assert info.value.message == "No API key provided, or not logged in"
    assert info.value.service == "simplyprint"


async def test_upload_goes_to_files_host(fake: FakeSimplyPrint) -> None:
    client, _ = client_for(fake)
    async with client:
        uploaded = await client.upload_file("benchy.gcode", b"G28\nG1 X10\n")
    assert (uploaded.id, uploaded.name, uploaded.size) == (FILE_ID, "benchy.gcode", 13439)
    assert client.upload_url == f"http://files.sp.test/{CO}/files/Upload"
    assert fake.calls[-1][1] == "files/Upload"
    assert b"G28\nG1 X10\n" in fake.uploads[0]


async def test_large_upload_goes_in_parts_with_continue_token(fake: FakeSimplyPrint) -> None:
    client, _ = client_for(fake)
    async with client:
        uploaded = await client.upload_file("benchy.gcode", b"x" * 25, chunk_size=10)
    assert uploaded.id == FILE_ID
    first, second, third = fake.uploads
    assert b'name="totalSize"\r\n\r\n25' in first
    assert b'name="continueToken"\r\n\r\ntoken-1' in second
    assert b'name="continueToken"\r\n\r\ntoken-2' in third


async def test_add_queue_item_body_and_created_id(fake: FakeSimplyPrint) -> None:
    client, _ = client_for(fake)
    async with client:
        created = await client.add_queue_item(
            file_id=FILE_ID, amount=2, for_printers=[12, 13], for_models=[91], note="job:1/2/3#1"
        )
    assert created == 1337
    method, path, query, body = fake.calls[-1]
    assert (method, path, query) == ("POST", "queue/AddItem", {})
    assert body == {
        "amount": 2,
        "fileId": FILE_ID,
        "for_printers": "12,13",
        "for_models": "91",
        "note": "job:1/2/3#1",
    }


async def test_add_queue_item_after_lost_answer_finds_it_by_note(fake: FakeSimplyPrint) -> None:
    client, transport = client_for(fake)
    transport.drop_next_post = True
    async with client:
        created = await client.add_queue_item(file_id=FILE_ID, note="job:9")
    assert created == 1337
    assert [c[1] for c in fake.calls] == ["queue/AddItem", "queue/GetItems"]
    assert sum(1 for item in fake.queue if item["note"] == "job:9") == 1


async def test_add_queue_item_lost_answer_without_note_is_raised(fake: FakeSimplyPrint) -> None:
    client, transport = client_for(fake)
    transport.drop_next_post = True
    async with client:
        with pytest.raises(TransientError) as info:
            await client.add_queue_item(filesystem="1a077dd6296417fe75555bf806b68089")
    assert info.value.ambiguous


async def test_add_queue_item_needs_one_file(fake: FakeSimplyPrint) -> None:
    client, _ = client_for(fake)
    async with client:
        with pytest.raises(ValueError):
            await client.add_queue_item()


async def test_queue_items_and_delete(fake: FakeSimplyPrint) -> None:
    client, _ = client_for(fake)
    async with client:
        listing = await client.get_queue_items(include_groups=True)
        one = await client.get_queue_item(51293)
        assert await client.delete_queue_item(51293) is True
        assert await client.delete_queue_item(51293) is False  # already gone: idempotent
        fake.refuse_delete = True
        fake.queue.append(dict(QUEUE_ITEM))
        with pytest.raises(RejectedError) as info:
            await client.delete_queue_item(51293)
    (item,) = listing.items
    assert (item.id, item.filename, item.left, item.printed, item.group) == (
        51293,
        "benchy.gcode",
        1,
        0,
        123,
    )
    assert item.assigned_to == {"printers": [1234], "models": [1234], "groups": [1234]}
    assert item.raw["customFields"][0]["id"] == "student_id"
    assert listing.fits is True and listing.groups[0].name == "Group 1"
    assert one.filesystem_id == "c00489ef361771ac098b5a60e6740757"
    assert fake.calls[2][:3] == ("POST", "queue/DeleteItem", {"job": "51293"})
    assert fake.calls[4][:3] == ("GET", "queue/GetItem", {"id": "51293"})
    assert info.value.message == "Item is currently printing"
    assert fake.calls[0][2] == {"groups": ""}


async def test_printers(fake: FakeSimplyPrint) -> None:
    client, _ = client_for(fake)
    async with client:
        page = await client.get_printers(page_size=50)
        single = await client.get_printer(385)
        assert [p.id for p in await client.all_printers()] == [385]
    (printer,) = page.printers
    assert page.page_amount == 1
    assert fake.calls[0][3] == {"page": 1, "page_size": 50}
    assert fake.calls[1][:3] == ("POST", "printers/Get", {"pid": "385"})
    for p in (printer, single):
        assert (p.id, p.name, p.state, p.model_id) == (385, "Mini Printer 1", "printing", 91)
        assert p.printer.online is True and p.printer.out_of_order is False
        assert p.job is not None and p.job.uid == "da69d2a4-e07e-48ff-128a-f88fab1b8f20"
        assert p.job.percentage == 50


async def test_print_jobs_and_details(fake: FakeSimplyPrint) -> None:
    client, _ = client_for(fake)
    async with client:
        page = await client.get_print_jobs(printer_ids=[385], statuses=["cancelled", "finished"])
        details = await client.get_job_details("7df103aa-b12c-4b33-8305-b55f91c11a4d")
    (job,) = page.jobs
    assert page.page_amount == 3
    assert (job.id, job.uid, job.status, job.printer_id, job.queue_item_id) == (
        549145,
        "7df103aa-b12c-4b33-8305-b55f91c11a4d",
        "cancelled",
        385,
        1234,
    )
    assert job.cancel_reason_type == "5" and job.current_percentage == 48
    assert job.start_date is not None and job.start_date.year == 2023
    body = fake.calls[0][3]
    assert body["printer_ids"] == [385] and body["status"] == ["cancelled", "finished"]
    assert fake.calls[1][:3] == (
        "GET",
        "jobs/GetDetails",
        {"id": "7df103aa-b12c-4b33-8305-b55f91c11a4d"},
    )
    assert (details.id, details.file, details.printer_id, details.failed_reason) == (
        123,
        "filename.gcode",
        456,
        "string",
    )
    assert details.cancel_info is not None and details.cancel_info["byOther"] == 1


async def test_printer_actions(fake: FakeSimplyPrint) -> None:
    client, _ = client_for(fake)
    async with client:
        created = await client.create_job([1234, 1235], queue_item_id=51293)
        await client.pause(1234)
        await client.resume([1234, 1235])
        await client.cancel(1234, reason=CancelReason.NO_EXTRUSION, comment="clog")
        with pytest.raises(RejectedError) as info:
            await client.create_job(999, file_id=FILE_ID)
    assert created.job_ids == [495462, 495463]
    assert fake.calls[0][:2] == ("POST", "printers/actions/CreateJob")
    assert fake.calls[0][3] == {"pid": "1234,1235", "queue_file": 51293}
    assert fake.calls[1][:3] == ("POST", "printers/actions/Pause", {"pid": "1234"})
    assert fake.calls[2][:3] == ("POST", "printers/actions/Resume", {"pid": "1234,1235"})
    assert fake.calls[3][2:] == ({"pid": "1234"}, {"reason": 3, "comment": "clog"})
    assert info.value.message == "Printer is not operational"


async def test_rate_limit_is_retried(fake: FakeSimplyPrint) -> None:
    sleep = FakeSleep()
    fake.rate_limit_next = 2
    client, _ = client_for(fake, sleep)
    async with client:
        await client.get_printers()
    assert len(sleep.calls) == 2
    assert 0 <= sleep.calls[0] <= 0.5 and 0 <= sleep.calls[1] <= 1.0


async def test_answer_without_status_is_unexpected() -> None:
    async def weird(request: Request) -> Response:
        return JSONResponse({"queue": {}})

    app = Starlette(routes=[Route(f"/{CO}/queue/GetItems", weird)])
    client = SimplyPrintClient(
        CO, KEY, base_url="http://sp.test", transport=httpx.ASGITransport(app=app)
    )
    async with client:
        with pytest.raises(UnexpectedResponseError):
            await client.get_queue_items()


def test_csv_ids() -> None:
    assert csv_ids(5) == "5"
    assert csv_ids([1, 2, 3]) == "1,2,3"
