"""Meter packets: one JSON object per line, ``{"id", "timestamp", "reading_kWh"}`` as the stream
receiver writes them (field names from the feed's columns). A line that is not a JSON object
is a row too: it is rejected as a malformed record, with its text kept."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from meterflow.readers import RAW_COLUMNS, UnreadableFile

if TYPE_CHECKING:
    import pandas as pd

    from meterflow.feeds import Feed


_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")  # an escaped UTF-16 surrogate in a JSON text


def _scalar(value: object) -> object:
    """A packet value cleansing can judge: a list or object as its JSON text (it is then
    refused as a malformed id, time or reading), a string without lone surrogates (which no
    UTF-8 text, nor PostgreSQL, can hold)."""
    if isinstance(value, (list, dict)):
        value = json.dumps(value)[:200]
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


def read(path: Path, feed: Feed, *, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pandas as pd

    roles = ("meter_id", "channel", "timestamp", "reading", "quality")
    names = {role: feed.columns.get(role, (role,))[0] for role in roles}
    batch: list[tuple] = []
    try:
        with path.open(encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, start=1):
                text = line.strip()
                if not text:
                    continue
                try:
                    packet = json.loads(text)
                except (ValueError, RecursionError):  # not JSON, or nested beyond reason
                    packet = None
                if isinstance(packet, dict) and (
                    ("\\u" in text and _SURROGATE.search(text)) or "[" in text or "{" in text[1:]
                ):
                    packet = {k: _scalar(v) for k, v in packet.items()}
                if not isinstance(packet, dict):
                    batch.append(
                        (
                            line_no,
                            None,
                            None,
                            None,
                            None,
                            None,
                            None,
                            f"not a JSON object: {text[:200]}",
                        )
                    )
                else:
                    batch.append(
                        (
                            line_no,
                            None,
                            packet.get(names["meter_id"]),
                            packet.get(names["channel"]),
                            packet.get(names["timestamp"]),
                            packet.get(names["reading"]),
                            packet.get(names["quality"]),
                            None,
                        )
                    )
                if len(batch) >= chunk_rows:
                    yield pd.DataFrame(batch, columns=[*RAW_COLUMNS, "problem"])
                    batch = []
    except UnicodeDecodeError:
        raise UnreadableFile(f"{path.name}: not a UTF-8 packets file") from None
    if batch:
        yield pd.DataFrame(batch, columns=[*RAW_COLUMNS, "problem"])
