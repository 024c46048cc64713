"""Spreadsheets and CSV: long (meter id, timestamp, reading) or wide (a timestamp column and one
column per meter id) layouts, found from the header when the feed says ``auto``.

CSV is read in chunks by pandas' C parser straight into categorical columns: meter ids,
timestamps and readings repeat a great deal, so cleansing then judges each distinct value once.
Workbooks are read with python-calamine (Rust), which gives Excel dates as datetimes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meterflow.readers import RAW_COLUMNS, UnreadableFile

if TYPE_CHECKING:
    import pandas as pd

    from meterflow.feeds import Feed

HEADER_SCAN_ROWS = 20


@dataclass(frozen=True)
class Layout:
    """Where the values are in a table: column positions by role, or meter columns (wide)."""

    header_index: int  # 0-based row of the header
    kind: str  # long | wide
    roles: dict[str, int]  # role -> column position (long: meter_id, timestamp, reading[, ...])
    meters: tuple[tuple[int, str, str | None], ...] = ()  # wide: (position, meter id, channel)


def _norm(cell: Any) -> str:
    """A header name as compared: case, spaces, _ and - do not matter ("Reading kWh" is
    reading_kwh); a unit in brackets is dropped ("Reading (kWh)" is reading)."""
    if cell is None:
        return ""
    text = re.sub(r"\s*[(\[][^)\]]*[)\]]\s*$", "", str(cell).strip().lower())
    return re.sub(r"[\s_\-]+", "_", text).strip("_")


_CHANNEL_SUFFIX = re.compile(r"^(.+?)[\s_\-/.:]+([A-Za-z0-9]{1,2})$")


def _meter_column(cell: Any, pattern: re.Pattern) -> tuple[str, str | None] | None:
    """(meter id, channel) of a wide layout's column header: ``SMR89134A`` (the feed's default
    channel) or ``SMR89134A B1`` / ``SMR89134A_B1`` / ``SMR89134A-B1``; None for another column."""
    if cell is None:
        return None
    text = str(cell).strip()
    if pattern.match(text):
        return text, None
    split = _CHANNEL_SUFFIX.match(text)
    if split and pattern.match(split.group(1)):
        return split.group(1), split.group(2).upper()
    return None


def _layout_of(header: Sequence[Any], index: int, feed: Feed) -> Layout | None:
    """The layout a header row gives, or None when it is no header of this feed."""
    names = [_norm(c) for c in header]
    roles: dict[str, int] = {}
    for role in ("meter_id", "channel", "timestamp", "reading", "quality"):
        for alias in map(_norm, feed.aliases(role)):
            if alias in names:
                roles[role] = names.index(alias)
                break
    pattern = re.compile(feed.meter_id_pattern)
    meters = tuple(
        (i, *found) for i, c in enumerate(header) if (found := _meter_column(c, pattern))
    )
    long_ok = {"meter_id", "timestamp", "reading"} <= roles.keys()
    wide_ok = "timestamp" in roles and bool(meters)
    if feed.layout in ("long", "auto") and long_ok:
        return Layout(index, "long", roles)
    if feed.layout in ("wide", "auto") and wide_ok:
        return Layout(index, "wide", {"timestamp": roles["timestamp"]}, meters)
    return None


def find_layout(rows: Sequence[Sequence[Any]], feed: Feed, where: str) -> Layout:
    """The header row and layout of a table, or UnreadableFile saying what was expected."""
    if feed.header_row != "auto":
        candidates = [feed.header_row - 1]
    else:
        candidates = list(range(min(HEADER_SCAN_ROWS, len(rows))))
    for i in candidates:
        if i < len(rows):
            layout = _layout_of(rows[i], i, feed)
            if layout:
                return layout
    first = rows[candidates[0]] if candidates and candidates[0] < len(rows) else []
    wants = {
        "long": "columns meter_id, timestamp and reading",
        "wide": "a timestamp column and meter id columns",
        "auto": "columns meter_id, timestamp and reading (long) or a timestamp column and meter "
        "id columns (wide)",
    }[feed.layout]
    found = ", ".join(repr(str(c)) for c in first if c not in (None, "")) or "nothing"
    row = (
        f"row {feed.header_row}"
        if feed.header_row != "auto"
        else f"the first {HEADER_SCAN_ROWS} rows"
    )
    raise UnreadableFile(
        f"{where}: required columns missing: expected {wants} in {row}; found {found}"
    )


def _frame(
    layout: Layout, columns: dict[int, Any], first_row_no: int, n: int, location: str | None
) -> pd.DataFrame:
    """A raw frame from column arrays of one chunk (``columns``: position -> values)."""
    import numpy as np
    import pandas as pd

    row_no = np.arange(first_row_no, first_row_no + n, dtype="int64")
    if layout.kind == "long":

        def optional(role: str) -> Any:
            return columns[layout.roles[role]] if role in layout.roles else np.full(n, None)

        return pd.DataFrame(
            {
                "row_no": row_no,
                "location": location,
                "meter_id": columns[layout.roles["meter_id"]],
                "channel": optional("channel"),
                "timestamp": columns[layout.roles["timestamp"]],
                "reading": columns[layout.roles["reading"]],
                "quality": optional("quality"),
            },
            columns=RAW_COLUMNS,
        )
    m = len(layout.meters)
    values = np.empty((n, m), dtype=object)
    for j, (pos, _, _) in enumerate(layout.meters):
        col = columns[pos]
        values[:, j] = np.asarray(col, dtype=object)
    meter_names = list(dict.fromkeys(name for _, name, _ in layout.meters))  # a meter's channels
    meter_codes = np.array([meter_names.index(name) for _, name, _ in layout.meters])
    channels = np.array([channel for _, _, channel in layout.meters], dtype=object)
    return pd.DataFrame(
        {
            "row_no": np.repeat(row_no, m),
            "location": location,
            "meter_id": pd.Categorical.from_codes(np.tile(meter_codes, n), meter_names),
            "channel": np.tile(channels, n),
            "timestamp": np.repeat(np.asarray(columns[layout.roles["timestamp"]], dtype=object), m),
            "reading": values.ravel(),  # row by row, meters in column order
            "quality": None,
        },
        columns=RAW_COLUMNS,
    )


def _blank(frame: pd.DataFrame) -> Any:
    """Rows with no value at all (blank lines): not readings, not counted."""
    blank = None
    for col in ("meter_id", "timestamp", "reading"):
        values = frame[col]
        empty = values.isna() | (values.astype(object) == "")
        blank = empty if blank is None else blank & empty
    return blank


# --- CSV --------------------------------------------------------------------------------------


def _csv_head(path: Path, feed: Feed) -> list[list[str]]:
    import csv
    import itertools

    try:
        with path.open(encoding=feed.encoding, newline="") as fh:
            return list(
                itertools.islice(csv.reader(fh, delimiter=feed.delimiter), HEADER_SCAN_ROWS)
            )
    except UnicodeDecodeError as exc:
        raise UnreadableFile(
            f"{path.name}: not text in {feed.encoding} (byte {exc.start}); set the feed's encoding"
        ) from None
    except csv.Error as exc:
        raise UnreadableFile(f"{path.name}: not CSV: {exc}") from None


def read_csv(path: Path, feed: Feed, *, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pandas as pd

    head = _csv_head(path, feed)
    if not head:
        raise UnreadableFile(f"{path.name}: the file is empty")
    layout = find_layout(head, feed, path.name)
    n_cols = len(head[layout.header_index])
    wanted = sorted(set(layout.roles.values()) | {p for p, _, _ in layout.meters})
    first_row_no = layout.header_index + 2  # 1-based line of the first data row
    try:
        chunks = pd.read_csv(
            path,
            sep=feed.delimiter,
            encoding=feed.encoding,
            skiprows=layout.header_index + 1,
            header=None,
            names=range(n_cols),
            usecols=wanted,
            dtype="category",
            keep_default_na=False,
            skip_blank_lines=False,
            chunksize=max(1, chunk_rows // max(1, len(layout.meters))),  # by cells, not lines
            engine="c",
        )
        for chunk in chunks:
            n = len(chunk)
            frame = _frame(layout, {p: chunk[p] for p in wanted}, first_row_no, n, None)
            first_row_no += n
            blank = _blank(frame)
            yield frame[~blank] if blank.any() else frame
    except pd.errors.ParserError as exc:
        raise UnreadableFile(f"{path.name}: malformed CSV: {exc}") from None
    except UnicodeDecodeError as exc:
        raise UnreadableFile(
            f"{path.name}: not text in {feed.encoding} (byte {exc.start}); set the feed's encoding"
        ) from None


# --- workbooks --------------------------------------------------------------------------------


def read_workbook(path: Path, feed: Feed, *, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Every sheet the feed selects; sheets with no header of the feed are skipped when the feed
    takes all sheets (a notes sheet), but at least one sheet must hold readings. Rows are taken
    from each sheet a chunk at a time, never as one list of the whole sheet."""
    import logging
    from itertools import islice

    from python_calamine import CalamineWorkbook

    log = logging.getLogger(__name__)
    guard_workbook(path)
    try:
        workbook = CalamineWorkbook.from_path(str(path))
        names = list(workbook.sheet_names)
    except Exception as exc:  # calamine raises its own errors for zip/xml/format faults
        raise UnreadableFile(f"{path.name}: not a readable workbook: {exc}") from None
    if feed.sheets == "all":
        selected = names
    else:
        missing = [s for s in feed.sheets if s not in names]
        if missing:
            raise UnreadableFile(
                f"{path.name}: sheet {missing[0]!r} not found (sheets: {', '.join(names)})"
            )
        selected = list(feed.sheets)
    tables: list[tuple[str, list[list[Any]], Iterator[list[Any]], Layout]] = []
    problems: list[str] = []
    for name in selected:
        try:
            rows = workbook.get_sheet_by_name(name).iter_rows()
            head = list(islice(rows, HEADER_SCAN_ROWS))
        except Exception as exc:
            raise UnreadableFile(f"{path.name}: sheet {name!r} cannot be read: {exc}") from None
        if not any(any(c not in (None, "") for c in r) for r in head):
            continue
        try:
            layout = find_layout(head, feed, f"{path.name} sheet {name!r}")
        except UnreadableFile as exc:
            if feed.sheets != "all":
                raise
            problems.append(str(exc))
            log.warning("%s: skipped: %s", path.name, exc)
            continue
        tables.append((name, head[layout.header_index + 1 :], rows, layout))
    if not tables:
        raise UnreadableFile(problems[0] if problems else f"{path.name}: no sheet holds readings")
    for name, first, rest, layout in tables:
        positions = set(layout.roles.values()) | {p for p, _, _ in layout.meters}
        step = max(1, chunk_rows // max(1, len(layout.meters) or 1))
        row_no = layout.header_index + 2  # 1-based row of the first data row
        block = first[:step]
        first = first[step:]
        while True:
            block += list(islice(rest, step - len(block)))
            if not block:
                break
            columns = {pos: [r[pos] if pos < len(r) else None for r in block] for pos in positions}
            frame = _frame(layout, columns, row_no, len(block), name)
            blank = _blank(frame)
            yield frame[~blank] if blank.any() else frame
            row_no += len(block)
            block, first = first[:step], first[step:]


_CELL_REF = re.compile(rb'<(?:\w+:)?c r="([A-Z]{1,3})([0-9]+)"')
_ROW_REF = re.compile(rb'<(?:\w+:)?row r="([0-9]+)"')


def guard_workbook(path: Path) -> None:
    """Refuse a workbook whose size once inflated, or whose sheets' extent, is beyond the
    settings ``max_inflated_mb`` and ``max_sheet_cells``, before any of it is loaded: the
    reader holds a sheet as a dense table from its first to its last cell, so one cell at
    XFD1048576 in a 5 KB file would ask for 1.7e10 cells and kill the worker outright."""
    import zipfile

    from meterflow import config

    if not zipfile.is_zipfile(path):
        return  # .xls/.ods: not a zip of XML sheets; calamine reads them as they are
    cap_bytes = float(config.get("max_inflated_mb")) * 1024 * 1024
    cap_cells = int(config.get("max_sheet_cells"))
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            inflated = sum(m.file_size for m in members)
            if inflated > cap_bytes:
                raise UnreadableFile(
                    f"{path.name}: inflates to {inflated / 2**20:,.0f} MB, above the limit of "
                    f"{cap_bytes / 2**20:,.0f} MB (setting MF_MAX_INFLATED_MB)"
                )
            for member in members:
                if member.filename.startswith("xl/worksheets/") and member.filename.endswith(
                    ".xml"
                ):
                    _guard_sheet(path, archive, member.filename, cap_cells)
    except zipfile.BadZipFile as exc:
        raise UnreadableFile(f"{path.name}: not a readable workbook: {exc}") from None


def _guard_sheet(path: Path, archive: Any, member: str, cap_cells: int) -> None:
    """Scan one sheet's XML for its last row and widest column (streamed, a block at a time)."""
    last_row, widest = 0, b""
    tail = b""
    with archive.open(member) as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            text = tail + block
            rows = {int(r) for r in _ROW_REF.findall(text)}
            cells = _CELL_REF.findall(text)
            rows.update(int(r) for r in {r for _, r in cells})
            last_row = max(last_row, *rows) if rows else last_row
            for letters in {c for c, _ in cells}:
                if (len(letters), letters) > (len(widest), widest):
                    widest = letters
            tail = text[-64:]
    columns = 0
    for ch in widest:
        columns = columns * 26 + (ch - 64)
    cells = last_row * columns
    if cells > cap_cells:
        raise UnreadableFile(
            f"{path.name}: {member} spans {last_row:,} rows x {columns:,} columns "
            f"({cells:,} cells), above the limit of {cap_cells:,} (setting MF_MAX_SHEET_CELLS)"
        )
