"""The meter packet: what the receiver accepts, and how it is written to a segment.

A meter sends ``{"id": "SMR89134A", "timestamp": "2025-02-08T00:31:00Z", "reading_kWh": 5.5}``
every half hour; the packet sent at 00:31 reports the interval 00:00–00:30. The receiver checks
the shape only (field names, types, a real RFC 3339 time with a zone); whether a reading is
plausible (negative, above max_kwh, in the future) is judged by cleansing at ingestion, so such
a packet is still stored and its rejection is recorded in audit.rejected_row with a reason.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from meterflow.models import METER_ID_PATTERN

# RFC 3339 date-time with seconds optional and a zone required (Z or ±hh:mm).
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$"
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
_METER_ID = re.compile(METER_ID_PATTERN)
MAX_NUMERIC_ID = 2**63 - 1  # fits a bigint


class Packet(BaseModel):
    """One half-hourly reading as a meter sends it. Unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | int = Field(
        description="meter id: 'SMR' + 5 digits + source letter A|B|C, or a positive integer"
    )
    timestamp: str = Field(description="RFC 3339 time the packet was sent, with Z or an offset")
    reading_kWh: Annotated[float, Field(strict=False, allow_inf_nan=False)] = Field(
        description="energy of the 30 minutes before the packet, in kWh (a JSON number)"
    )

    @field_validator("id", mode="before")
    @classmethod
    def _meter_id(cls, value: object) -> object:
        if isinstance(value, str) and _METER_ID.match(value):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_NUMERIC_ID:
            return value
        raise ValueError(
            "expected a meter id like 'SMR89134A' (SMR, 5 digits, source A|B|C) "
            "or a positive integer like 999999999"
        )

    @field_validator("timestamp", mode="before")
    @classmethod
    def _rfc3339(cls, value: object) -> object:
        if not isinstance(value, str):
            return value  # the str type check reports it
        if not _TIMESTAMP.match(value):
            raise ValueError("expected an RFC 3339 time with a zone, like 2025-02-08T00:31:00Z")
        try:
            datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"not a real time: {exc}") from None
        return value

    @field_validator("reading_kWh", mode="before")
    @classmethod
    def _number(cls, value: object) -> object:
        # JSON numbers only: "5.5" (a string) or true (a bool) are wrong types, not readings.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("expected a JSON number")
        return value


# A request carries one packet or an array of them.
ONE = TypeAdapter(Packet)
MANY = TypeAdapter(Annotated[list[Packet], Field(min_length=1)])


def parse(raw: bytes) -> list[Packet]:
    """The packets of a request body; raises pydantic.ValidationError naming each bad field.

    Error locations are ``(field,)`` for a single packet and ``(index, field)`` in an array.
    """
    if raw.lstrip()[:1] == b"[":
        return MANY.validate_json(raw)
    return [ONE.validate_json(raw)]


def errors(exc: ValidationError) -> list[dict]:
    """Field errors as FastAPI reports them: ``{"loc": ["body", 0, "id"], "msg", "type"}``."""
    return [
        {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def to_lines(packets: list[Packet]) -> bytes:
    """Segment lines: one compact JSON object per packet, in the order received."""
    return b"".join(p.__pydantic_serializer__.to_json(p) + b"\n" for p in packets)
