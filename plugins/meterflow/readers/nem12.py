"""NEM12 (AEMO Meter Data File Format): 100 header, 200 NMI data details, 300 interval data,
400 interval events, 500 B2B details, 900 end. Plain text or a .zip of such files.

Read to the specification, streaming (docs/nem12.md):

- The file is read in blocks straight from disk or out of each zip member, never whole. 300
  records are collected a chunk at a time and their 48/96/288 values parsed as one wide table
  by pyarrow's CSV reader, then summed into the canonical 30-minute readings in bulk (a half
  hour's quality is the worst of its parts). A 300 record that does not fit the fast shape
  (an empty or non-numeric value, padding, a wrong field count) is read by the careful path,
  which keeps a non-number for the cleanser to reject or names what is wrong with the record.
- Each 200 record names a channel: its NMI is the meter id, its NMISuffix the channel (E1, B1,
  Q1 …); values are scaled from its UOM to the k-unit (Wh → kWh, VArh → kVArh, VAh → kVAh).
- Integrity: the first record is a 100 NEM12 header and the last a 900 end record, and nothing
  follows the 900; otherwise the whole file fails (UnreadableFile, nothing of it loads). A 300
  record that cannot be read as one day of its channel — its value count is not 1440 divided by
  the interval length, it has no quality flag, its date is not a date, one of its 400 records
  is out of range, its 200 record has an unknown unit or interval length — is one rejected row
  (malformed_record, with its line and the reason), so its day is counted.
- 400 records give the quality of interval ranges of a V (variable) 300 record; 500 records are
  skipped.

The reader yields interval-ENDING local times, as the file means them; the feed's
``timestamp_marks: end`` turns them into starts, its ``timezone`` (Etc/GMT-10, the NEM's fixed
UTC+10) into UTC.
"""

from __future__ import annotations

import functools
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from meterflow.readers import RAW_COLUMNS, UnreadableFile

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from meterflow.feeds import Feed

BLOCK_BYTES = 1 << 22
HALF_HOURS = 48
HALF_HOUR_NS = 30 * 60 * 1_000_000_000
DAY_NS = 24 * 60 * 60 * 1_000_000_000
# UOM of a 200 record → factor to its k-unit. Energy (Wh) channels become kWh; reactive (VArh)
# and apparent (VAh) energy keep their kind in k-units: they are stored, never summed as kWh.
UNIT_FACTORS = {
    f"{prefix}{unit}": factor
    for unit in ("WH", "VARH", "VAH")
    for prefix, factor in (("", 0.001), ("K", 1.0), ("M", 1000.0))
}
INTERVALS = (5, 15, 30)
QUALITY_METHOD = re.compile(r"^[AEFNSV]\d{0,2}$")  # a flag and an optional 2-digit method
# quality flags, worst first: a half hour takes the worst flag of its 5/15-minute parts
FLAGS = ["N", "V", "E", "F", "S", "A"]
FLAG_CODE = {f: i for i, f in enumerate(FLAGS)}
TRAILING_FIELDS = 4  # ReasonCode, ReasonDescription, UpdateDateTime, MSATSLoadDateTime


@dataclass
class _Channel:
    """What a 200 record says about the 300 records below it."""

    line_no: int
    meter: int  # index into the file's NMIs
    channel: int  # index into the file's suffixes
    interval: int = 30
    factor: float = 1.0
    problem: str | None = None  # why none of its 300 records can be read


@dataclass
class _Day:
    """One 300 record with its 400 records."""

    line_no: int
    line: bytes
    channel: _Channel
    events: list[tuple[int, list[str]]] = field(default_factory=list)


@dataclass
class _Rows:
    """Rows of one chunk, as columns (numpy arrays or lists), before they become a frame."""

    row_no: list = field(default_factory=list)
    meter: list = field(default_factory=list)
    channel: list = field(default_factory=list)
    stamp: list = field(default_factory=list)  # int64 ns of the interval end, local time
    reading: list = field(default_factory=list)
    quality: list = field(default_factory=list)  # codes into FLAGS, -1 none
    problem: list = field(default_factory=list)  # per part: None or a list of texts
    numeric: bool = True  # every reading is a float


def read(path: Path, feed: Feed, *, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Raw frames of a NEM12 file (or of every file in a zip), about ``chunk_rows`` rows each."""
    for name, stream in _streams(path):
        with stream:
            yield from _FileReader(name, chunk_rows).frames(stream)


def _streams(path: Path) -> Iterator[tuple[str, IO[bytes]]]:
    """(name, binary stream) of the file, or of each file inside a zip — read lazily."""
    with path.open("rb") as probe:
        magic = probe.read(4)
    if magic != b"PK\x03\x04":
        yield path.name, path.open("rb")
        return
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if not members:
                raise UnreadableFile(f"{path.name}: the zip holds no file")
            for member in members:
                yield f"{path.name}/{member.filename}", archive.open(member)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise UnreadableFile(f"{path.name}: not a readable zip: {exc}") from None


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    rest = b""
    first = True
    while block := stream.read(BLOCK_BYTES):
        if first:
            block = block.removeprefix(b"\xef\xbb\xbf")
            first = False
        lines = (rest + block).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def _fields(name: str, line_no: int, line: bytes) -> list[str]:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableFile(f"{name} line {line_no}: not UTF-8 text") from None
    fields = [f.strip() for f in text.rstrip("\r").split(",")]
    while len(fields) > 1 and fields[-1] == "":  # padding from spreadsheet exports
        fields.pop()
    return fields


class _FileReader:
    """Reads one NEM12 file (one stream); raises UnreadableFile for a broken structure."""

    def __init__(self, name: str, chunk_rows: int) -> None:
        self.name = name
        self.chunk_days = max(1, chunk_rows // HALF_HOURS)
        self.meters: list[str] = []
        self.meter_codes: dict[str, int] = {}
        self.channels: list[str] = []
        self.channel_codes: dict[str, int] = {}

    def _fail(self, line_no: int, problem: str) -> UnreadableFile:
        return UnreadableFile(f"{self.name} line {line_no}: {problem}")

    def frames(self, stream: IO[bytes]) -> Iterator[pd.DataFrame]:
        pending: list[_Day] = []
        channel: _Channel | None = None
        header = end = 0
        line_no = 0
        for line_no, line in enumerate(_lines(stream), start=1):
            kind = line[:4]
            if kind == b"300,":
                if not header:
                    raise self._fail(line_no, "the first record is '300', not a 100 header")
                if end:
                    raise self._fail(line_no, f"a 300 record after the 900 end record (line {end})")
                if channel is None:
                    raise self._fail(line_no, "300 record before any 200 record")
                if len(pending) >= self.chunk_days:
                    yield self._frame(pending)
                    pending = []
                pending.append(_Day(line_no, line, channel))
                continue
            if not line.strip():
                continue
            fields = _fields(self.name, line_no, line)
            record = fields[0]
            if end:
                raise self._fail(
                    line_no, f"a {record!r} record after the 900 end record (line {end})"
                )
            if not header:
                if record != "100":
                    raise self._fail(line_no, f"the first record is {record!r}, not a 100 header")
                if len(fields) < 2 or fields[1].upper() != "NEM12":
                    version = fields[1] if len(fields) > 1 else ""
                    raise self._fail(line_no, f"the 100 header says {version!r}, not NEM12")
                header = line_no
            elif record == "200":
                channel = self._channel(line_no, fields)
            elif record == "300":  # '300' alone, or ' 300,…': a malformed day of its channel
                if channel is None:
                    raise self._fail(line_no, "300 record before any 200 record")
                pending.append(_Day(line_no, line, channel))
            elif record == "400":
                if not pending or pending[-1].channel is not channel:
                    raise self._fail(line_no, "400 record without its 300 record")
                pending[-1].events.append((line_no, fields))
            elif record in ("500", "550"):
                continue
            elif record == "900":
                end = line_no
            elif record == "100":
                raise self._fail(line_no, f"a second 100 header (the first is line {header})")
            else:
                raise self._fail(line_no, f"unknown record type {record!r}")
        if not header:
            raise UnreadableFile(f"{self.name}: empty, no 100 NEM12 header")
        if not end:
            raise UnreadableFile(
                f"{self.name}: no 900 end record after line {line_no}: the file is truncated "
                "or incomplete, nothing of it is loaded"
            )
        if pending:
            yield self._frame(pending)

    def _channel(self, line_no: int, fields: list[str]) -> _Channel:
        nmi = fields[1] if len(fields) > 1 else ""
        suffix = fields[4] if len(fields) > 4 else ""
        meter = self.meter_codes.setdefault(nmi, len(self.meters))
        if meter == len(self.meters):
            self.meters.append(nmi)
        code = self.channel_codes.setdefault(suffix, len(self.channels))
        if code == len(self.channels):
            self.channels.append(suffix)
        out = _Channel(line_no, meter, code)
        if len(fields) < 9:
            out.problem = f"its 200 record (line {line_no}) has {len(fields)} fields, not 9 or 10"
            return out
        unit, interval = fields[7], fields[8]
        if unit.upper() not in UNIT_FACTORS:
            out.problem = (
                f"its 200 record (line {line_no}) has unit {unit!r}: not an interval energy unit "
                "(Wh, kWh, MWh, VArh, kVArh, MVArh, VAh, kVAh, MVAh)"
            )
        elif not interval.isdigit() or int(interval) not in INTERVALS:
            out.problem = (
                f"its 200 record (line {line_no}) has interval length {interval!r}, not 5, 15 or 30"
            )
        else:
            out.factor = UNIT_FACTORS[unit.upper()]
            out.interval = int(interval)
        return out

    # --- one chunk of 300 records -------------------------------------------------------------

    def _frame(self, days: list[_Day]) -> pd.DataFrame:
        import numpy as np

        rows = _Rows()
        careful: list[_Day] = []
        by_interval: dict[int, list[_Day]] = {}
        for day in days:
            if day.channel.problem:
                careful.append(day)
            else:
                by_interval.setdefault(day.channel.interval, []).append(day)
        for interval, group in by_interval.items():
            careful += self._fast(interval, group, rows)
        for day in careful:
            self._careful(day, rows)
        return self._to_frame(rows, np)

    def _fast(self, interval: int, days: list[_Day], rows: _Rows) -> list[_Day]:
        """Parse the regular 300 records of one interval length in bulk; return the others."""
        import io

        import numpy as np
        import pyarrow as pa
        import pyarrow.csv as pacsv

        per_day = 1440 // interval
        left: list[_Day] = []
        shapes: dict[int, list[_Day]] = {}
        for day in days:
            commas = day.line.count(b",")
            if commas in (per_day + 5, per_day + 6) and b'"' not in day.line:
                shapes.setdefault(commas, []).append(day)
            else:
                left.append(day)
        for commas, group in shapes.items():
            names = [f"f{i}" for i in range(commas + 1)]
            values = names[2 : 2 + per_day]
            types = {n: pa.float64() for n in values}
            types |= {"f1": pa.string(), names[2 + per_day]: pa.string()}
            try:
                table = pacsv.read_csv(
                    io.BytesIO(b"\n".join(d.line for d in group)),
                    read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
                    parse_options=pacsv.ParseOptions(quote_char=False),
                    convert_options=pacsv.ConvertOptions(
                        column_types=types, include_columns=["f1", *values, names[2 + per_day]]
                    ),
                )
            except (pa.ArrowInvalid, ValueError):
                left += group
                continue
            matrix = np.empty((len(group), per_day))
            for j, name in enumerate(values):
                matrix[:, j] = table.column(name).to_numpy()
            dates = _dates(table.column("f1").to_pylist())
            flags = table.column(names[2 + per_day]).to_pylist()
            good = ~np.isnan(matrix).any(axis=1) & (dates != _NAT)
            keep: list[int] = []
            flag_rows = np.empty((len(group), HALF_HOURS), dtype="int8")
            for i, (day, flag) in enumerate(zip(group, flags, strict=True)):
                if not good[i] or flag is None or not QUALITY_METHOD.match(flag.upper()):
                    left.append(day)
                    continue
                codes = self._flags(day, per_day, flag.upper())
                if isinstance(codes, str):
                    left.append(day)
                    continue
                flag_rows[i] = codes
                keep.append(i)
            if not keep:
                continue
            idx = np.asarray(keep)
            parts = per_day // HALF_HOURS
            factor = np.array([group[i].channel.factor for i in keep])
            sums = matrix[idx].reshape(len(idx), HALF_HOURS, parts).sum(axis=2)
            kwh = np.round(sums * factor[:, None], 9)
            self._add(rows, [group[i] for i in keep], dates[idx], kwh, flag_rows[idx])
        return left

    def _flags(self, day: _Day, per_day: int, quality: str) -> np.ndarray | str:
        """The quality code of each half hour, or why the record's 400 records are wrong."""
        import numpy as np

        flag = quality[:1]
        if not day.events:
            return _constant_flags(flag)
        codes = np.full(per_day, FLAG_CODE[flag], dtype="int8")
        for line_no, event in day.events:
            problem = _event_problem(event, per_day)
            if problem:
                return f"its 400 record (line {line_no}) {problem}"
            if flag == "V":
                codes[int(event[1]) - 1 : int(event[2])] = FLAG_CODE[event[3][:1].upper()]
        return codes.reshape(HALF_HOURS, per_day // HALF_HOURS).min(axis=1)

    def _add(self, rows: _Rows, days: list[_Day], dates, kwh, flags) -> None:
        import numpy as np

        n = len(days)
        ends = (np.arange(1, HALF_HOURS + 1, dtype="int64") * HALF_HOUR_NS)[None, :]
        rows.row_no.append(np.repeat(np.array([d.line_no for d in days], dtype="int64"), 48))
        rows.meter.append(np.repeat(np.array([d.channel.meter for d in days]), HALF_HOURS))
        rows.channel.append(np.repeat(np.array([d.channel.channel for d in days]), HALF_HOURS))
        rows.stamp.append((dates[:, None] + ends).reshape(n * HALF_HOURS))
        rows.reading.append(kwh.reshape(n * HALF_HOURS))
        rows.quality.append(flags.reshape(n * HALF_HOURS))
        rows.problem.append(None)

    def _careful(self, day: _Day, rows: _Rows) -> None:
        """One irregular 300 record, field by field: its 48 rows, or one malformed row."""
        import numpy as np

        fields = _fields(self.name, day.line_no, day.line)
        date = _dates([fields[1] if len(fields) > 1 else ""])
        problem = day.channel.problem
        if problem is None:
            per_day = 1440 // day.channel.interval
            problem, values, codes = self._check(day, fields, per_day, date)
        if problem is not None:
            rows.row_no.append(np.array([day.line_no], dtype="int64"))
            rows.meter.append(np.array([day.channel.meter]))
            rows.channel.append(np.array([day.channel.channel]))
            rows.stamp.append(date if date[0] != _NAT else np.array([_NAT]))
            rows.reading.append(np.array([np.nan]))
            rows.quality.append(np.array([-1], dtype="int8"))
            text = day.line[:120].decode(errors="replace").rstrip("\r")
            rows.problem.append([f"300 record {problem}: {text}"])
            return
        parts = per_day // HALF_HOURS
        readings: list = []
        for half in range(HALF_HOURS):
            chunk = values[half * parts : (half + 1) * parts]
            try:
                readings.append(round(sum(float(v) for v in chunk) * day.channel.factor, 9))
            except ValueError:
                readings.append("|".join(chunk) if parts > 1 else chunk[0])
                rows.numeric = False
        self._add(rows, [day], date, np.array([readings], dtype=object), codes[None, :])

    def _check(self, day: _Day, fields: list[str], per_day: int, date) -> tuple:
        """(problem, values, half-hour quality codes) of one 300 record."""
        interval = day.channel.interval
        if date[0] == _NAT:
            found = fields[1] if len(fields) > 1 else ""
            return f"has IntervalDate {found!r}, not a date YYYYMMDD", None, None
        q_pos = next(
            (i for i in range(2, len(fields)) if QUALITY_METHOD.match(fields[i].upper())), None
        )
        if q_pos is None:
            if len(fields) >= per_day + 2 and all(_number(v) for v in fields[2 : 2 + per_day]):
                return "has no quality flag (QualityMethod)", None, None
            return (
                f"has no quality flag after its values, and not the {per_day} values of its "
                f"{interval}-minute 200 record (line {day.channel.line_no})",
                None,
                None,
            )
        if q_pos - 2 != per_day:
            return (
                f"has {q_pos - 2} interval values, but its 200 record (line "
                f"{day.channel.line_no}) has {interval}-minute intervals: {per_day} values a day",
                None,
                None,
            )
        if len(fields) - q_pos - 1 > TRAILING_FIELDS:
            return (
                f"has {len(fields) - q_pos - 1} fields after its quality flag, at most "
                f"{TRAILING_FIELDS}",
                None,
                None,
            )
        codes = self._flags(day, per_day, fields[q_pos].upper())
        if isinstance(codes, str):
            return codes, None, None
        return None, fields[2:q_pos], codes

    def _to_frame(self, rows: _Rows, np) -> pd.DataFrame:
        import pandas as pd

        row_no = np.concatenate(rows.row_no)
        order = np.argsort(row_no, kind="stable")
        row_no = row_no[order]
        meter = np.concatenate(rows.meter)[order]
        channel = np.concatenate(rows.channel)[order]
        stamp = np.concatenate(rows.stamp).astype("int64")[order]
        quality = np.concatenate(rows.quality)[order]
        if rows.numeric:
            reading = np.concatenate([r.astype("float64") for r in rows.reading])[order]
        else:
            reading = np.concatenate([r.astype(object) for r in rows.reading])[order]
        s_codes, s_uniques = pd.factorize(np.where(stamp == _NAT, 0, stamp))
        s_codes[stamp == _NAT] = -1  # no date: a malformed record's row
        stamps = pd.DatetimeIndex(s_uniques.astype("datetime64[ns]"))
        frame = pd.DataFrame(
            {
                "row_no": row_no,
                "location": pd.Categorical.from_codes(np.zeros(len(row_no), "int8"), [self.name]),
                "meter_id": _categorical(meter, self.meters),
                "channel": _categorical(channel, self.channels),
                "timestamp": pd.Categorical.from_codes(s_codes, stamps),
                "reading": _categorical_values(reading),
                "quality": pd.Categorical.from_codes(quality, FLAGS),
            },
            columns=RAW_COLUMNS,
        )
        if any(p is not None for p in rows.problem):
            problems = np.concatenate(
                [
                    np.array(p, dtype=object) if p is not None else np.full(len(r), None)
                    for p, r in zip(rows.problem, rows.row_no, strict=True)
                ]
            )
            frame["problem"] = problems[order]
        return frame


_NAT = -(2**63)


@functools.cache
def _constant_flags(flag: str) -> np.ndarray:
    import numpy as np

    return np.full(HALF_HOURS, FLAG_CODE[flag], dtype="int8")


def _dates(texts: list) -> np.ndarray:
    """int64 ns (local midnight) of YYYYMMDD texts; _NAT where a text is no such date."""
    import numpy as np

    parsed: dict = {}
    for text in set(texts):
        parsed[text] = _NAT
        if isinstance(text, str) and len(text) == 8 and text.isdigit():
            try:
                day = np.datetime64(f"{text[:4]}-{text[4:6]}-{text[6:]}", "ns")
            except ValueError:  # 20250230
                continue
            parsed[text] = int(day.astype("int64"))
    return np.array([parsed[t] for t in texts], dtype="int64")


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _event_problem(event: list[str], per_day: int) -> str | None:
    """Why a 400 record (StartInterval, EndInterval, QualityMethod …) is wrong, or None."""
    if len(event) < 4:
        return f"has {len(event)} fields, not at least 4"
    try:
        first, last = int(event[1]), int(event[2])
    except ValueError:
        return f"has interval range {event[1]!r}-{event[2]!r}, not numbers"
    if not 1 <= first <= last <= per_day:
        return f"has interval range {first}-{last}, outside 1-{per_day} of its day"
    quality = event[3].upper()
    if not QUALITY_METHOD.match(quality) or quality.startswith("V"):
        return f"has quality {event[3]!r}, not a flag A, E, F, N or S"
    return None


def _categorical(codes, names: list[str]) -> pd.Categorical:
    """A categorical of only the names this chunk uses (the cleanser judges each category)."""
    import numpy as np
    import pandas as pd

    used, inverse = np.unique(codes, return_inverse=True)
    return pd.Categorical.from_codes(inverse.astype("int32"), [names[i] for i in used])


def _categorical_values(values) -> pd.Categorical:
    import pandas as pd

    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return pd.Categorical.from_codes(codes, pd.Index(uniques, dtype=object))
