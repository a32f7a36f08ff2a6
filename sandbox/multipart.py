"""Minimal multipart/form-data parsing with the standard library.

Starlette's ``request.form()`` needs python-multipart, which this project does not install; the
files-host upload is the only multipart endpoint, so the stdlib MIME parser is enough.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qsl


@dataclass(frozen=True)
class FormFile:
    filename: str
    content: bytes


@dataclass(frozen=True)
class Form:
    fields: dict[str, str]
    files: dict[str, FormFile]


def parse_form(content_type: str, body: bytes) -> Form:
    """Fields and files of a multipart or urlencoded body; anything else is an empty form."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        return Form(dict(parse_qsl(body.decode("utf-8", "replace"))), {})
    if kind != "multipart/form-data":
        return Form({}, {})
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    fields: dict[str, str] = {}
    files: dict[str, FormFile] = {}
    if not message.is_multipart():
        return Form(fields, files)
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            files[name] = FormFile(filename, data)
        else:
            fields[name] = data.decode("utf-8", "replace")
    return Form(fields, files)
