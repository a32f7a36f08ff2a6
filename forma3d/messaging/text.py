"""`Text`: the one string type of every client-written text field (request bodies, messages).

PostgreSQL text holds neither NUL nor lone surrogates (a JSON `"\\ud800"` decodes to one), and
asyncpg fails on them at the bind, long after the request was accepted. Refusing them at the
model answers 422 naming the field instead of a 500, or a webhook that can never be processed.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

# What the OpenAPI document says of every text field (JSON Schema regex, ECMA-262 syntax).
NO_NUL_PATTERN = "^[^\\u0000]*$"
_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(value: str) -> str:
    """`value` unchanged, or ValueError when PostgreSQL text cannot hold it."""
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    if not value.isascii() and _SURROGATE.search(value):
        raise ValueError("must be valid Unicode (no lone surrogates)")
    return value


Text = Annotated[str, AfterValidator(storable), Field(json_schema_extra={
    "pattern": NO_NUL_PATTERN})]
