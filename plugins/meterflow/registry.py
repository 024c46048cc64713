"""The meter registry feed: a spreadsheet or CSV of meter_id, site, region, owner and capacity
→ meter.meter.

Meters are also registered automatically when their first reading is promoted
(``include/sql/segregate/register_meters.sql``: source from the reading, region
``unassigned``); this feed fills in and corrects where they are and who owns them.

A registry file lands in the ``registry`` feed's folder (include/config/feeds.yaml) and is
picked up by ``meter_ingest`` like any other file; :func:`meterflow.ingest.load_file` hands it
here. Rules:

- The header (in the first 20 rows) names a meter id column (the feed's ``columns.meter_id``
  aliases) and any of site, region, owner, capacity (:data:`ALIASES`); other columns are
  ignored. A site's capacity is its highest plausible kWh per 30 minutes: a positive number
  that overrides the feed's and the global ``MF_MAX_KWH`` limit for that meter's readings.
- Every meter id is trimmed, upper-cased and must match the feed's ``meter_id_pattern`` with a
  source letter A, B or C (or the feed's fixed ``source``).
- Upsert (``include/sql/segregate/upsert_registry.sql``): a new meter is inserted (region
  ``unassigned`` when blank); a known one gets the file's site, region, owner and capacity
  where the file has a value — a blank cell leaves the stored value, it never erases it.
- The whole file or nothing: any bad row (malformed id, one meter listed twice with different
  values) fails the file with a message naming the file, the row and the problem; the file
  moves to ``failed/registry/`` with a ``.error.txt``, nothing is written.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meterflow import SQL_DIR, config, warehouse
from meterflow.models import SOURCES, LoadResult

if TYPE_CHECKING:
    from meterflow.feeds import Feed

log = logging.getLogger(__name__)

FEED_NAME = "registry"
STATUS = "registered"  # LoadResult.status of a registry file (no batch, nothing staged)
ATTRIBUTES = ("site", "region", "owner", "capacity_kwh")
ALIASES: dict[str, tuple[str, ...]] = {
    "site": ("site", "site name", "site_name", "location", "address"),
    "region": ("region", "area", "zone", "region name", "region_name"),
    "owner": ("owner", "owner name", "owner_name", "customer", "account"),
    "capacity_kwh": ("capacity_kwh", "capacity kwh", "capacity", "max_kwh", "max kwh"),
}
HEADER_SCAN_ROWS = 20
UPSERT_SQL = SQL_DIR / "segregate" / "upsert_registry.sql"


def _norm(cell: Any) -> str:
    return re.sub(r"\s+", " ", str(cell)).strip().lower() if cell is not None else ""


def _text(cell: Any) -> str | None:
    """A cell as text; None when blank."""
    if cell is None:
        return None
    if isinstance(cell, float) and cell.is_integer():
        cell = int(cell)
    value = re.sub(r"\s+", " ", str(cell)).strip()
    return value or None


def read_rows(path: Path, feed: Feed) -> list[tuple[str, int, list[Any]]]:
    """(sheet or '', 1-based row number, cells) of every row of every selected sheet."""
    from meterflow.readers import UnreadableFile

    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        try:
            with path.open(encoding=feed.encoding, newline="") as fh:
                rows = list(csv.reader(fh, delimiter=feed.delimiter))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise UnreadableFile(
                f"{path.name}: not readable as {feed.encoding} CSV: {exc}"
            ) from None
        return [("", i, r) for i, r in enumerate(rows, start=1)]
    if suffix in (".xlsx", ".xlsm", ".xls", ".ods"):
        from python_calamine import CalamineWorkbook

        try:
            workbook = CalamineWorkbook.from_path(str(path))
            names = list(workbook.sheet_names) if feed.sheets == "all" else list(feed.sheets)
            out = []
            for name in names:
                sheet = workbook.get_sheet_by_name(name).to_python(skip_empty_area=False)
                out.extend((name, i, r) for i, r in enumerate(sheet, start=1))
        except Exception as exc:  # calamine raises its own errors for zip/xml/format faults
            raise UnreadableFile(f"{path.name}: not a readable workbook: {exc}") from None
        return out
    raise UnreadableFile(
        f"{path.name}: unknown format {suffix or '(no extension)'!r} for the registry feed "
        "(expected .csv, .xlsx or .xlsm)"
    )


def parse(path: Path, feed: Feed) -> list[dict[str, Any]]:
    """The file's meters as dicts (meter_id, source, site, region, owner, capacity_kwh);
    UnreadableFile
    naming the file, the row and the problem when any row is wrong."""
    from meterflow.readers import UnreadableFile

    rows = read_rows(path, feed)
    pattern = re.compile(feed.meter_id_pattern)
    id_aliases = feed.aliases("meter_id")
    meters: dict[str, tuple[str, dict[str, str | None]]] = {}
    problems: list[str] = []
    header: dict[str, int] | None = None
    header_sheet = None
    for sheet, row_no, cells in rows:
        where = f"{path.name}" + (f" sheet {sheet!r}" if sheet else "") + f" row {row_no}"
        if header is None or sheet != header_sheet:
            if sheet != header_sheet:
                header, header_sheet = None, sheet
            if row_no > HEADER_SCAN_ROWS:
                continue
            names = [_norm(c) for c in cells]
            found = next((names.index(a) for a in id_aliases if a in names), None)
            if found is not None:
                header = {"meter_id": found}
                for attr, aliases in ALIASES.items():
                    pos = next((names.index(a) for a in aliases if a in names), None)
                    if pos is not None:
                        header[attr] = pos
            continue
        values = {k: _text(cells[p]) if p < len(cells) else None for k, p in header.items()}
        if not any(values.values()):
            continue  # an empty row
        meter_id = (values.pop("meter_id") or "").upper()
        if not meter_id:
            problems.append(f"{where}: meter id is missing")
            continue
        if not pattern.match(meter_id):
            problems.append(
                f"{where}: meter id {meter_id!r} does not match {feed.meter_id_pattern}"
            )
            continue
        source = meter_id[-1] if feed.source == "suffix" else feed.source
        if source not in SOURCES:
            problems.append(f"{where}: meter id {meter_id!r}: source {source!r} is not A, B or C")
            continue
        capacity = values.get("capacity_kwh")
        if capacity is not None:
            try:
                values["capacity_kwh"] = float(capacity)
            except ValueError:
                values["capacity_kwh"] = float("nan")
            if not values["capacity_kwh"] > 0 or values["capacity_kwh"] == float("inf"):
                problems.append(
                    f"{where}: capacity {capacity!r} is not a positive number of kWh per 30 minutes"
                )
                continue
        record = {"meter_id": meter_id, "source": source, **{a: values.get(a) for a in ATTRIBUTES}}
        seen = meters.get(meter_id)
        if seen and seen[1] != record:
            problems.append(f"{where}: meter {meter_id} is also {seen[0]} with different values")
            continue
        meters.setdefault(meter_id, (where, record))
    if header is None and not meters and not problems:
        wanted = ", ".join(id_aliases)
        raise UnreadableFile(
            f"{path.name}: no header with a meter id column ({wanted}) in the first "
            f"{HEADER_SCAN_ROWS} rows"
        )
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise UnreadableFile(
            f"{path.name}: {len(problems)} bad rows, nothing loaded: "
            + "; ".join(problems[:5])
            + more
        )
    return [record for _, record in meters.values()]


def upsert(conn, meters: list[dict[str, Any]]) -> tuple[int, int]:
    """Upsert the meters into meter.meter in the caller's transaction; (new, updated)."""
    if not meters:
        return 0, 0
    columns = {k: [m[k] for m in meters] for k in ("meter_id", "source", *ATTRIBUTES)}
    rows = conn.execute(UPSERT_SQL.read_text(encoding="utf-8"), columns).fetchall()
    new = sum(1 for (inserted,) in rows if inserted)
    return new, len(rows) - new


def load_file(
    path: Path,
    feed: Feed,
    *,
    conn_id: str | None = None,
    landing_dir: Path | None = None,
    move: bool = True,
) -> LoadResult:
    """Load one registry file into meter.meter (all of it, or nothing); move it when done."""
    from meterflow import ingest, readers

    path = Path(path)
    landing = Path(landing_dir or config.get("landing_dir"))
    result = LoadResult(file=path.name, feed=feed.name)
    try:
        meters = parse(path, feed)
    except readers.UnreadableFile as exc:
        if move:
            target = ingest._move(path, landing, ingest.FAILED, feed.name)
            target.with_name(target.name + ".error.txt").write_text(str(exc) + "\n")
        log.error("%s: not loaded: %s", path.name, exc)
        raise
    with warehouse.connect(conn_id) as conn:
        new, updated = upsert(conn, meters)
        conn.commit()
    result.status = STATUS
    result.rows_read = result.rows_staged = len(meters)
    log.info(
        "%s: %s meters: %s new, %s updated, %s unchanged",
        path.name,
        f"{len(meters):,}",
        f"{new:,}",
        f"{updated:,}",
        f"{len(meters) - new - updated:,}",
    )
    if move:
        ingest._move(path, landing, ingest.PROCESSED, feed.name)
    return result
