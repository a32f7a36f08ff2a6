"""The farm through SimplyPrint's queue: files uploaded once per tenant, jobs queued once.

Each queue item carries the job's key and attempt as its note, so a step that crashed after
SimplyPrint accepted an item finds it instead of adding a second one.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from forma3d.db.pool import Pool
from forma3d.domain.printing.jobs import is_stock_job_key, moves_ahead_of_stock
from forma3d.domain.printing.matching import queue_requirements
from forma3d.integrations.errors import RejectedError
from forma3d.integrations.simplyprint import SimplyPrintClient
from forma3d.store import files

log = logging.getLogger(__name__)
# SimplyPrint's API file ids are temporary (about 24 h): upload again when older than this.
FILE_ID_TTL = timedelta(hours=20)


def queue_note(job: dict[str, Any]) -> str:
    return f"{job['job_key']}#{job['attempts']}"


def _lock_key(file_id: uuid.UUID) -> int:
    return int.from_bytes(hashlib.blake2b(file_id.bytes, digest_size=8).digest(), "big",
                          signed=True)


async def ensure_uploaded(pool: Pool, client: SimplyPrintClient, file_id: uuid.UUID, *,
                          stale: str | None = None) -> str:
    """The farm's id for a print file, uploading it only if no fresh upload exists.

    `stale` names a farm id the farm just refused (expired early): it is uploaded again.
    """
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _lock_key(file_id))
        try:
            row = await conn.fetchrow(
                "SELECT farm_file_id, farm_uploaded_at FROM print_files WHERE id = $1", file_id)
            fresh = datetime.now(UTC) - FILE_ID_TTL
            if row and row["farm_file_id"] and row["farm_uploaded_at"] > fresh \
                    and row["farm_file_id"] != stale:
                return str(row["farm_file_id"])
            content = await conn.fetchrow(
                "SELECT filename, content FROM print_files WHERE id = $1", file_id)
            if content is None:
                raise LookupError(f"print file {file_id} does not exist")
            uploaded = await client.upload_file(content["filename"], bytes(content["content"]))
            await files.set_farm_file(conn, file_id, uploaded.id)
            return uploaded.id
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _lock_key(file_id))


async def queue_jobs(pool: Pool, client: SimplyPrintClient,
                     jobs: Sequence[dict[str, Any]]) -> dict[uuid.UUID, int]:
    """Add each job to the farm's queue (or find the item an earlier try added), with the
    job's models and tags, so SimplyPrint offers it only to printers that fit it."""
    listing = await client.get_queue_items(include_groups=True)
    by_note = {i.note: i.id for i in [*listing.items, *listing.done_items] if i.note}
    placed: dict[uuid.UUID, int] = {}
    models: dict[str, int] | None = None
    for job in jobs:
        note = queue_note(job)
        if note in by_note:
            placed[job["id"]] = by_note[note]
            continue
        required = list(job.get("required_tags") or [])
        if models is None and any(str(t).lower().startswith("model:") for t in required):
            models = {p.printer.model["name"]: p.model_id
                      for p in await client.all_printers()
                      if p.model_id is not None and p.printer.model
                      and p.printer.model.get("name")}
        wanted = queue_requirements(required, models or {})
        if wanted.unknown_models:
            log.warning("job %s: no farm printer of model %s; queued without a model",
                        job["id"], ", ".join(wanted.unknown_models))
        extra: dict[str, Any] = {"for_models": list(wanted.for_models) or None,
                                 "tags": dict(wanted.tags) or None}
        farm_file = await ensure_uploaded(pool, client, job["file_id"])
        try:
            placed[job["id"]] = await client.add_queue_item(file_id=farm_file, amount=1,
                                                            note=note, **extra)
        except RejectedError:
            # SimplyPrint's API file ids are temporary; a refused one is uploaded again once.
            farm_file = await ensure_uploaded(pool, client, job["file_id"], stale=farm_file)
            placed[job["id"]] = await client.add_queue_item(file_id=farm_file, amount=1,
                                                            note=note, **extra)
    return placed


async def put_ahead_of_stock(client: SimplyPrintClient, item_ids: Sequence[int], *,
                             rounds: int = 3) -> int:
    """Move these (order) items ahead of every stock item waiting in SimplyPrint's queue,
    keeping their own order; returns how many moved.

    A printer takes the first item it matches, so order items in front of the stock items are
    what keeps a stock job off a printer an order job could use, while a printer that no
    waiting order job fits still prints stock (holding stock back from the queue would leave
    it idle, and would not help with stock items queued before the order came). Stock items
    are known by their note (the job key). A move refused because the queue changed since it
    was read (another order moved, a printer took an item) is planned again from a new
    listing, `rounds` times at most.
    """
    for attempt in range(1, rounds + 1):
        listing = await client.get_queue_items()
        queue = [item.id for item in listing.items]
        stock = {item.id for item in listing.items if is_stock_job_key(item.note or "")}
        moves = moves_ahead_of_stock(queue, stock, item_ids)
        try:
            for move in moves:
                await client.move_queue_item(move.item_id, start=move.start, end=move.end)
        except RejectedError:
            if attempt == rounds:
                raise
            log.info("farm queue changed while moving order items ahead of stock; again")
            continue
        return len(moves)
    return 0


async def withdraw_jobs(client: SimplyPrintClient, jobs: Sequence[dict[str, Any]], *,
                        stop_printing: bool) -> None:
    """Remove queued items; stop running prints when the tenant says so."""
    printers = set()
    for job in jobs:
        if job["status"] == "PRINTING" or job["farm_job_uid"]:
            if stop_printing and job["farm_printer_id"]:
                printers.add(int(job["farm_printer_id"]))
            continue
        if job["farm_queue_item_id"] is not None:
            await client.delete_queue_item(int(job["farm_queue_item_id"]))
    for printer in sorted(printers):
        printer_state = await client.get_printer(printer)
        if printer_state.state in ("printing", "paused", "pausing"):
            await client.cancel(printer, reason=6, comment="order cancelled")
