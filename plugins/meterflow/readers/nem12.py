"""NEM12 (AEMO meter data file format): 100 header, 200 NMI data details, 300 interval data,
400 interval events, 500 B2B details, 900 end. Plain text or a .zip of such files.

Each 300 record is one day of one NMI channel; its 5-, 15- or 30-minute values are summed into
the canonical 30-minute readings here (a half hour's quality is the worst of its parts, and a
part that is not a number makes the half hour non-numeric). The reader yields interval-ENDING
local times, as the file means them; the feed's ``timestamp_marks: end`` turns them into
starts. Values are converted from the 200 record's unit of measure to kWh.

We parse NEM12 ourselves rather than with ``nemreader``: rejects must name the file's line
(the 300 record), which nemreader does not keep, and the format is small.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from meterflow.readers import RAW_COLUMNS, UnreadableFile

if TYPE_CHECKING:
    import pandas as pd

    from meterflow.feeds import Feed

UOM_TO_KWH = {"KWH": 1.0, "WH": 0.001, "MWH": 1000.0}
QUALITY_RANK = {"A": 3, "S": 2, "F": 2, "E": 1}


def _texts(path: Path) -> Iterator[tuple[str, str]]:
    """(name, text) of the file, or of each file inside a zip."""
    data = path.read_bytes()
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = [m for m in archive.namelist() if not m.endswith("/")]
                if not members:
                    raise UnreadableFile(f"{path.name}: the zip holds no file")
                for member in members:
                    yield f"{path.name}/{member}", archive.read(member).decode("utf-8-sig")
        except zipfile.BadZipFile as exc:
            raise UnreadableFile(f"{path.name}: not a readable zip: {exc}") from None
        return
    try:
        yield path.name, data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnreadableFile(f"{path.name}: not a NEM12 text file (not UTF-8)") from None


def _rows(name: str, lines: Iterable[str]) -> Iterator[dict]:
    """One dict per 30-minute reading, with its line number."""
    nmi = uom = None
    interval = 30
    pending: list[tuple[int, list[str]]] = []  # the last 300 record, waiting for its 400s
    events: list[list[str]] = []
    seen_header = False

    def flush() -> Iterator[dict]:
        if not pending:
            return
        line_no, fields = pending.pop()
        yield from _day(name, line_no, fields, nmi, uom, interval, events)
        events.clear()

    for line_no, line in enumerate(lines, start=1):
        fields = [f.strip() for f in line.rstrip("\r\n").split(",")]
        kind = fields[0]
        if kind == "" and len(fields) == 1:
            continue
        if kind == "100":
            if len(fields) < 2 or fields[1].upper() != "NEM12":
                raise UnreadableFile(f"{name} line {line_no}: 100 record is not NEM12: {line!r}")
            seen_header = True
        elif not seen_header:
            raise UnreadableFile(f"{name} line {line_no}: expected a 100 NEM12 header first")
        elif kind == "200":
            yield from flush()
            if len(fields) < 9:
                raise UnreadableFile(f"{name} line {line_no}: 200 record has {len(fields)} fields")
            nmi, uom = fields[1], fields[7].upper()
            if uom not in UOM_TO_KWH:
                raise UnreadableFile(f"{name} line {line_no}: unit {fields[7]!r} is not energy")
            try:
                interval = int(fields[8])
            except ValueError:
                interval = 0
            if interval not in (5, 15, 30):
                raise UnreadableFile(
                    f"{name} line {line_no}: interval length {fields[8]!r} (expected 5, 15, 30)"
                )
        elif kind == "300":
            yield from flush()
            if nmi is None:
                raise UnreadableFile(f"{name} line {line_no}: 300 record before any 200 record")
            pending.append((line_no, fields))
        elif kind == "400":
            events.append(fields)
        elif kind in ("500", "550"):
            continue
        elif kind == "900":
            yield from flush()
            break
        else:
            raise UnreadableFile(f"{name} line {line_no}: unknown record type {kind!r}")
    yield from flush()


def _day(name, line_no, fields, nmi, uom, interval, events) -> Iterator[dict]:
    per_day = 1440 // interval
    values = fields[2 : 2 + per_day]
    quality_method = fields[2 + per_day] if len(fields) > 2 + per_day else ""
    parts = 30 // interval
    factor = UOM_TO_KWH[uom]
    flags = [quality_method[:1].upper()] * per_day
    if flags and flags[0] == "V":  # variable: the 400 records give each range's flag
        flags = ["V"] * per_day
        for event in events:
            try:
                first, last = int(event[1]), int(event[2])
            except (IndexError, ValueError):
                continue
            for i in range(max(first, 1) - 1, min(last, per_day)):
                flags[i] = event[3][:1].upper() if len(event) > 3 else "V"
    try:
        day = datetime.strptime(fields[1], "%Y%m%d")
    except (IndexError, ValueError):
        day = None
    for half in range(48):
        chunk = values[half * parts : (half + 1) * parts]
        raw_values = "|".join(chunk) if parts > 1 else (chunk[0] if chunk else "")
        total = 0.0
        numeric = len(chunk) == parts
        for v in chunk:
            try:
                total += float(v)
            except ValueError:
                numeric = False
                break
        q = flags[half * parts : (half + 1) * parts]
        worst = min(q, key=lambda f: QUALITY_RANK.get(f, 0)) if q else ""
        yield {
            "row_no": line_no,
            "location": name,
            "meter_id": nmi,
            "timestamp": day + timedelta(minutes=30 * (half + 1)) if day else fields[1],
            "reading": round(total * factor, 9) if numeric else raw_values,
            "quality": worst,
        }


def read(path: Path, feed: Feed, *, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pandas as pd

    for name, text in _texts(path):
        batch: list[dict] = []
        for row in _rows(name, text.splitlines()):
            batch.append(row)
            if len(batch) >= chunk_rows:
                yield pd.DataFrame(batch, columns=RAW_COLUMNS)
                batch = []
        if batch:
            yield pd.DataFrame(batch, columns=RAW_COLUMNS)
