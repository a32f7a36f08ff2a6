"""Print files: uploaded once per tenant (deduplicated by SHA-256), listed without their content,
downloaded on demand. Gcode estimates are read at upload so jobs and parcels can use them."""

from __future__ import annotations

import io
import uuid
import zipfile
from datetime import datetime
from decimal import Decimal
from pathlib import PurePosixPath, PureWindowsPath
from urllib.parse import quote

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from forma3d.domain.printing.gcode import estimated_seconds, filament_grams
from forma3d.http.deps import deps, parse_id, tenant_of
from forma3d.http.problems import Problem
from forma3d.http.query import QuerySpec
from forma3d.http.routes.api import api
from forma3d.http.routes.listing import Row, fetch_one, list_routes
from forma3d.http.routing import json_response, read_body
from forma3d.store import files

MAX_FILE_BYTES = 100 * 2**20
EXTENSIONS = (".gcode", ".gco", ".bgcode", ".3mf", ".stl")
TAG = "print-files"


class PrintFileOut(BaseModel):
    id: uuid.UUID
    filename: str
    content_hash: str
    size_bytes: int
    estimated_seconds: int | None
    grams: Decimal | None
    farm_file_id: str | None
    farm_uploaded_at: datetime | None
    created_at: datetime


FILES = QuerySpec.of(PrintFileOut, "print_files f", default_sort="created_at:desc")

def _gcode_of(filename: str, content: bytes) -> bytes | None:
    """The gcode to read estimates from: the file itself, or the first plate of a gcode.3mf."""
    lower = filename.lower()
    if lower.endswith((".gcode", ".gco")):
        return content
    if lower.endswith(".3mf"):
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                plates = sorted(n for n in archive.namelist() if n.endswith(".gcode"))
                return archive.read(plates[0]) if plates else None
        except (zipfile.BadZipFile, KeyError, OSError):
            return None
    return None


def clean_filename(raw: str | None) -> str:
    """The name without any directory part, refused (422) when empty, odd or not printable."""
    name = PureWindowsPath(PurePosixPath(raw or "").name).name.strip()
    problem = None
    if not name:
        problem = "is required (?filename=part.gcode)"
    elif len(name) > 255 or any(ord(c) < 32 for c in name):
        problem = "must be at most 255 printable characters"
    elif not name.lower().endswith(EXTENSIONS):
        problem = f"must end with one of {', '.join(EXTENSIONS)}"
    if problem:
        raise Problem(422, f"filename {problem}",
                      errors=[{"field": "filename", "message": problem}])
    return name


async def read_upload(request: Request, limit: int | None = None) -> bytes:
    """The raw body, refused with 413 as soon as it is known to be too large."""
    limit = MAX_FILE_BYTES if limit is None else limit
    body = await read_body(request, limit, "a print file")
    if not body:
        raise Problem(422, "the file is empty", errors=[{"field": "body", "message": "empty"}])
    return body


@api.route("POST", "/print-files", "Upload a print file (raw body, ?filename=); the same "
           "content again answers 200 with the existing file", response=PrintFileOut,
           status=201, tags=(TAG,), query=("filename",),
           permission="files.write")
async def upload_print_file(request: Request) -> Response:
    filename = clean_filename(request.query_params.get("filename"))
    content = await read_upload(request)
    gcode = _gcode_of(filename, content)
    seconds = estimated_seconds(gcode) if gcode else None
    weight = filament_grams(gcode) if gcode else None
    tenant_id = tenant_of(request)
    async with deps(request).pool.acquire() as conn:
        stored = await files.add_print_file(conn, tenant_id, filename, content,
                                            estimated_seconds=seconds, grams=weight)
        row = await fetch_one(conn, FILES, tenant_id, stored.id, "print file")
    body = PrintFileOut.model_validate(row).model_dump(mode="json")
    response = json_response(body, 201 if stored.created else 200)
    response.headers["Location"] = f"{request.url.path}/{stored.id}"
    return response


list_routes("/print-files", FILES, permission="files.read",
            name="print_files", item=PrintFileOut, tag=TAG)


@api.route("GET", "/print-files/{file_id}", "Get a print file's metadata", response=PrintFileOut,
           tags=(TAG,),
           permission="files.read")
async def get_print_file(request: Request) -> Row:
    file_id = parse_id(request.path_params["file_id"], "print file")
    async with deps(request).pool.acquire() as conn:
        return await fetch_one(conn, FILES, tenant_of(request), file_id, "print file")


@api.route("GET", "/print-files/{file_id}/content", "Download a print file", tags=(TAG,),
           permission="files.read")
async def download_print_file(request: Request) -> Response:
    file_id = parse_id(request.path_params["file_id"], "print file")
    row = await deps(request).pool.fetchrow(
        "SELECT filename, content FROM print_files WHERE tenant_id = $1 AND id = $2",
        tenant_of(request), file_id)
    if row is None:
        raise Problem(404, f"print file {file_id} not found")
    disposition = f"attachment; filename*=UTF-8''{quote(row['filename'])}"
    return Response(bytes(row["content"]), media_type="application/octet-stream",
                    headers={"Content-Disposition": disposition})
