"""Values that fit our columns: what an inbound payload must satisfy before we acknowledge it.

A webhook answered 200 is never sent again, so every constraint its processing will meet (the
integer columns' ranges, PostgreSQL text and jsonb, which refuse NUL and lone surrogates) is
checked by the payload models that ingress and processing share, built from these types.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
# datetime.fromtimestamp's range: up to the end of year 9999.
EPOCH_SECONDS_MAX = 253_402_300_799


def clean_text(value: str) -> str:
    """Text PostgreSQL can store: no NUL character and no lone surrogate."""
    if "\x00" in value:
        raise ValueError("text must not contain the NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    return value


class UnsafeValue(ValueError):
    """A value a jsonb column or a message cannot hold; `path` names it inside its document."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path or 'value'}: {problem}")
        self.path = path


def json_safe(value: Any, path: str = "") -> Any:
    """A free-form JSON value we may keep in a jsonb column or a message: its strings (and keys)
    are clean text and its numbers finite. Raises UnsafeValue naming the first offending path."""
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            try:
                clean_text(item)
            except ValueError as error:
                raise UnsafeValue(where, str(error)) from None
        elif isinstance(item, float) and not math.isfinite(item):
            raise UnsafeValue(where, "numbers must be finite")
        elif isinstance(item, dict):
            for key, child in item.items():
                stack.append((f"{where}.{key}" if where else str(key), key))
                stack.append((f"{where}.{key}" if where else str(key), child))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", child) for i, child in enumerate(item))
    return value


def _numeric_id(value: Any) -> Any:
    """Ids arrive as numbers or numeric strings; anything else is not an id (no floats)."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError("must be an integer id")
    if isinstance(value, str) and not value.strip().isdigit():
        raise ValueError("must be a numeric id")
    return value


CleanText = Annotated[str, AfterValidator(clean_text)]
Int32 = Annotated[int, Field(ge=-INT32_MAX - 1, le=INT32_MAX)]
Count = Annotated[int, Field(ge=1, le=INT32_MAX)]  # quantities: integer columns, at least one
Id64 = Annotated[int, BeforeValidator(_numeric_id), Field(ge=1, le=INT64_MAX)]  # bigint ids
EpochSeconds = Annotated[int, Field(ge=0, le=EPOCH_SECONDS_MAX)]
EpochMillis = Annotated[int, Field(ge=0, le=EPOCH_SECONDS_MAX * 1000)]
JsonObject = Annotated[dict[str, Any], AfterValidator(json_safe)]
