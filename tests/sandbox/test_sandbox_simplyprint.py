"""SimplyPrint simulator through httpx: envelope and auth, files host upload, queue, farm
matching and auto-print, jobs on simulated time, failures, webhooks with secret headers, and
webhook loss with reconciliation by polling."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sandbox_receiver import Receiver

from forma3d.integrations.signatures import verify_simplyprint
from sandbox.farm import MaterialSpec, PrinterSpec
from sandbox.server import SandboxConfig, build_apps
from sandbox.simplyprint import SimplyPrintSandbox

TWO_HOURS = b"; estimated printing time (normal mode) = 2h 0m 0s\nG28\nG1 X10\n"


async def settle() -> None:
    for _ in range(30):
        await asyncio.sleep(0)


def farm_config(**changes: Any) -> SandboxConfig:
    config = SandboxConfig(seed=21, speedup=1.0)
    config.simplyprint.printers = [
        PrinterSpec(id=1, name="MK4 black", model="MK4", materials=[MaterialSpec(color="Black")]),
        PrinterSpec(
            id=2,
            name="MK4 white",
            model="MK4",
            materials=[MaterialSpec(color="White", hex="#FFFFFF")],
        ),
        PrinterSpec(
            id=3, name="MINI 0.6", model="MINI", nozzle=0.6, materials=[MaterialSpec(type="PETG")]
        ),
    ]
    for name, value in changes.items():
        setattr(config.simplyprint, name, value)
    return config


class Api:
    """A tiny client bound to the company base URL, checking the envelope on every call."""

    def __init__(self, app: Any, sandbox: SimplyPrintSandbox) -> None:
        self.sandbox = sandbox
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=f"https://api.simplyprint.io/{sandbox.config.company_id}/",
            headers={"X-API-KEY": sandbox.config.api_key},
        )

    async def call(
        self, method: str, path: str, *, params: Any = None, json: Any = None, ok: bool = True
    ) -> dict[str, Any]:
        response = await self.http.request(method, path, params=params, json=json)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["status"] is ok, body
        assert "message" in body
        return body

    async def upload(self, name: str = "part.gcode", content: bytes = TWO_HOURS) -> str:
        response = await self.http.post("files/Upload", files={"file": (name, content)})
        file_id: str = response.json()["file"]["id"]
        return file_id

    async def printer(self, pid: int) -> dict[str, Any]:
        row: dict[str, Any] = (
            await self.call("POST", "printers/Get", params={"pid": pid}, json={})
        )["data"]
        return row


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    _, app, _ = build_apps(farm_config(auto_print=False))
    client = Api(app, app.state.sandbox)
    yield client
    await client.http.aclose()
    await client.sandbox.aclose()


async def test_envelope_auth_and_unknown_endpoint(api: Api) -> None:
    assert (await api.call("GET", "account/Test"))["message"] == "Your API key is valid!"
    denied = await api.http.get("account/Test", headers={"X-API-KEY": "wrong"})
    assert denied.status_code == 200
    assert denied.json() == {"status": False, "message": "No API key provided, or not logged in"}
    other = await api.http.get("/999/account/Test")
    assert other.json()["status"] is False
    bearer = await api.http.get(
        "account/Test",
        headers={"X-API-KEY": "", "Authorization": f"Bearer {api.sandbox.config.api_key}"},
    )
    assert bearer.json()["status"] is False  # an empty X-API-KEY is still a wrong key
    missing = await api.http.get("queue/Nope")
    assert missing.status_code == 404 and missing.json()["status"] is False


async def test_files_host_upload_single_and_chunked(api: Api) -> None:
    single = await api.http.post("files/Upload", files={"file": ("benchy.gcode", TWO_HOURS)})
    body = single.json()
    assert body["status"] is True and body["message"] is None
    assert len(body["file"]["id"]) == 64 and body["file"]["name"] == "benchy.gcode"
    assert body["file"]["size"] == len(TWO_HOURS)

    content = TWO_HOURS * 10
    half = len(content) // 2
    first = await api.http.post(
        "files/Upload",
        data={"totalSize": str(len(content))},
        files={"file": ("big.gcode", content[:half])},
    )
    token = first.json()["continueToken"]
    last = await api.http.post(
        "files/Upload", data={"continueToken": token}, files={"file": ("big.gcode", content[half:])}
    )
    assert last.json()["file"]["size"] == len(content)
    assert last.json()["file"]["name"] == "big.gcode"
    saved = await api.http.post("files/Upload", data={"fileId": body["file"]["id"]})
    assert len(saved.json()["id"]) == 32


async def test_queue_add_get_delete(api: Api) -> None:
    file_id = await api.upload("bracket.gcode")
    created = await api.call(
        "POST",
        "queue/AddItem",
        json={"fileId": file_id, "amount": 2, "for_printers": "1,2", "note": "job-key-7"},
    )
    item_id = created["created_id"]
    assert isinstance(item_id, int)
    item = (await api.call("GET", "queue/GetItem", params={"id": item_id}))["queue"]
    assert item["left"] == 2 and item["printed"] == 0 and item["note"] == "job-key-7"
    assert item["for"]["printers"] == [1, 2] and item["analysis"]["estimate"] == 7200
    listing = await api.call("GET", "queue/GetItems", params={"groups": ""})
    assert [i["id"] for i in listing["queue"]["items"]] == [item_id]
    assert listing["queue"]["done_items"] == [] and listing["groups"] == []
    for_mini = await api.call("GET", "queue/GetItems", params={"p": 3})
    assert for_mini["queue"]["items"] == [] and for_mini["queue"]["fits"] is False
    # pid/job/id are query fields: in the body they are ignored, as on the real backend.
    await api.call("POST", "queue/DeleteItem", json={"job": item_id}, ok=False)
    await api.call("POST", "queue/DeleteItem", params={"job": item_id})
    assert (await api.call("GET", "queue/GetItems"))["queue"]["items"] == []
    await api.call("GET", "queue/GetItem", params={"id": item_id}, ok=False)
    bad = await api.call("POST", "queue/AddItem", json={"fileId": "0" * 64}, ok=False)
    assert bad["message"]


async def test_set_order_moves_by_zero_based_position_and_answers_success(api: Api) -> None:
    file_id = await api.upload()
    ids = [
        (await api.call("POST", "queue/AddItem", json={"fileId": file_id}))["created_id"]
        for _ in range(4)
    ]

    async def set_order(**params: Any) -> dict[str, Any]:
        response = await api.http.get("queue/SetOrder", params=params)
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        assert set(body) == {"success", "message"}  # this endpoint answers `success`
        return body

    async def queue() -> list[int]:
        return [i["id"] for i in (await api.call("GET", "queue/GetItems"))["queue"]["items"]]

    assert await set_order(job=ids[3], **{"from": 3, "to": 1}) == {"success": True,
                                                                   "message": None}
    assert await queue() == [ids[0], ids[3], ids[1], ids[2]]
    assert (await set_order(job=ids[0], **{"from": 0, "to": 3}))["success"] is True
    assert await queue() == [ids[3], ids[1], ids[2], ids[0]]
    refusals = [
        ({"job": ids[1], "from": 0, "to": 2}, "not at position 0"),  # it is at 1
        ({"job": ids[1], "from": 1, "to": 4}, "Invalid position 4"),
        ({"job": 99, "from": 0, "to": 1}, "Queue item not found"),
        ({"job": ids[1], "to": 2}, "Missing or invalid from"),
    ]
    for params, message in refusals:
        refused = await set_order(**params)
        assert refused["success"] is False and message in refused["message"]
    assert await queue() == [ids[3], ids[1], ids[2], ids[0]]
    api.sandbox.config.permissions = ["print_queue", "queue_see_others"]
    refused = await set_order(job=ids[1], **{"from": 1, "to": 0})
    assert refused["success"] is False and "reorder_queue" in refused["message"]
    assert await queue() == [ids[3], ids[1], ids[2], ids[0]]


async def test_create_job_prints_for_the_gcode_estimate(api: Api) -> None:
    file_id = await api.upload()
    started = await api.call(
        "POST", "printers/actions/CreateJob", json={"pid": "1", "file_id": file_id}
    )
    assert len(started["jobIds"]) == 1
    assert started["files"][0]["printers"] == [1] and started["files"][0]["queued"] is False
    busy = await api.call(
        "POST", "printers/actions/CreateJob", json={"pid": [1], "file_id": file_id}, ok=False
    )
    assert "not operational" in busy["message"]

    row = await api.printer(1)
    assert row["printer"]["state"] == "printing" and row["job"]["percentage"] == 0
    api.sandbox.clock.advance(3600)
    await settle()
    row = await api.printer(1)
    assert row["job"]["percentage"] == 50
    api.sandbox.clock.advance(3600)
    await settle()
    row = await api.printer(1)
    assert row["printer"]["state"] == "operational" and row["job"] is None

    jobs = await api.call("POST", "jobs/GetPaginatedPrintJobs", json={"page": 1, "page_size": 10})
    job = jobs["data"][0]
    assert job["status"] == "done" and job["printer"] == 1 and job["queueItem"] is None
    assert jobs["page_amount"] == 1
    details = (await api.call("GET", "jobs/GetDetails", params={"id": job["uid"]}))["job"]
    assert details["id"] == job["id"] and details["percentage"] == 100
    assert details["printer"]["id"] == 1
    await api.call("GET", "jobs/GetDetails", params={"id": "no-such-uid"}, ok=False)


async def test_pause_resume_cancel(api: Api) -> None:
    file_id = await api.upload()
    await api.call("POST", "printers/actions/CreateJob", json={"pid": 2, "file_id": file_id})
    await api.call("POST", "printers/actions/Resume", params={"pid": 2}, ok=False)
    await api.call("POST", "printers/actions/Pause", params={"pid": 2})
    assert (await api.printer(2))["printer"]["state"] == "paused"
    api.sandbox.clock.advance(10 * 3600)  # paused prints do not progress
    await settle()
    assert (await api.printer(2))["job"]["percentage"] == 0
    await api.call("POST", "printers/actions/Resume", params={"pid": 2})
    assert (await api.printer(2))["printer"]["state"] == "printing"
    await api.call(
        "POST", "printers/actions/Cancel", params={"pid": 2}, json={"reason": 2, "comment": "x"}
    )
    assert (await api.printer(2))["printer"]["state"] == "operational"
    cancelled = await api.call(
        "POST",
        "jobs/GetPaginatedPrintJobs",
        json={"page": 1, "page_size": 10, "status": ["cancelled"]},
    )
    assert [j["status"] for j in cancelled["data"]] == ["cancelled"]
    assert cancelled["data"][0]["cancelReasonType"] == "2"
    finished = await api.call(
        "POST",
        "jobs/GetPaginatedPrintJobs",
        json={"page": 1, "page_size": 10, "accepted_statuses": ["finished"]},
    )
    assert finished["data"] == []
    await api.call("POST", "printers/actions/Cancel", params={"pid": 2}, json={}, ok=False)


async def test_auto_print_matches_material_nozzle_and_assignment(receiver: Receiver) -> None:
    config = farm_config()
    config.simplyprint.webhook_targets = [receiver.url("sp")]
    _, app, _ = build_apps(config)
    api = Api(app, app.state.sandbox)
    file_id = await api.upload()
    white = await api.call(
        "POST",
        "queue/AddItem",
        json={
            "fileId": file_id,
            "tags": {"nozzle": 0.4, "material": [{"ext": 0, "type": "PLA", "color": "White"}]},
        },
    )
    petg = await api.call(
        "POST",
        "queue/AddItem",
        json={"fileId": file_id, "tags": {"nozzle": 0.6, "material": [{"type": "PETG"}]}},
    )
    nobody = await api.call(
        "POST",
        "queue/AddItem",
        json={"fileId": file_id, "tags": {"material": [{"type": "ABS"}]}},
    )
    rows = {pid: await api.printer(pid) for pid in (1, 2, 3)}
    assert rows[1]["printer"]["state"] == "operational"
    assert rows[2]["printer"]["state"] == "printing"
    assert rows[3]["printer"]["state"] == "printing"
    jobs = await api.call("POST", "jobs/GetPaginatedPrintJobs", json={"page": 1, "page_size": 9})
    by_printer = {j["printer"]: j for j in jobs["data"]}
    assert by_printer[2]["queueItem"]["id"] == white["created_id"]
    assert by_printer[3]["queueItem"]["id"] == petg["created_id"]
    assert by_printer[2]["autoprint"] is True
    remaining = (await api.call("GET", "queue/GetItems"))["queue"]["items"]
    assert [i["id"] for i in remaining] == [nobody["created_id"]]

    api.sandbox.clock.advance(7200)
    await settle()
    got = await receiver.wait_for(
        "sp", lambda r: sum(json.loads(x.body)["event"] == "job.done" for x in r) == 2
    )
    secret = config.simplyprint.webhook_secret
    for delivery in got:
        assert delivery.headers["x-sp-secret"] == secret
        assert delivery.headers["x-sp-token"] == secret
        assert verify_simplyprint(secret, delivery.headers)
    envelopes = [json.loads(d.body) for d in got]
    assert {"webhook_id", "event", "timestamp", "data"} <= set(envelopes[0])
    started = [e for e in envelopes if e["event"] == "job.started"]
    assert len(started) == 2 and {"job", "user", "started_by"} <= set(started[0]["data"])
    done = [e["data"]["job"] for e in envelopes if e["event"] == "job.done"]
    assert {j["printer_id"] for j in done} == {2, 3}
    assert all(j["state"] == "completed" and j["percentage"] == 100 for j in done)
    for key in ("id", "uid", "file", "analysis", "started", "ended", "printer", "autoprint"):
        assert key in done[0]
    assert any(e["event"] == "queue.add_item" for e in envelopes)
    item = (await api.call("GET", "queue/GetItems", params={"groups": ""}))["queue"]
    assert {i["id"]: i["printed"] for i in item["done_items"]} == {
        white["created_id"]: 1,
        petg["created_id"]: 1,
    }
    await api.http.aclose()
    await api.sandbox.aclose()


async def test_failure_rate_fails_jobs_with_webhook(receiver: Receiver) -> None:
    config = farm_config(failure_rate=1.0)
    config.simplyprint.webhook_targets = [receiver.url("fail")]
    _, app, _ = build_apps(config)
    api = Api(app, app.state.sandbox)
    file_id = await api.upload()
    await api.call("POST", "queue/AddItem", json={"fileId": file_id, "for_printers": "1"})
    api.sandbox.clock.advance(7200)
    await settle()
    failed = await api.call(
        "POST", "jobs/GetPaginatedPrintJobs", json={"page": 1, "page_size": 5, "status": ["failed"]}
    )
    assert len(failed["data"]) == 1 and failed["data"][0]["currentPercentage"] < 100
    got = await receiver.wait_for(
        "fail", lambda r: any(json.loads(x.body)["event"] == "job.failed" for x in r)
    )
    assert [json.loads(x.body)["event"] for x in got][-1] == "job.failed"
    await api.http.aclose()
    await api.sandbox.aclose()


async def test_webhook_loss_is_recovered_by_polling(receiver: Receiver) -> None:
    """30 % of SimplyPrint webhooks are dropped; polling jobs still shows every outcome."""
    config = farm_config(loss_rate=0.3, default_print_seconds=600.0)
    config.simplyprint.webhook_targets = [receiver.url("lossy")]
    config.simplyprint.webhook_events = ["job.started", "job.done", "job.failed"]
    _, app, _ = build_apps(config)
    api = Api(app, app.state.sandbox)
    file_id = await api.upload("plain.gcode", b"G28\n")  # no estimate: the default applies
    await api.call(
        "POST", "queue/AddItem", json={"fileId": file_id, "amount": 30, "for_printers": "1,2"}
    )
    for _ in range(15):
        api.sandbox.clock.advance(600)
        await settle()
    await api.sandbox.dispatcher.drain()
    log = api.sandbox.dispatcher.log
    assert len(log) == 60  # 30 started + 30 done
    dropped = [d for d in log if d.outcome == "dropped"]
    assert 8 <= len(dropped) <= 30
    assert len(receiver.got("lossy")) == len(log) - len(dropped)
    polled = await api.call(
        "POST", "jobs/GetPaginatedPrintJobs", json={"page": 1, "page_size": 100, "status": ["done"]}
    )
    assert len(polled["data"]) == 30
    await api.http.aclose()
    await api.sandbox.aclose()


async def test_webhooks_management_api(receiver: Receiver) -> None:
    _, app, _ = build_apps(farm_config(auto_print=False))
    api = Api(app, app.state.sandbox)
    bad = await api.call(
        "POST",
        "webhooks/Create",
        json={"name": "x", "url": receiver.url("api"), "events": ["job.nope"]},
        ok=False,
    )
    assert bad["message"] == "events.0: Invalid enum value specified!"
    created = await api.call(
        "POST",
        "webhooks/Create",
        json={
            "name": "orchestrator",
            "url": receiver.url("api"),
            "secret": "hook-secret",
            "enabled": True,
            "events": ["job.started"],
        },
    )
    hook_id = created["webhook"]["id"]
    listed = (await api.call("GET", "webhooks/Get"))["data"]
    assert [h["id"] for h in listed] == [hook_id]
    await api.call("POST", "webhooks/TriggerTestWebhook", json={"id": hook_id})
    file_id = await api.upload()
    await api.call("POST", "printers/actions/CreateJob", json={"pid": 1, "file_id": file_id})
    got = await api_wait(receiver, 2)
    assert [json.loads(r.body)["event"] for r in got] == ["test", "job.started"]
    assert all(r.headers["x-sp-secret"] == "hook-secret" for r in got)
    assert json.loads(got[1].body)["webhook_id"] == hook_id
    await api.call("POST", "webhooks/Delete", json={"id": hook_id})
    assert (await api.call("GET", "webhooks/Get"))["data"] == []
    await api.http.aclose()
    await api.sandbox.aclose()


async def api_wait(receiver: Receiver, count: int) -> list[Any]:
    return await receiver.wait_for("api", lambda r: len(r) >= count)


async def test_sandbox_controls_for_printers_and_farm(receiver: Receiver) -> None:
    config = farm_config(auto_print=False)
    config.simplyprint.webhook_targets = [receiver.url("ctl")]
    _, app, _ = build_apps(config)
    sandbox: SimplyPrintSandbox = app.state.sandbox
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sp.test"
    ) as client:
        added = await client.post(
            "/_sandbox/printers",
            json={"name": "X1C", "model": "X1C", "materials": [{"type": "PLA", "color": "Blue"}]},
        )
        assert added.status_code == 201
        pid = added.json()["printer"]["id"]
        changed = await client.post(
            f"/_sandbox/printers/{pid}",
            json={"online": False, "nozzle": 0.6, "custom_tags": [7]},
        )
        assert changed.json()["printer"]["printer"]["state"] == "offline"
        assert changed.json()["printer"]["tags"]["nozzle"] == 0.6
        farm = await client.post("/_sandbox/farm", json={"failure_rate": 0.5})
        assert farm.json()["failure_rate"] == 0.5
        hooks = await client.post("/_sandbox/webhooks", json={"loss_rate": 0.0})
        assert hooks.json()["targets"] == [receiver.url("ctl")]
        assert (await client.delete(f"/_sandbox/printers/{pid}")).status_code == 200
        listed = (await client.get("/_sandbox/printers")).json()["printers"]
        assert pid not in [p["id"] for p in listed]
        got = await receiver.wait_for("ctl", lambda r: len(r) >= 2)
        events = [json.loads(r.body)["event"] for r in got]
        assert events == ["printer.nozzle_size_changed", "printer.custom_tag_assigned"]
        log = (await client.get("/_sandbox/webhooks/deliveries")).json()["deliveries"]
        assert [d["topic"] for d in log] == events
        clock = (await client.post("/_sandbox/clock", json={"advance": 60})).json()
        assert clock["elapsed"] >= 60
    await sandbox.aclose()


async def test_speedup_runs_a_two_hour_print_quickly(receiver: Receiver) -> None:
    config = farm_config()
    config.speedup = 200_000.0  # two simulated hours take a few hundredths of a second
    config.simplyprint.webhook_targets = [receiver.url("fast")]
    _, app, _ = build_apps(config)
    api = Api(app, app.state.sandbox)
    file_id = await api.upload()
    await api.call("POST", "printers/actions/CreateJob", json={"pid": 1, "file_id": file_id})
    got = await receiver.wait_for(
        "fast", lambda r: any(json.loads(x.body)["event"] == "job.done" for x in r)
    )
    done = next(json.loads(x.body) for x in got if json.loads(x.body)["event"] == "job.done")
    assert done["data"]["job"]["ended"] - done["data"]["job"]["started"] >= 7200 - 1
    await api.http.aclose()
    await api.sandbox.aclose()


async def test_rate_limit_answers_429_in_the_envelope() -> None:
    _, app, _ = build_apps(farm_config(rate_limit_per_minute=2))
    api = Api(app, app.state.sandbox)
    await api.call("GET", "account/Test")
    await api.call("GET", "account/Test")
    throttled = await api.http.get("account/Test")
    assert throttled.status_code == 429
    assert throttled.json() == {
        "status": False,
        "message": "You're requesting too much - slow down",
    }
    await api.http.aclose()
    await api.sandbox.aclose()
